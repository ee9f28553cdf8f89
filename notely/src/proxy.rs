//! The data proxy: every note operation goes through it. It looks the account up together
//! with its placement (one query on the control database), then hands the operation to the
//! online engine, which routes it to the store holding the account's notes, or to both stores
//! while they move (see `strata_online`).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use chrono::{DateTime, Utc};
use strata_online::{Engine, MoveError, Placement};
use uuid::Uuid;

use crate::lane::Lane;
use crate::store::{Note, StoreError};
use crate::telemetry::Telemetry;

/// Routes note calls to stores.
#[derive(Debug, Clone)]
pub struct NoteProxy {
    engine: Arc<Engine<Note>>,
    telemetry: Arc<Telemetry>,
    /// The threads running reads (see [`crate::lane`]): never behind a write.
    reads: Lane,
    /// The threads running writes, two per core: enough for a store's group commit to take
    /// several writes at once (8 did worse on 2 cores, 2 no better). A write may wait there
    /// (for its group's commit, or while a move's backfill batch holds the store); reads have
    /// their own threads, so they never queue behind it.
    writes: Lane,
    /// Note reads waiting for a read thread (see [`NoteProxy::get`]).
    gets: Arc<Mutex<Gets>>,
    /// Writes waiting for a write thread (see [`NoteProxy::on_owner`]).
    writes_waiting: Arc<Mutex<Writes>>,
}

/// A write for [`Engine::batch`]: it runs, and returns what answers its request once the
/// batch knows whether it committed.
type Write = Box<dyn FnOnce(&Engine<Note>) -> Answer + Send>;
type Answer = Box<dyn FnOnce(Result<(), MoveError>) + Send>;

/// Writes waiting for a write thread.
#[derive(Default)]
struct Writes {
    waiting: Vec<Write>,
    /// A write thread has been asked to take them (and has not yet).
    started: bool,
}

impl std::fmt::Debug for Writes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writes")
            .field("waiting", &self.waiting.len())
            .field("started", &self.started)
            .finish()
    }
}

/// A thread reading notes: when it is done (or panics), the reads that came meanwhile go to
/// a read thread, or nobody is reading any more.
struct Reading<'a>(&'a NoteProxy);

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.read_done();
    }
}

/// Note reads waiting while another thread reads.
#[derive(Debug, Default)]
struct Gets {
    waiting: Vec<((Uuid, Uuid), GetAnswer)>,
    /// A thread is reading notes (or has been asked to read the waiting ones).
    reading: bool,
}

type GetAnswer = tokio::sync::oneshot::Sender<Result<Option<Option<Note>>, StoreError>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Threads running reads: one per core (reads do not block).
fn read_threads() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(2)
}

impl NoteProxy {
    pub fn new(engine: Arc<Engine<Note>>, telemetry: Arc<Telemetry>) -> Self {
        NoteProxy {
            engine,
            telemetry,
            reads: Lane::new("notely-read", read_threads()).expect("starting the read threads"),
            writes: Lane::new("notely-write", 2 * read_threads())
                .expect("starting the write threads"),
            gets: Arc::default(),
            writes_waiting: Arc::default(),
        }
    }

    /// The online engine behind the proxy.
    pub fn engine(&self) -> &Arc<Engine<Note>> {
        &self.engine
    }

    /// Looks the account's placement up in the directory and runs the read `op` with it, in
    /// one trip to the read threads; `None` when the account does not exist (the directory
    /// has no placement for it: every account is placed when it is created, in the same
    /// transaction). Recorded per store in the telemetry.
    async fn on_placed<T: Send + 'static>(
        &self,
        account: Uuid,
        name: &'static str,
        op: impl FnOnce(&Engine<Note>, &Placement) -> Result<T, MoveError> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let proxy = self.clone();
        let work = move || -> Result<Option<T>, StoreError> {
            let placement = match proxy.engine.placement(&account) {
                Ok(p) => p,
                Err(MoveError::Unplaced(_)) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let started = Instant::now();
            let result = op(&proxy.engine, &placement);
            let store = placement.target.as_deref().unwrap_or(&placement.location);
            proxy
                .telemetry
                .store(store, name, started.elapsed(), result.is_err());
            Ok(Some(result?))
        };
        self.reads.run(work).await.map_err(|e| self.failed(e))?
    }

    /// A request's error when the thread running it stopped or panicked before answering.
    fn failed(&self, why: impl ToString) -> StoreError {
        StoreError::Task(self.engine.control().path().to_path_buf(), why.to_string())
    }

