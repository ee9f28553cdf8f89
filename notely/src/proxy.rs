//! The data proxy: every note operation goes through it. It looks the account up together
//! with its placement (one query on the control database), then hands the operation to the
//! online engine, which routes it to the store holding the account's notes, or to both stores
//! while they move (see `strata_online`).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use strata_online::{Engine, MoveError, Placement};
use uuid::Uuid;

use crate::store::{Account, Db, Note, StoreError, accounts};
use crate::telemetry::Telemetry;

/// Routes note calls to stores.
#[derive(Debug, Clone)]
pub struct NoteProxy {
    engine: Arc<Engine<Note>>,
    telemetry: Arc<Telemetry>,
    /// Writes queue for the writer connections; at most this many wait on the blocking pool
    /// at once, so that reads always find a free thread (a write waits there while a move's
    /// backfill batch holds the store).
    writes: Arc<tokio::sync::Semaphore>,
}

/// Writes allowed on the blocking pool at once (see [`NoteProxy`]).
const WRITES_AT_ONCE: usize = 2;

impl NoteProxy {
    pub fn new(engine: Arc<Engine<Note>>, telemetry: Arc<Telemetry>) -> Self {
        NoteProxy {
            engine,
            telemetry,
            writes: Arc::new(tokio::sync::Semaphore::new(WRITES_AT_ONCE)),
        }
    }

    /// The online engine behind the proxy.
    pub fn engine(&self) -> &Arc<Engine<Note>> {
        &self.engine
    }

    /// Looks the account up in `control` and runs `op` with its placement, in one trip to the
    /// blocking pool; `None` when the account does not exist. Recorded per store (the one
    /// receiving writes) in the telemetry.
    async fn on_account<T: Send + 'static>(
        &self,
        control: &Arc<Db>,
        account: Uuid,
        name: &'static str,
        op: impl FnOnce(&Engine<Note>, &Account, &Placement) -> Result<T, MoveError> + Send + 'static,
    ) -> Result<Option<(Account, T)>, StoreError> {
        let write = name != "get" && name != "list";
        let _slot = if write {
            Some(self.writes.acquire().await.map_err(|e| {
                StoreError::Task(self.engine.control().path().to_path_buf(), e.to_string())
            })?)
        } else {
            None
        };
        let (proxy, control) = (self.clone(), Arc::clone(control));
        let path = control.path().to_path_buf();
        let work = move || -> Result<Option<(Account, T)>, StoreError> {
            let found = control
                .with_reader(|c| accounts::get(c, account))
                .map_err(|source| StoreError::Sqlite {
                    path: control.path().to_path_buf(),
                    source,
                })?;
            let Some(found) = found else { return Ok(None) };
            let Some(placement) = found.placement.clone() else {
                return Err(MoveError::Unplaced(found.id.to_string()).into());
            };
            let started = Instant::now();
            let result = op(&proxy.engine, &found, &placement);
            let store = placement.target.as_deref().unwrap_or(&placement.location);
            proxy
                .telemetry
                .store(store, name, started.elapsed(), result.is_err());
            Ok(Some((found, result?)))
        };
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| StoreError::Task(path, e.to_string()))?
    }

    /// The account's note ids; `None` if the account does not exist.
    pub async fn list(
        &self,
        control: &Arc<Db>,
        account: Uuid,
    ) -> Result<Option<Vec<Uuid>>, StoreError> {
        let r = self
            .on_account(control, account, "list", |e, a, p| e.list(p, &a.id))
            .await?;
        Ok(r.map(|(_, ids)| ids))
    }

    /// `None` if the account does not exist; `Some(None)` if the note does not.
    pub async fn get(
        &self,
        control: &Arc<Db>,
        account: Uuid,
        note: Uuid,
    ) -> Result<Option<Option<Note>>, StoreError> {
        let r = self
            .on_account(control, account, "get", move |e, a, p| {
                e.get(p, &a.id, &note)
            })
            .await?;
        Ok(r.map(|(_, n)| n))
    }

    /// Creates the note `make` builds for the account; `Some(None)` if its id is taken.
    pub async fn create(
        &self,
        control: &Arc<Db>,
        account: Uuid,
        make: impl FnOnce(&Account) -> Note + Send + 'static,
    ) -> Result<Option<Option<Note>>, StoreError> {
        let r = self
            .on_account(control, account, "create", move |e, a, _| {
                let note = make(a);
                Ok(e.create(&note)?.then_some(note))
            })
            .await?;
        Ok(r.map(|(_, n)| n))
    }

    /// Last write wins. With a client time (`updated_at`), the content changes only if it is
    /// newer than the stored note's. Without one, the server stamps the write strictly newer
    /// than what is stored (`max(now, stored + 1 ms)`, decided under the write lock), so an
    /// acknowledged write without a client time always wins, even in the same millisecond as
    /// the previous one. `createdAt` is kept. `Some(None)` if the account has no such note.
    pub async fn update(
        &self,
        control: &Arc<Db>,
        account: Uuid,
        note: Uuid,
        content: String,
        updated_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Option<Note>>, StoreError> {
        let r = self
            .on_account(control, account, "update", move |e, a, _| {
                e.update(&a.id, &note, |current| {
                    let at = match updated_at {
                        Some(client) => client,
                        None => server_time(current.updated_at),
                    };
                    (at > current.updated_at).then(|| Note {
                        content: content.clone(),
                        updated_at: at,
                        ..current.clone()
                    })
                })
            })
            .await?;
        Ok(r.map(|(_, n)| n))
    }

    /// Deletes the note if it exists; `None` if the account does not.
    pub async fn delete(
        &self,
        control: &Arc<Db>,
        account: Uuid,
        note: Uuid,
    ) -> Result<Option<()>, StoreError> {
        let r = self
            .on_account(control, account, "delete", move |e, a, _| {
                e.delete(&a.id, &note)
            })
            .await?;
        Ok(r.map(|_| ()))
    }

    /// Notes per store.
    pub async fn totals(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || engine.totals())
            .await
            .map_err(|e| {
                StoreError::Task(self.engine.control().path().to_path_buf(), e.to_string())
            })?
            .map_err(StoreError::from)
    }
}

/// The time the server gives a write that brings none: now (in the store's milliseconds), or
/// one millisecond after `stored` if the clock has not moved past it (two writes in one
/// millisecond, or a stored time from a clock ahead of ours).
pub fn server_time(stored: DateTime<Utc>) -> DateTime<Utc> {
    let now = Utc::now().timestamp_millis();
    crate::store::from_millis(now.max(stored.timestamp_millis().saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_time_is_strictly_newer_than_the_stored_one() {
        let now = Utc::now();
        // The same millisecond as the stored write, and a stored time ahead of the clock.
        for stored in [now, now + chrono::Duration::seconds(5)] {
            let stored = crate::store::from_millis(stored.timestamp_millis());
            assert!(server_time(stored) > stored);
        }
        let old = crate::store::from_millis(0);
        assert!(server_time(old) >= crate::store::from_millis(now.timestamp_millis()));
    }
}
