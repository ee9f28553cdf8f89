//! Leases and process identity: who runs a `no_transaction` migration (or, for
//! `strata-online`, a move), and whether that process is certainly gone.
//!
//! A process names itself `host/pid@start` ([`lease_holder`]), the start time telling a reused
//! pid from the holder. On the holder's host a lease is stale when that process no longer
//! exists; on another host it cannot be known, so callers add their own timeout.

use std::path::Path;

use crate::store::{actor, hostname};

/// The lease of a running `no_transaction` migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Lease {
    /// The holding process, as [`lease_holder`] names it: `host/pid@start`.
    pub holder: String,
    /// The host the holder runs on.
    pub host: String,
    /// The holder's process id on `host`.
    pub pid: i64,
    /// The version of the migration running under the lease.
    pub version: i64,
    /// When the lease was taken: UTC, RFC 3339 with milliseconds.
    pub acquired_at: String,
}

impl Lease {
    /// Whether the holder is certainly gone. On the holder's host: its process no longer
    /// exists, or the pid now belongs to another process (another start time, or this very
    /// process, which runs one migration per database at a time). Elsewhere it cannot be
    /// known, so the lease is taken as held.
    pub fn is_stale(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        if self.pid == i64::from(std::process::id()) {
            return self.holder != lease_holder();
        }
        match process_start(self.pid) {
            None => Path::new("/proc/self").exists(),
            Some(start) => !self.holder.ends_with(&format!("@{start}")),
        }
    }
}

/// Whether the process named `holder` (as [`lease_holder`] names it) is certainly gone.
pub fn holder_is_gone(holder: &str) -> bool {
    let Some((host, rest)) = holder.split_once('/') else {
        return false;
    };
    let Some(pid) = rest.split_once('@').and_then(|(p, _)| p.parse().ok()) else {
        return false;
    };
    Lease {
        holder: holder.to_string(),
        host: host.to_string(),
        pid,
        version: 0,
        acquired_at: String::new(),
    }
    .is_stale()
}

/// Start time of process `pid` (clock ticks since boot, `/proc/<pid>/stat` field 22); `None`
/// when there is no such process, or only its zombie (it has ended; its parent has not
/// collected its exit status yet).
pub(crate) fn process_start(pid: i64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are space-separated.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    if matches!(fields.next(), Some("Z" | "X")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// How this process names itself in a lease: `host/pid@start`, so that a reused pid is not
/// mistaken for the holder.
pub fn lease_holder() -> String {
    let start = process_start(i64::from(std::process::id())).unwrap_or(0);
    format!("{}@{start}", actor())
}
