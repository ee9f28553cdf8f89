//! The data proxy: every note operation goes through it, and it routes each to the store that
//! holds the account's notes. Today every account lives in the one note store; online moves
//! between stores and sharding plug in here.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use rusqlite::Connection;

use crate::store::{Account, Db, Note, StoreError, accounts, notes};
use crate::telemetry::Telemetry;

/// Routes note calls to stores.
#[derive(Debug, Clone)]
pub struct NoteProxy {
    default: Arc<Db>,
    telemetry: Arc<Telemetry>,
}

impl NoteProxy {
    /// A proxy sending every account to `default`.
    pub fn new(default: Arc<Db>, telemetry: Arc<Telemetry>) -> Self {
        NoteProxy { default, telemetry }
    }

    /// The store holding `account`'s notes.
    pub fn store_for(&self, _account: &Account) -> &Arc<Db> {
        &self.default
    }

    /// Every store behind the proxy.
    pub fn stores(&self) -> Vec<Arc<Db>> {
        vec![Arc::clone(&self.default)]
    }

    /// Looks the account up in `control` and runs `op` on the store holding its notes, in one
    /// trip to the blocking pool; `None` when the account does not exist. The store operation is
    /// recorded per store in the telemetry.
    async fn on_account<T: Send + 'static>(
        &self,
        control: &Arc<Db>,
        account: Uuid,
        name: &'static str,
        write: bool,
        op: impl FnOnce(&Account, &Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<Option<(Account, T)>, StoreError> {
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
            let db = proxy.store_for(&found);
            let started = Instant::now();
            let result = if write {
                db.with_writer(|c| op(&found, c))
            } else {
                db.with_reader(|c| op(&found, c))
            };
            proxy
                .telemetry
                .store(&store_name(db), name, started.elapsed(), result.is_err());
            let out = result.map_err(|source| StoreError::Sqlite {
                path: db.path().to_path_buf(),
                source,
            })?;
            Ok(Some((found, out)))
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
            .on_account(control, account, "list", false, |a, c| notes::list(c, a.id))
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
            .on_account(control, account, "get", false, move |a, c| {
                notes::get(c, a.id, note)
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
            .on_account(control, account, "create", true, move |a, c| {
                let note = make(a);
                Ok(notes::create(c, &note)?.then_some(note))
            })
            .await?;
        Ok(r.map(|(_, n)| n))
    }

    /// Last write wins; `Some(None)` if the account has no such note.
    pub async fn update(
        &self,
        control: &Arc<Db>,
        account: Uuid,
        note: Uuid,
        content: String,
        updated_at: DateTime<Utc>,
    ) -> Result<Option<Option<Note>>, StoreError> {
        let r = self
            .on_account(control, account, "update", true, move |a, c| {
                notes::update(c, a.id, note, &content, updated_at)
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
            .on_account(control, account, "delete", true, move |a, c| {
                notes::delete(c, a.id, note)
            })
            .await?;
        Ok(r.map(|_| ()))
    }
}

fn store_name(db: &Db) -> String {
    db.path()
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
