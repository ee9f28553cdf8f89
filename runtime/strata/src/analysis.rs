//! [`Analysis`]: the binary's migrations compared with a database's history, which the
//! runner's policies and the migrator's status read.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::MigrationId;
use crate::migration::Migration;
use crate::store::AppliedMigration;

/// The comparison of the binary's migrations with a database's history.
pub(crate) struct Analysis<'h> {
    pub pending: Vec<&'static Migration>,
    pub changed: Vec<(&'static Migration, &'h AppliedMigration)>,
    pub unknown: Vec<&'h AppliedMigration>,
    pub out_of_order: Vec<&'static Migration>,
    pub newest: Option<&'h AppliedMigration>,
    /// The newest version the binary knows.
    pub known_newest: Option<i64>,
}

pub(crate) fn analyze<'h>(
    known: &[&'static Migration],
    history: &'h [AppliedMigration],
) -> Analysis<'h> {
    let applied: BTreeMap<i64, &AppliedMigration> =
        history.iter().map(|a| (a.version, a)).collect();
    let known_versions: BTreeSet<i64> = known.iter().map(|m| m.version()).collect();
    let newest = history.iter().max_by_key(|a| a.version);
    let mut a = Analysis {
        pending: Vec::new(),
        changed: Vec::new(),
        unknown: history
            .iter()
            .filter(|h| !known_versions.contains(&h.version))
            .collect(),
        out_of_order: Vec::new(),
        newest,
        known_newest: known.iter().map(|m| m.version()).max(),
    };
    for &m in known {
        match applied.get(&m.version()) {
            Some(row) if !m.checksum().matches_hex(&row.checksum) => a.changed.push((m, row)),
            Some(_) => {}
            None => {
                if newest.is_some_and(|n| n.version > m.version()) {
                    a.out_of_order.push(m);
                }
                a.pending.push(m);
            }
        }
    }
    a
}

pub(crate) fn id_of(a: &AppliedMigration) -> MigrationId {
    MigrationId {
        version: a.version,
        name: a.name.clone(),
    }
}
