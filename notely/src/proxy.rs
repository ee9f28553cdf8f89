//! The data proxy: every note operation goes through it, and it routes each to the store that
//! holds the account's notes. Today every account lives in the one note store; online moves
//! between stores and sharding plug in here.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::{Account, Db, Note, StoreError, notes};

/// Routes note calls to stores.
#[derive(Debug, Clone)]
pub struct NoteProxy {
    default: Arc<Db>,
}

impl NoteProxy {
    /// A proxy sending every account to `default`.
    pub fn new(default: Arc<Db>) -> Self {
        NoteProxy { default }
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
        let id = account.id;
        self.store_for(account)
            .read(move |c| notes::list(c, id))
            .await
    }

    pub async fn get(&self, account: &Account, note: Uuid) -> Result<Option<Note>, StoreError> {
        let id = account.id;
        self.store_for(account)
            .read(move |c| notes::get(c, id, note))
            .await
    }

    /// Creates `note`; false if its id is taken.
    pub async fn create(&self, account: &Account, note: Note) -> Result<bool, StoreError> {
        self.store_for(account)
            .write(move |c| notes::create(c, &note))
            .await
    }

    pub async fn update(
        &self,
        account: &Account,
        note: Uuid,
        content: String,
        updated_at: DateTime<Utc>,
    ) -> Result<Option<Note>, StoreError> {
        let id = account.id;
        self.store_for(account)
            .write(move |c| notes::update(c, id, note, &content, updated_at))
            .await
    }

    pub async fn delete(&self, account: &Account, note: Uuid) -> Result<(), StoreError> {
        let id = account.id;
        self.store_for(account)
            .write(move |c| notes::delete(c, id, note))
            .await
    }
}
