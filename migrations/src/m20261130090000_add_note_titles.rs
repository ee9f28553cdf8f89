use strata::{Result, Tx, migration};
use uuid::Uuid;

use crate::m20261129200000_key_notes_by_account as before;

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
        /// The note's title: its first line, shortened. NULL where a binary that predates
        /// titles wrote the note; `require_note_titles` fills those in and makes it NOT NULL.
        title: Option<String>,
        primary key (creator, id),
        /// Listing an account's notes in creation order.
        index notes_by_creator (creator, created_at),
    }
}

/// Expand: notes get a nullable `title`, filled from the first line of every note there is.
/// Binaries without titles keep working beside this one (they do not write the column, which
/// stays NULL for their notes); this one writes it on every write.
#[migration(20261130090000, role = "notes", foreign_keys = off, down = drop_note_titles)]
fn add_note_titles(tx: &mut Tx) -> Result<()> {
    // The title rule as this release has it, inside the function so that the checksum covers
    // it (the application's `title_of` may change later; this migration may not).
    let title_of = |content: &str| -> String {
        let line = content
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        line.chars().take(80).collect()
    };
    tx.add_column(notes::TITLE)?;
    let all = tx.select::<notes::Row>().all()?;
    for n in all {
        tx.update(notes::Table)
            .set(notes::TITLE, Some(title_of(&n.content)))
            .filter(notes::CREATOR.eq(n.creator).and(notes::ID.eq(n.id)))
            .execute()?;
    }
    Ok(())
}

/// Back to notes without titles.
fn drop_note_titles(tx: &mut Tx) -> Result<()> {
    tx.rebuild_table(before::notes::Table, |tx| {
        tx.select::<notes::Row>().for_each(|n| {
            tx.insert(&before::notes::Row {
                id: n.id,
                creator: n.creator,
                created_at: n.created_at,
                updated_at: n.updated_at,
                content: n.content,
            })
        })
    })
}
