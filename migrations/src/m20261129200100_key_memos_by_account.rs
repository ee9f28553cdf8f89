use strata::{Result, migration};

use crate::m20261121100100_create_legacy_memos as before;

strata::schema! {
    /// Notes as the legacy store kept them: text ids, RFC 3339 text times, other names. A memo
    /// is identified by its account and its id.
    table memos {
        /// The note id, as hyphenated UUID text.
        memo_id: String,
        /// The owning account's id, as hyphenated UUID text.
        account_ref: String,
        body: String,
        /// RFC 3339 with milliseconds, UTC.
        created: String,
        modified: String,
        /// An account's memos in id order: the key serves what `memos_by_account` did.
        primary key (account_ref, memo_id),
    }
}

/// Key memos by (account, memo id), as notes are: two accounts may use the same note id in
/// every store, so a move between stores can never meet another account's record.
#[migration(
    20261129200100,
    role = "legacy",
    contract,
    foreign_keys = off,
    down = key_memos_by_id,
    test_data = shared_ids
)]
fn key_memos_by_account(tx: &mut strata::Tx) -> Result<()> {
    tx.rebuild_table(memos::Table, |tx| {
        tx.select::<before::memos::Row>()
            .order_by(before::memos::ACCOUNT_REF)
            .for_each(|m| {
                tx.insert(&memos::Row {
                    memo_id: m.memo_id,
                    account_ref: m.account_ref,
                    body: m.body,
                    created: m.created,
                    modified: m.modified,
                })
            })
    })
}

/// Back to one key per memo id, which only works while no two accounts share a memo id.
fn key_memos_by_id(tx: &mut strata::Tx) -> Result<()> {
    let shared: Option<(String, i64)> = {
        let mut stmt = tx.conn().prepare(
            "SELECT memo_id, count(*) FROM memos GROUP BY memo_id HAVING count(*) > 1 \
             ORDER BY memo_id LIMIT 1",
        )?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .next()
            .transpose()?
    };
    if let Some((id, n)) = shared {
        return Err(strata::Error::msg(format!(
            "memo id {id} is used by {n} accounts: keyed by id alone, the legacy store cannot \
             hold them; delete or re-create those notes under new ids first"
        )));
    }
    tx.rebuild_table(before::memos::Table, |tx| {
        tx.select::<memos::Row>()
            .order_by(memos::ACCOUNT_REF)
            .for_each(|m| {
                tx.insert(&before::memos::Row {
                    memo_id: m.memo_id,
                    account_ref: m.account_ref,
                    body: m.body,
                    created: m.created,
                    modified: m.modified,
                })
            })
    })
}

/// Test rows: a second account using the first one's memo id.
fn shared_ids(tx: &mut strata::Tx) -> Result<()> {
    tx.insert(&memos::Row {
        memo_id: "00000000-0000-0000-0000-000000000200".into(),
        account_ref: "00000000-0000-0000-0000-000000000002".into(),
        body: "memo of another account, same id".into(),
        created: "2023-05-03T10:00:00.000Z".into(),
        modified: "2023-05-03T10:00:00.000Z".into(),
    })
}
