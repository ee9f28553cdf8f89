use strata::{Result, Tx, migration};
use uuid::Uuid;

use crate::m20261130090000_add_note_titles as before;

strata::schema! {
    /// Notes; times are Unix milliseconds. A note is identified by its account and its id:
    /// clients choose note ids, so two accounts may use the same one.
    table notes {
        id: Uuid,
        /// The account owning the note (in the control database).
        creator: Uuid,
        created_at: i64,
        updated_at: i64,
        content: String,
        /// The note's title: its first line, shortened.
        title: String,
        primary key (creator, id),
        /// Listing an account's notes in creation order.
        index notes_by_creator (creator, created_at),
    }
}

/// Contract: every note's title is computed again from its content (binaries without titles
/// may have changed the content since the expand) and `title` becomes NOT NULL. A binary
/// without titles would fail to insert a note now, so Strata applies this only once no
/// instance of one is alive.
#[migration(
    20261130090100,
    role = "notes",
    contract,
    foreign_keys = off,
    down = allow_missing_titles
)]
fn require_note_titles(tx: &mut Tx) -> Result<()> {
    // The title rule as this release has it (see `add_note_titles`).
    let title_of = |content: &str| -> String {
        let line = content
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        line.chars().take(80).collect()
    };
    tx.rebuild_table(notes::Table, |tx| {
        tx.select::<before::notes::Row>().for_each(|n| {
            tx.insert(&notes::Row {
                title: title_of(&n.content),
                id: n.id,
                creator: n.creator,
                created_at: n.created_at,
                updated_at: n.updated_at,
                content: n.content,
            })
        })
    })
}

/// Back to a nullable title.
fn allow_missing_titles(tx: &mut Tx) -> Result<()> {
    tx.rebuild_table(before::notes::Table, |tx| {
        tx.select::<notes::Row>().for_each(|n| {
            tx.insert(&before::notes::Row {
                id: n.id,
                creator: n.creator,
                created_at: n.created_at,
                updated_at: n.updated_at,
                content: n.content,
                title: Some(n.title),
            })
        })
    })
}
