//! Notely's schema migrations, one file per migration, named after its version.
//!
//! Roles: [`CONTROL`] is the control database (accounts and the placement directory),
//! [`NOTES`] a note store, [`LEGACY`] the legacy note store with its own schema.
//! Each migration declares, with `strata::schema!`, its role's tables as it leaves them; a later
//! migration starts from a copy of the previous one's declaration.
//!
//! The `next` feature adds the release after this one: note titles, as an expand
//! ([`m20261130090000_add_note_titles`]) and a contract ([`m20261130090100_require_note_titles`]),
//! so that tests and the demo can deploy a binary with more migrations over a running one.

strata::migrations!();

/// The control database: accounts.
pub const CONTROL: &str = "control";
/// A note store.
pub const NOTES: &str = "notes";
/// The legacy note store.
pub const LEGACY: &str = "legacy";

/// Control: creates the accounts table.
pub mod m20240226153000_create_accounts;
/// Notes: creates the notes table.
pub mod m20240226153100_create_notes;
/// Notes: indexes notes by account and creation time.
pub mod m20240301090000_index_notes_by_creator;
/// Control: adds the placement directory, which takes over `is_migrating` and `shard`.
pub mod m20261121100000_place_accounts;
/// Legacy: creates the memos table of the legacy note store.
pub mod m20261121100100_create_legacy_memos;
/// Notes: keys notes by (account, note id) instead of the note id alone.
pub mod m20261129200000_key_notes_by_account;
/// Legacy: keys memos by (account, memo id) instead of the memo id alone.
pub mod m20261129200100_key_memos_by_account;
/// Notes: a nullable title, filled from each note's first line (expand; feature `next`).
#[cfg(feature = "next")]
pub mod m20261130090000_add_note_titles;
/// Notes: titles computed again and required (contract; feature `next`).
#[cfg(feature = "next")]
pub mod m20261130090100_require_note_titles;

/// A note's title: its first non-blank line, trimmed, at most 80 characters.
pub fn title_of(content: &str) -> String {
    let line = content
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(80).collect()
}