    /// Runs the write `op` for `account` on the write threads; `None` when the account does
    /// not exist (the directory has no placement for it: every account is placed when it is
    /// created, in the same transaction). The engine finds the placement itself, under the
    /// store's lock, with no separate look-up of the account. Recorded per store (the one
    /// receiving writes) in the telemetry.
    ///
    /// Writes arriving together are written together ([`Engine::batch`]): each waits in
    /// `writes_waiting` until a write thread, asked by the first of them, takes every write
    /// waiting, runs them in its store's group transaction and answers each once its write
    /// committed (batches of writes arriving meanwhile may run on the other write threads).
    async fn on_owner<T: Send + 'static>(
        &self,
        account: Uuid,
        name: &'static str,
        op: impl FnOnce(&Engine<Note>) -> Result<T, MoveError> + Send + 'static,
    ) -> Result<Option<T>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let telemetry = Arc::clone(&self.telemetry);
        let path = self.engine.control().path().to_path_buf();
        let write: Write = Box::new(move |engine| {
            let started = Instant::now();
            // A panicking write fails without ending the batch (one inside its transaction
            // rolls its whole group back, whose other writes then fail too).
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(engine)));
            if let Some(p) = engine.last_placement(&account) {
                let store = p.target.as_deref().unwrap_or(&p.location);
                let failed = !matches!(result, Ok(Ok(_)));
                telemetry.store(store, name, started.elapsed(), failed);
            }
            Box::new(move |committed| {
                let answer = match (result, committed) {
                    (Ok(Ok(value)), Ok(())) => Ok(Some(value)),
                    (Ok(Ok(_)), Err(e)) => Err(e.into()),
                    (Ok(Err(MoveError::Unplaced(_))), _) => Ok(None),
                    (Ok(Err(e)), _) => Err(e.into()),
                    (Err(_), _) => Err(StoreError::Task(path, "the write panicked".into())),
                };
                let _ = tx.send(answer);
            })
        });
        let start = {
            let mut writes = lock(&self.writes_waiting);
            writes.waiting.push(write);
            !std::mem::replace(&mut writes.started, true)
        };
        if start {
            let proxy = self.clone();
            self.writes.spawn(move || proxy.write_waiting());
        }
        rx.await
            .map_err(|_| self.failed(crate::lane::Stopped(self.writes.name())))?
    }

    /// Runs every write waiting in `writes_waiting` as one batch, on a write thread, and
    /// answers each once it committed.
    fn write_waiting(&self) {
        let waiting = {
            let mut writes = lock(&self.writes_waiting);
            writes.started = false;
            std::mem::take(&mut writes.waiting)
        };
        for (answer, committed) in self.engine.batch(waiting) {
            answer(committed);
        }
    }

    /// The account's note ids; `None` if the account does not exist.
    pub async fn list(&self, account: Uuid) -> Result<Option<Vec<Uuid>>, StoreError> {
        self.on_placed(account, "list", move |e, p| e.list(p, &account))
            .await
    }

    /// `None` if the account does not exist; `Some(None)` if the note does not.
    ///
    /// A note the engine remembers (nothing committed to its databases since it was read,
    /// see [`Engine::remembered`]) is answered at once, on the calling thread. Otherwise one
    /// thread reads at a time (two reading the same database at once contend for
    /// SQLite's lock on its shared memory): a read that finds nobody reading reads at once,
    /// on the calling thread (no hand-off: a look-up of two indexed rows costs less than the
    /// thread switches); the reads arriving meanwhile wait in `gets`, and are read together
    /// ([`Engine::get_many`]) by a read thread, so a batch pays for each database's read lock
    /// once.
    pub async fn get(&self, account: Uuid, note: Uuid) -> Result<Option<Option<Note>>, StoreError> {
        let started = Instant::now();
        if let Some((p, found)) = self.engine.remembered(&account, &note) {
            let store = p.target.as_deref().unwrap_or(&p.location);
            self.telemetry.store(store, "get", started.elapsed(), false);
            return Ok(Some(found));
        }
        let rx = {
            let mut gets = lock(&self.gets);
            if gets.reading {
                let (tx, rx) = tokio::sync::oneshot::channel();
                gets.waiting.push(((account, note), tx));
                Some(rx)
            } else {
                gets.reading = true;
                None
            }
        };
        let Some(rx) = rx else {
            let _reading = Reading(self);
            // (A panic is this request's error, as on a read thread, not the connection's.)
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.read(&[(account, note)]).pop()
            }));
            return match read {
                Ok(found) => found.unwrap_or(Ok(None)),
                Err(_) => Err(self.failed("the read panicked")),
            };
        };
        rx.await
            .map_err(|_| self.failed(crate::lane::Stopped(self.reads.name())))?
    }

    /// After a read: the reads that came meanwhile go to a read thread, or nobody is reading.
    fn read_done(&self) {
        let mut gets = lock(&self.gets);
        if gets.waiting.is_empty() {
            gets.reading = false;
        } else {
            drop(gets);
            let proxy = self.clone();
            self.reads.spawn(move || proxy.read_waiting());
        }
    }

    /// Reads the notes waiting in `gets` and answers each, until none are left (on a read
    /// thread).
    fn read_waiting(&self) {
        loop {
            let waiting = {
                let mut gets = lock(&self.gets);
                if gets.waiting.is_empty() {
                    gets.reading = false;
                    return;
                }
                std::mem::take(&mut gets.waiting)
            };
            let (wanted, answers): (Vec<_>, Vec<_>) = waiting.into_iter().unzip();
            // (On a panic, `Reading` hands the reads waiting to another read thread.)
            let reading = Reading(self);
            let found = self.read(&wanted);
            std::mem::forget(reading);
            for (found, answer) in found.into_iter().zip(answers) {
                let _ = answer.send(found);
            }
        }
    }

    /// Reads `wanted` as one batch, recorded per store in the telemetry.
    fn read(&self, wanted: &[(Uuid, Uuid)]) -> Vec<Result<Option<Option<Note>>, StoreError>> {
        let started = Instant::now();
        let found = self.engine.get_many(wanted);
        let took = started.elapsed();
        found
            .into_iter()
            .map(|found| match found {
                Ok(Some((p, note))) => {
                    let store = p.target.as_deref().unwrap_or(&p.location);
                    self.telemetry.store(store, "get", took, false);
                    Ok(Some(note))
                }
                Ok(None) => Ok(None),
                Err(e) => {
                    if let MoveError::Sqlite { location, .. } | MoveError::Layout { location, .. } =
                        &e
                    {
                        self.telemetry.store(location, "get", took, true);
                    }
                    Err(StoreError::from(e))
                }
            })
            .collect()
    }

    /// Creates the note `make` builds for the account (given its id); `None` if the account
    /// does not exist, `Some(None)` if the note's id is taken.
    pub async fn create(
        &self,
        account: Uuid,
        make: impl FnOnce(Uuid) -> Note + Send + 'static,
    ) -> Result<Option<Option<Note>>, StoreError> {
        self.on_owner(account, "create", move |e| {
            let note = make(account);
            Ok(e.create(&note)?.then_some(note))
        })
        .await
    }

    /// Last write wins. With a client time (`updated_at`), the content changes only if it is
    /// newer than the stored note's. Without one, the server stamps the write strictly newer
    /// than what is stored (`max(now, stored + 1 ms)`, decided under the write lock), so an
    /// acknowledged write without a client time always wins, even in the same millisecond as
    /// the previous one. `createdAt` is kept. `Some(None)` if the account has no such note.
    pub async fn update(
        &self,
        account: Uuid,
        note: Uuid,
        content: String,
        updated_at: Option<DateTime<Utc>>,
    ) -> Result<Option<Option<Note>>, StoreError> {
        self.on_owner(account, "update", move |e| {
            e.update(&account, &note, |current| {
                let at = match updated_at {
                    Some(client) => client,
                    None => server_time(current.updated_at),
                };
                (at > current.updated_at).then(|| Note {
                    content: content.clone(),
                    updated_at: at,
                    ..current.clone()
                })
            })
        })
        .await
    }

    /// Deletes the note if it exists; `None` if the account does not.
    pub async fn delete(&self, account: Uuid, note: Uuid) -> Result<Option<()>, StoreError> {
        let r = self
            .on_owner(account, "delete", move |e| e.delete(&account, &note))
            .await?;
        Ok(r.map(|_| ()))
    }

    /// Notes per store.
    pub async fn totals(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || engine.totals())
            .await
            .map_err(|e| {
                StoreError::Task(self.engine.control().path().to_path_buf(), e.to_string())
            })?
            .map_err(StoreError::from)
    }
}

/// The time the server gives a write that brings none: now (in the store's milliseconds), or
/// one millisecond after `stored` if the clock has not moved past it (two writes in one
/// millisecond, or a stored time from a clock ahead of ours).
pub fn server_time(stored: DateTime<Utc>) -> DateTime<Utc> {
    let now = Utc::now().timestamp_millis();
    crate::store::from_millis(now.max(stored.timestamp_millis().saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_time_is_strictly_newer_than_the_stored_one() {
        let now = Utc::now();
        // The same millisecond as the stored write, and a stored time ahead of the clock.
        for stored in [now, now + chrono::Duration::seconds(5)] {
            let stored = crate::store::from_millis(stored.timestamp_millis());
            assert!(server_time(stored) > stored);
        }
        let old = crate::store::from_millis(0);
        assert!(server_time(old) >= crate::store::from_millis(now.timestamp_millis()));
    }
}
