//! The data proxy: every note operation goes through it, and it routes each to the store that
//! holds the account's notes. Today every account lives in the one note store; online moves
//! between stores and sharding plug in here.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::{Account, Db, Note, StoreError, notes};
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

    /// Runs one store operation, recording it per store in the telemetry.
    async fn timed<T>(
        &self,
        store: &Db,
        op: &str,
        f: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = f.await;
        let name = store
            .path()
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.telemetry
            .store(&name, op, started.elapsed(), result.is_err());
        result
    }

    /// The store holding `account`'s notes.
    pub fn store_for(&self, _account: &Account) -> &Arc<Db> {
        &self.default
    }

    /// Every store behind the proxy.
    pub fn stores(&self) -> Vec<Arc<Db>> {
        vec![Arc::clone(&self.default)]
    }

    pub async fn list(&self, account: &Account) -> Result<Vec<Uuid>, StoreError> {
        let (id, db) = (account.id, self.store_for(account));
        self.timed(db, "list", db.read(move |c| notes::list(c, id)))
            .await
    }

    pub async fn get(&self, account: &Account, note: Uuid) -> Result<Option<Note>, StoreError> {
        let (id, db) = (account.id, self.store_for(account));
        self.timed(db, "get", db.read(move |c| notes::get(c, id, note)))
            .await
    }

    /// Creates `note`; false if its id is taken.
    pub async fn create(&self, account: &Account, note: Note) -> Result<bool, StoreError> {
        let db = self.store_for(account);
        self.timed(db, "create", db.write(move |c| notes::create(c, &note)))
            .await
    }

    pub async fn update(
        &self,
        account: &Account,
        note: Uuid,
        content: String,
        updated_at: DateTime<Utc>,
    ) -> Result<Option<Note>, StoreError> {
        let (id, db) = (account.id, self.store_for(account));
        self.timed(
            db,
            "update",
            db.write(move |c| notes::update(c, id, note, &content, updated_at)),
        )
        .await
    }

    pub async fn delete(&self, account: &Account, note: Uuid) -> Result<(), StoreError> {
        let (id, db) = (account.id, self.store_for(account));
        self.timed(db, "delete", db.write(move |c| notes::delete(c, id, note)))
            .await
    }
}
