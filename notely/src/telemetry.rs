//! Telemetry: per API route and per store operation — count, requests per minute, p50/p95/p99,
//! errors — plus note counts per store, consistency misses, and recent log lines.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;
use strata_online::MoveStatus;

/// Latency samples kept per series for percentiles.
const WINDOW: usize = 4096;
/// Log lines kept.
const LOG_LINES: usize = 1000;

#[derive(Debug)]
struct Series {
    count: u64,
    errors: u64,
    /// Recent latencies in microseconds (ring).
    samples: VecDeque<u64>,
    /// Requests per second over the last minute: `(second, count)` per slot, the slot being the
    /// second mod 60.
    per_second: [(u64, u64); 60],
}

impl Default for Series {
    fn default() -> Self {
        Series {
            count: 0,
            errors: 0,
            samples: VecDeque::new(),
            per_second: [(u64::MAX, 0); 60],
        }
    }
}

/// Seconds since the process's first telemetry call, for the per-second slots.
fn second(now: Instant) -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    now.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_secs()
}

/// A series as shown: counts, rate and latency percentiles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub count: u64,
    pub errors: u64,
    pub per_minute: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Percentile `p` (0..=100) of `sorted` microseconds, in milliseconds.
pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

impl Series {
    fn record(&mut self, took: Duration, error: bool, now: Instant) {
        self.count += 1;
        self.errors += u64::from(error);
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(took.as_micros() as u64);
        let sec = second(now);
        let slot = &mut self.per_second[(sec % 60) as usize];
        if slot.0 != sec {
            *slot = (sec, 0);
        }
        slot.1 += 1;
    }

    /// Requests in the last 60 seconds.
    fn per_minute(&self, now: Instant) -> u64 {
        let sec = second(now);
        self.per_second
            .iter()
            .filter(|(s, _)| sec.saturating_sub(*s) < 60)
            .map(|(_, n)| n)
            .sum()
    }

    fn stats(&mut self, now: Instant) -> Stats {
        let mut sorted: Vec<u64> = self.samples.iter().copied().collect();
        sorted.sort_unstable();
        Stats {
            count: self.count,
            errors: self.errors,
            per_minute: self.per_minute(now),
            p50_ms: percentile(&sorted, 50.0),
            p95_ms: percentile(&sorted, 95.0),
            p99_ms: percentile(&sorted, 99.0),
        }
    }
}

/// Everything the service measures; shared by the API, the proxy, the load generator and the
/// terminal UI.
#[derive(Debug, Default)]
pub struct Telemetry {
    /// By method, then route (looked up without allocating).
    api: Mutex<HashMap<String, HashMap<String, Series>>>,
    /// By store, then operation.
    stores: Mutex<HashMap<String, HashMap<String, Series>>>,
    note_counts: Mutex<BTreeMap<String, i64>>,
    misses: Mutex<u64>,
    logs: Mutex<VecDeque<String>>,
    moves: Mutex<BTreeMap<i64, MoveStatus>>,
    /// Database files that reported damage (SQLITE_CORRUPT, SQLITE_NOTADB), with SQLite's
    /// message: remembered until the process ends (a restore needs a restart anyway).
    damaged: Mutex<BTreeMap<std::path::PathBuf, String>>,
    /// Every API request's duration with its time: the move worker's latency signal.
    recent_api: strata_online::pace::Latencies,
}

/// A snapshot for display.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// `METHOD /route` → stats.
    pub api: BTreeMap<String, Stats>,
    /// `store op` → stats.
    pub stores: BTreeMap<String, Stats>,
    pub note_counts: BTreeMap<String, i64>,
    pub consistency_misses: u64,
    /// Data moves, newest first.
    pub moves: Vec<MoveStatus>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Records into `series[outer][inner]`, allocating the keys only the first time.
fn record(
    series: &Mutex<HashMap<String, HashMap<String, Series>>>,
    outer: &str,
    inner: &str,
    took: Duration,
    error: bool,
) {
    let now = Instant::now();
    let mut all = lock(series);
    if !all.contains_key(outer) {
        all.insert(outer.to_string(), HashMap::new());
    }
    let by_inner = all.get_mut(outer).expect("inserted above");
    if !by_inner.contains_key(inner) {
        by_inner.insert(inner.to_string(), Series::default());
    }
    by_inner
        .get_mut(inner)
        .expect("inserted above")
        .record(took, error, now);
}

/// `"outer inner"` → stats, sorted.
fn stats_of(
    series: &Mutex<HashMap<String, HashMap<String, Series>>>,
    now: Instant,
) -> BTreeMap<String, Stats> {
    lock(series)
        .iter_mut()
        .flat_map(|(outer, by_inner)| {
            by_inner
                .iter_mut()
                .map(move |(inner, s)| (format!("{outer} {inner}"), s.stats(now)))
        })
        .collect()
}

