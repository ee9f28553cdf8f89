//! Threads that run the stores' blocking calls for the async handlers, in place of tokio's
//! blocking pool: a few threads take jobs from one queue, and the first idle one spins briefly
//! before parking, so that under load a job is picked up without a futex wake-up and a thread
//! switch (the hand-off to tokio's blocking pool and back was most of a GET note's cost in the
//! profile, see README's "API benchmark").

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads running blocking jobs; they stop when the last clone is dropped.
#[derive(Clone)]
pub struct Lane {
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lane")
            .field("name", &self.handle.shared.name)
            .finish()
    }
}

/// Stops the threads when dropped.
struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    name: &'static str,
    queue: Mutex<Queue>,
    ready: Condvar,
    /// Jobs queued (read without the lock by the spinning thread).
    len: AtomicUsize,
    /// Threads spinning for a job (at most one spins: on two cores more would take the CPU
    /// from the threads doing the work).
    spinning: AtomicUsize,
    stop: AtomicBool,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting on `ready`.
    parked: usize,
}

/// How long an idle thread spins for the next job before parking: short, since a spin takes
/// the CPU from everything else on a small machine (a move's backfill among them: with 50 µs,
/// `bench/online/run.sh` with a CPU hog saw the move's p99 ratio at 2.1×).
const SPIN: Duration = Duration::from_micros(10);

/// The job's thread stopped before answering (it panicked, or the lane stopped).
#[derive(Debug, thiserror::Error)]
#[error("the {0} thread stopped before answering")]
pub struct Stopped(pub &'static str);

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pop(&self) -> Option<Job> {
        if self.len.load(Ordering::SeqCst) == 0 {
            return None;
        }
        let job = self.lock().jobs.pop_front();
        if job.is_some() {
            self.len.fetch_sub(1, Ordering::SeqCst);
        }
        job
    }

    fn work(&self) {
        loop {
            if let Some(job) = self.pop() {
                // A panicking job drops its answer channel: the caller gets `Stopped`.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                continue;
            }
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            if self.spinning.fetch_add(1, Ordering::SeqCst) == 0 {
                let started = Instant::now();
                while self.len.load(Ordering::SeqCst) == 0 && started.elapsed() < SPIN {
                    for _ in 0..64 {
                        std::hint::spin_loop();
                    }
                }
            }
            self.spinning.fetch_sub(1, Ordering::SeqCst);
            if self.len.load(Ordering::SeqCst) > 0 {
                continue;
            }
            let mut q = self.lock();
            while q.jobs.is_empty() && !self.stop.load(Ordering::SeqCst) {
                q.parked += 1;
                q = self.ready.wait(q).unwrap_or_else(PoisonError::into_inner);
                q.parked -= 1;
            }
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _q = self.shared.lock();
        self.shared.ready.notify_all();
    }
}

impl Lane {
    /// A lane of `threads` threads called `name`.
    pub fn new(name: &'static str, threads: usize) -> std::io::Result<Lane> {
        let shared = Arc::new(Shared {
            name,
            queue: Mutex::new(Queue::default()),
            ready: Condvar::new(),
            len: AtomicUsize::new(0),
            spinning: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        for _ in 0..threads.max(1) {
            let s = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || s.work())?;
        }
        Ok(Lane {
            handle: Arc::new(Handle { shared }),
        })
    }

    /// Runs `f` on one of the lane's threads and answers with its value.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stopped> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.spawn(move || {
            let _ = tx.send(f());
        });
        rx.await.map_err(|_| Stopped(self.handle.shared.name))
    }

    /// Queues `f` to run on one of the lane's threads, without waiting for it.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        let shared = &self.handle.shared;
        let wake = {
            let mut q = shared.lock();
            q.jobs.push_back(Box::new(f));
            shared.len.fetch_add(1, Ordering::SeqCst);
            q.parked > 0 && shared.spinning.load(Ordering::SeqCst) == 0
        };
        if wake {
            shared.ready.notify_one();
        }
    }

    /// The lane's name (for errors).
    pub fn name(&self) -> &'static str {
        self.handle.shared.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_answer_even_after_a_panic() {
        let lane = Lane::new("test-lane", 2).unwrap();
        let answers = futures_join(&lane, 100).await;
        assert_eq!(answers, (0..100).collect::<Vec<_>>());
        assert!(lane.run(|| panic!("boom")).await.is_err());
        assert_eq!(lane.run(|| 7).await.unwrap(), 7);
    }

    async fn futures_join(lane: &Lane, n: usize) -> Vec<usize> {
        let mut tasks = Vec::new();
        for i in 0..n {
            let lane = lane.clone();
            tasks.push(tokio::spawn(
                async move { lane.run(move || i).await.unwrap() },
            ));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }
}
