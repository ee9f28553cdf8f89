//! The data proxy: every note operation goes through it. It looks the account up together
//! with its placement (one query on the control database), then hands the operation to the
//! online engine, which routes it to the store holding the account's notes, or to both stores
//! while they move (see `strata_online`).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use strata_online::{Engine, MoveError, Placement};
use uuid::Uuid;

use crate::lane::Lane;
use crate::store::{Note, StoreError};
use crate::telemetry::Telemetry;

/// Routes note calls to stores.
#[derive(Debug, Clone)]
pub struct NoteProxy {
    engine: Arc<Engine<Note>>,
    telemetry: Arc<Telemetry>,
    /// The threads running reads (see [`crate::lane`]): never behind a write.
    reads: Lane,
    /// The threads running writes, two per core: enough for a store's group commit to take
    /// several writes at once (8 did worse on 2 cores, 2 no better). A write may wait there
    /// (for its group's commit, or while a move's backfill batch holds the store); reads have
    /// their own threads, so they never queue behind it.
    writes: Lane,
}

/// Threads running reads: one per core (reads do not block).
fn read_threads() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(2)
}

impl NoteProxy {
    pub fn new(engine: Arc<Engine<Note>>, telemetry: Arc<Telemetry>) -> Self {
        NoteProxy {
            engine,
            telemetry,
            reads: Lane::new("notely-read", read_threads()).expect("starting the read threads"),
            writes: Lane::new("notely-write", 2 * read_threads())
                .expect("starting the write threads"),
        }
    }

    /// The online engine behind the proxy.
    pub fn engine(&self) -> &Arc<Engine<Note>> {
        &self.engine
    }

    /// Looks the account's placement up in the directory and runs the read `op` with it, in
    /// one trip to the read threads; `None` when the account does not exist (the directory
    /// has no placement for it: every account is placed when it is created, in the same
    /// transaction). Recorded per store in the telemetry.
    async fn on_placed<T: Send + 'static>(
        &self,
        account: Uuid,
        name: &'static str,
        op: impl FnOnce(&Engine<Note>, &Placement) -> Result<T, MoveError> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let proxy = self.clone();
        let work = move || -> Result<Option<T>, StoreError> {
            let placement = match proxy.engine.placement(&account) {
                Ok(p) => p,
                Err(MoveError::Unplaced(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let started = Instant::now();
            let result = op(&proxy.engine, &placement);
            let store = placement.target.as_deref().unwrap_or(&placement.location);
            proxy
                .telemetry
                .store(store, name, started.elapsed(), result.is_err());
            Ok(Some(result?))
        };
        let path = self.engine.control().path().to_path_buf();
        self.reads
            .run(work)
            .await
            .map_err(|e| StoreError::Task(path, e.to_string()))?
    }

    /// Runs the write `op` for `account` on the write threads; `None` when the account does
    /// not exist (the directory has no placement for it: every account is placed when it is
    /// created, in the same transaction). The engine finds the placement itself, under the
    /// store's lock, with no separate look-up of the account. Recorded per store (the one
    /// receiving writes) in the telemetry.
    async fn on_owner<T: Send + 'static>(
        &self,
        account: Uuid,
        name: &'static str,
        op: impl FnOnce(&Engine<Note>) -> Result<T, MoveError> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let proxy = self.clone();
        let work = move || -> Result<Option<T>, StoreError> {
            let started = Instant::now();
            let result = op(&proxy.engine);
            if let Some(p) = proxy.engine.last_placement(&account) {
                let store = p.target.as_deref().unwrap_or(&p.location);
                proxy
                    .telemetry
                    .store(store, name, started.elapsed(), result.is_err());
            }
            match result {
                Ok(value) => Ok(Some(value)),
                Err(MoveError::Unplaced(_)) => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let path = self.engine.control().path().to_path_buf();
        self.writes
            .run(work)
            .await
            .map_err(|e| StoreError::Task(path, e.to_string()))?
    }

    /// The account's note ids; `None` if the account does not exist.
    pub async fn list(&self, account: Uuid) -> Result<Option<Vec<Uuid>>, StoreError> {
        self.on_placed(account, "list", move |e, p| e.list(p, &account))
            .await
    }

    /// `None` if the account does not exist; `Some(None)` if the note does not.
    pub async fn get(&self, account: Uuid, note: Uuid) -> Result<Option<Option<Note>>, StoreError> {
        self.on_placed(account, "get", move |e, p| e.get(p, &account, &note))
            .await
    }

    /// Creates the note `make` builds for the account (given its id); `None` if the account
    /// does not exist, `Some(None)` if the note's id is taken.
    pub async fn create(
        &self,
        account: Uuid,
        make: impl FnOnce(Uuid) -> Note + Send + 'static,
    ) -> Result<Option<Option<Note>>, StoreError> {
        self.on_owner(account, "create", move |e| {
            let note = make(account);
            Ok(e.create(&note)?.then_some(note))
        })
        .await
    }

    /// Last write wins. With a client time (`updated_at`), the content changes only if it is
    /// newer than the stored note's. Without one, the server stamps the write strictly newer
    /// than what is stored (`max(now, stored + 1 ms)`, decided under the write lock), so an
    /// acknowledged write without a client time always wins, even in the same millisecond as
    /// the previous one. `createdAt` is kept. `Some(None)` if the account has no such note.
    pub async fn update(
        &self,
        account: Uuid,
        note: Uuid,
        content: String,
        updated_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Option<Note>>, StoreError> {
        self.on_owner(account, "update", move |e| {
            e.update(&account, &note, |current| {
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
        .await
    }

    /// Deletes the note if it exists; `None` if the account does not.
    pub async fn delete(&self, account: Uuid, note: Uuid) -> Result<Option<()>, StoreError> {
        let r = self
            .on_owner(account, "delete", move |e| e.delete(&account, &note))
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