impl Telemetry {
    /// One API request: `route` is the matched route template.
    pub fn api(&self, method: &str, route: &str, took: Duration, server_error: bool) {
        record(&self.api, method, route, took, server_error);
        self.recent_api.record(took);
    }

    /// The API's p99 over the last `window` (ms), `None` with too few requests to tell.
    pub fn api_p99_recent(&self, window: Duration) -> Option<f64> {
        self.recent_api.p99(window).map(|(p, _)| p)
    }

    /// One store operation.
    pub fn store(&self, store: &str, op: &str, took: Duration, error: bool) {
        record(&self.stores, store, op, took, error);
    }

    /// The latest progress of a data move.
    pub fn move_progress(&self, status: &MoveStatus) {
        lock(&self.moves).insert(status.record.id, status.clone());
    }

    pub fn note_count(&self, store: &str, count: i64) {
        lock(&self.note_counts).insert(store.to_string(), count);
    }

    /// A strict user saw the service contradict what it did.
    pub fn consistency_miss(&self, what: &str) {
        *lock(&self.misses) += 1;
        self.log(format!("WARN CONSISTENCY ERROR: {what}"));
    }

    pub fn misses(&self) -> u64 {
        *lock(&self.misses)
    }

    /// Appends a log line (the newest 1000 are kept).
    pub fn log(&self, line: String) {
        let mut logs = lock(&self.logs);
        if logs.len() == LOG_LINES {
            logs.pop_front();
        }
        logs.push_back(format!(
            "{} {line}",
            chrono::Utc::now().format("%H:%M:%S%.3f")
        ));
    }

    /// A database reported damage; `true` the first time for this file.
    pub fn damaged(&self, path: &std::path::Path, message: &str) -> bool {
        let mut damaged = lock(&self.damaged);
        if damaged.contains_key(path) {
            return false;
        }
        damaged.insert(path.to_path_buf(), message.to_string());
        true
    }

    /// The database files that reported damage, with SQLite's message.
    pub fn damaged_stores(&self) -> BTreeMap<std::path::PathBuf, String> {
        lock(&self.damaged).clone()
    }

    /// The newest `n` log lines, oldest first.
    pub fn recent_logs(&self, n: usize) -> Vec<String> {
        let logs = lock(&self.logs);
        logs.iter()
            .skip(logs.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        Snapshot {
            api: stats_of(&self.api, now),
            stores: stats_of(&self.stores, now),
            note_counts: lock(&self.note_counts).clone(),
            consistency_misses: self.misses(),
            moves: lock(&self.moves).values().rev().cloned().collect(),
        }
    }
}

/// Telemetries that receive the process's log events ([`LogLayer`]), weakly held.
fn sinks() -> &'static Mutex<Vec<std::sync::Weak<Telemetry>>> {
    static SINKS: std::sync::OnceLock<Mutex<Vec<std::sync::Weak<Telemetry>>>> =
        std::sync::OnceLock::new();
    SINKS.get_or_init(Mutex::default)
}

impl Telemetry {
    /// A telemetry that also receives every `tracing` event of the process at INFO and above
    /// (when `main` installed [`LogLayer`]): its recent lines are the TUI's Logs page.
    pub fn capturing() -> std::sync::Arc<Telemetry> {
        let telemetry = std::sync::Arc::new(Telemetry::default());
        let mut sinks = lock(sinks());
        sinks.retain(|w| w.strong_count() > 0);
        sinks.push(std::sync::Arc::downgrade(&telemetry));
        telemetry
    }
}

/// A `tracing` layer that keeps log events (INFO and above) as lines in the telemetries made
/// with [`Telemetry::capturing`]: the TUI shows them, and under the TUI nothing else prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogLayer;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let level = *event.metadata().level();
        if level > tracing::Level::INFO {
            return;
        }
        let live: Vec<std::sync::Arc<Telemetry>> = lock(sinks())
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .collect();
        if live.is_empty() {
            return;
        }
        let mut line = format!("{level} ");
        event.record(&mut Fields(&mut line));
        for telemetry in live {
            telemetry.log(line.clone());
        }
    }
}

/// An event's message, then its other fields as `name=value`.
struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            self.0.push_str(&format!(" {}={value}", field.name()));
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_rates() {
        let t = Telemetry::default();
        for ms in 1..=100u64 {
            t.api("GET", "/x", Duration::from_millis(ms), ms == 100);
        }
        let s = &t.snapshot().api["GET /x"];
        assert_eq!((s.count, s.errors, s.per_minute), (100, 1, 100));
        assert_eq!((s.p50_ms, s.p95_ms, s.p99_ms), (51.0, 95.0, 99.0));
        assert_eq!(percentile(&[], 99.0), 0.0);
    }

    #[test]
    fn misses_are_counted_and_logged() {
        let t = Telemetry::default();
        t.consistency_miss("note x has stale content");
        assert_eq!(t.misses(), 1);
        assert!(t.recent_logs(5)[0].contains("CONSISTENCY ERROR: note x"));
    }
}
