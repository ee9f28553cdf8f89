//! Notely's HTTP/1.1 accept loop: a cap on concurrent connections, timeouts for slow and idle
//! clients, the peer address for the operator routes, and graceful shutdown.
//!
//! A connection is always in one of three phases: *waiting* for a request (from its accept,
//! or from its previous answer), *receiving a head* (from the request's first byte until its
//! head is parsed), or *busy* (until its answer is ready). It is closed when it waits longer
//! than the idle timeout, takes longer than the header timeout to send a head, or stays busy
//! longer than the request timeout (counted from the request's first byte: a slow body
//! included).
//!
//! At the cap, each new connection closes the one that has been waiting (or sending its head)
//! the longest, and takes its slot; when every connection is busy with a request, new
//! connections wait in the listen backlog until one ends. Either way a warning is logged (at
//! most every ten seconds). The default cap is half the process's open-file limit (the other
//! half is for the databases), so that the limit is never what refuses a client.
//!
//! When the server stops, it stops accepting and finishes the requests in flight. A connection
//! waiting for a request closes at once, or, when the server hands its socket over to another
//! process ([`serve_draining`]), may ask once more for a while: that answer carries
//! `Connection: close` and the client connects again, to the other process. (Closing an idle
//! connection races with a request its client may be sending on it.)

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::{TowerToHyperService, TowerToHyperServiceFuture};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// Default for [`Limits::header_timeout`].
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default for [`Limits::idle_timeout`].
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for [`Limits::request_timeout`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections by default, whatever the open-file limit.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long a server handing its socket over keeps its idle connections for one last request.
pub const DRAIN: Duration = Duration::from_secs(1);

/// How many connections a server keeps, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// Longest time from a request's first byte to the end of its head.
    pub header_timeout: Duration,
    /// Longest wait for a request on an open connection (after its accept or an answer).
    pub idle_timeout: Duration,
    /// Longest time from a request's first byte to its answer.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: default_max_connections(),
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
        }
    }
}

/// Half the soft open-file limit (each store's writer and readers, their WAL files, logs and
/// backups use the other half), between 16 and [`MAX_CONNECTIONS`].
// The open-file limit has no std API: getrlimit.
#[allow(unsafe_code)]
pub fn default_max_connections() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (soft / 2).clamp(16, MAX_CONNECTIONS)
}

const WAITING: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// One connection's phase, shared by its task, its socket, its requests and the accept loop.
#[derive(Debug)]
struct Conn {
    phase: AtomicU8,
    /// When the phase began, in milliseconds since the server's start (for `BUSY`: when the
    /// request's head began).
    since: AtomicU64,
    /// Chosen to make room; `evict` tells its task.
    evicted: AtomicBool,
    evict: Notify,
}

impl Conn {
    fn enter(&self, phase: u8, epoch: Instant) {
        self.since.store(millis(epoch), Ordering::Relaxed);
        self.phase.store(phase, Ordering::Relaxed);
    }
}

/// What ends a wait of a connection's task.
enum Event {
    /// hyper is done with the connection.
    Closed,
    /// The armed deadline passed.
    Timer,
    /// The accept loop chose it to make room.
    Evicted,
    /// The server stops; idle connections may ask once more for this long.
    Stopping(Duration),
    /// The drain is over (see [`serve_draining`]).
    Drained,
}

fn millis(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// What the accept loop and the connections share.
struct Shared {
    epoch: Instant,
    limits: Limits,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    /// When the last warning was logged (they are rate-limited).
    warned: Mutex<Option<Instant>>,
    /// The server stops, letting idle connections ask once more: answers carry
    /// `Connection: close`.
    draining: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// When `conn` has been in its phase for too long.
    fn deadline(&self, conn: &Conn) -> Instant {
        let limit = match conn.phase.load(Ordering::Relaxed) {
            WAITING => self.limits.idle_timeout,
            HEAD => self.limits.header_timeout,
            _ => self.limits.request_timeout,
        };
        self.epoch + Duration::from_millis(conn.since.load(Ordering::Relaxed)) + limit
    }

    /// Tells the connection that has waited for a request the longest to close; false when
    /// every connection is busy with one.
    fn evict_longest_waiting(&self) -> bool {
        let conns = lock(&self.conns);
        let victim = conns
            .values()
            .filter(|c| {
                c.phase.load(Ordering::Relaxed) != BUSY && !c.evicted.load(Ordering::Relaxed)
            })
            .min_by_key(|c| c.since.load(Ordering::Relaxed));
        match victim {
            Some(c) => {
                c.evicted.store(true, Ordering::Relaxed);
                c.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Logs `line` as a warning, unless one was logged in the last ten seconds.
    fn warn(&self, line: impl FnOnce() -> String) {
        let mut warned = lock(&self.warned);
        if warned.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
            return;
        }
        *warned = Some(Instant::now());
        let line = line();
        tracing::warn!("{line}");
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown`; then stops accepting,
/// closes the connections waiting for a request, and returns once the others are answered
/// (or time out).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve_draining(listener, router, limits, async {
        shutdown.await;
        Duration::ZERO
    })
    .await
}

/// [`serve`], where `shutdown` says how long connections waiting for a request may still send
/// one (answered with `Connection: close`) before they are closed: for a server whose
/// listening socket another process goes on accepting from.
pub async fn serve_draining(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = Duration>,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, u32::MAX as usize);
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        limits,
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        warned: Mutex::new(None),
        draining: Arc::new(AtomicBool::new(false)),
    });
    let slots = Arc::new(Semaphore::new(max));
    let (stop, stopped) = watch::channel(None);
    let service = TowerToHyperService::new(router);
    let mut shutdown = std::pin::pin!(shutdown);
    let drain = loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            drain = &mut shutdown => break drain,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait for connections to end.
                shared.warn(|| format!("accepting a connection failed: {e}; retrying"));
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    drain = &mut shutdown => break drain,
                }
            }
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if shared.evict_longest_waiting() {
                    shared.warn(|| {
                        format!(
                            "connection limit {max} reached; closing the connection idle the \
                             longest for each new one"
                        )
                    });
                } else {
                    shared.warn(|| {
                        format!(
                            "connection limit {max} reached and every connection is busy; new \
                             connections queue until one ends"
                        )
                    });
                }
                // Until a slot frees: connections that were busy a moment ago may be waiting for
                // their next request by now, so look again for one to close (one at a time).
                let mut freeing = false;
                let slot = loop {
                    tokio::select! {
                        slot = Arc::clone(&slots).acquire_owned() => {
                            break Ok(slot.expect("the connection semaphore is never closed"));
                        }
                        () = tokio::time::sleep(Duration::from_millis(50)), if !freeing => {
                            freeing = shared.evict_longest_waiting();
                        }
                        drain = &mut shutdown => break Err(drain),
                    }
                };
                match slot {
                    Ok(slot) => slot,
                    Err(drain) => break drain,
                }
            }
        };
        tokio::spawn(connection(
            Arc::clone(&shared),
            service.clone(),
            stream,
            peer,
            slot,
            stopped.clone(),
        ));
    };
    drop(listener);
    if !drain.is_zero() {
        shared.draining.store(true, Ordering::Relaxed);
    }
    let _ = stop.send(Some(drain));
    // Each connection holds its slot until it ends.
    let _ = slots.acquire_many(max as u32).await;
    Ok(())
}

/// Errors about one incoming connection, not the listener.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, times out, is evicted, or the server stops.
async fn connection(
    shared: Arc<Shared>,
    service: TowerToHyperService<Router>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    mut stopped: watch::Receiver<Option<Duration>>,
) {
    let conn = Arc::new(Conn {
        phase: AtomicU8::new(WAITING),
        since: AtomicU64::new(millis(shared.epoch)),
        evicted: AtomicBool::new(false),
        evict: Notify::new(),
    });
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    lock(&shared.conns).insert(id, Arc::clone(&conn));
    let io = TokioIo::new(Watched {
        io: stream,
        conn: Arc::clone(&conn),
        epoch: shared.epoch,
    });
    let service = Tracking {
        inner: service,
        conn: Arc::clone(&conn),
        epoch: shared.epoch,
        peer,
        draining: Arc::clone(&shared.draining),
    };
    // A head, or a request's buffered bytes, of at most 64 KiB per connection (hyper's default
    // is about 400 KiB): the cap on connections is also a cap on memory.
    let mut http = std::pin::pin!(
        hyper::server::conn::http1::Builder::new()
            .max_buf_size(64 * 1024)
            .serve_connection(io, service)
    );
    let mut armed = shared.deadline(&conn);
    let mut timer = std::pin::pin!(tokio::time::sleep_until(armed));
    let mut evicted = std::pin::pin!(conn.evict.notified());
    let mut stopping = std::pin::pin!(stopped.wait_for(Option::is_some));
    let mut closing = false;
    // While the server drains: until when a connection waiting for a request may send one.
    let mut draining = false;
    let mut drained = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    loop {
        let event = std::future::poll_fn(|cx| {
            if http.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Closed);
            }
            // The phase changes while hyper reads and answers (in the poll above): a deadline
            // earlier than the armed one (a head's, after a wait) re-arms the timer at once;
            // a later one waits for the timer to fire, then re-arms it. No wake-up needed.
            let deadline = shared.deadline(&conn);
            if deadline < armed {
                armed = deadline;
                timer.as_mut().reset(deadline);
            }
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Timer);
            }
            if draining && drained.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Event::Drained);
            }
            if !closing {
                if evicted.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Event::Evicted);
                }
                if let Poll::Ready(stopped) = stopping.as_mut().poll(cx) {
                    let drain = stopped.ok().and_then(|d| *d).unwrap_or_default();
                    return Poll::Ready(Event::Stopping(drain));
                }
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Closed => break,
            Event::Timer => {
                let deadline = shared.deadline(&conn);
                if deadline <= Instant::now() {
                    break;
                }
                armed = deadline;
                timer.as_mut().reset(deadline);
            }
            Event::Evicted => {
                // A request may have come in since it was chosen: answer it, then close.
                if conn.phase.load(Ordering::Relaxed) != BUSY {
                    break;
                }
                closing = true;
                http.as_mut().graceful_shutdown();
            }
            Event::Stopping(drain) => {
                closing = true;
                let phase = conn.phase.load(Ordering::Relaxed);
                if phase != BUSY && !drain.is_zero() {
                    // Its next request, if any comes in time, is answered with
                    // `Connection: close`, which closes it.
                    draining = true;
                    drained.as_mut().reset(Instant::now() + drain);
                    continue;
                }
                // A connection that is waiting for a request closes now (hyper would keep one
                // that never sent a request until its idle timeout); others finish first.
                if phase == WAITING {
                    break;
                }
                http.as_mut().graceful_shutdown();
            }
            Event::Drained => {
                draining = false;
                if conn.phase.load(Ordering::Relaxed) == WAITING {
                    break;
                }
                http.as_mut().graceful_shutdown();
            }
        }
    }
    lock(&shared.conns).remove(&id);
    drop(slot);
}

/// The connection's socket: its first bytes after a wait start a request's head.
struct Watched {
    io: TcpStream,
    conn: Arc<Conn>,
    epoch: Instant,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before && self.conn.phase.load(Ordering::Relaxed) == WAITING {
            // (Polled from the connection's task, which then arms the header deadline.)
            self.conn.enter(HEAD, self.epoch);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The router, marking the connection busy while it answers; the operator routes get the
/// client's address (`ConnectInfo<SocketAddr>`), to slow down token guessing per address.
struct Tracking {
    inner: TowerToHyperService<Router>,
    conn: Arc<Conn>,
    epoch: Instant,
    peer: SocketAddr,
    draining: Arc<AtomicBool>,
}

impl Service<axum::http::Request<Incoming>> for Tracking {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = Answer<TowerToHyperServiceFuture<Router, axum::http::Request<Incoming>>>;

    fn call(&self, mut req: axum::http::Request<Incoming>) -> Self::Future {
        self.conn.phase.store(BUSY, Ordering::Relaxed);
        if req.uri().path().starts_with("/admin") {
            req.extensions_mut().insert(ConnectInfo(self.peer));
        }
        Answer {
            inner: self.inner.call(req),
            conn: Arc::clone(&self.conn),
            epoch: self.epoch,
            done: false,
            draining: Arc::clone(&self.draining),
        }
    }
}

/// A request being answered: once answered (or dropped), its connection waits again. While
/// the server drains, the answer says `Connection: close`.
struct Answer<F> {
    inner: F,
    conn: Arc<Conn>,
    epoch: Instant,
    done: bool,
    draining: Arc<AtomicBool>,
}

impl<F> Answer<F> {
    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.conn.enter(WAITING, self.epoch);
        }
    }
}

impl<F, E> Future for Answer<F>
where
    F: Future<Output = Result<axum::response::Response, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut out = ready!(Pin::new(&mut self.inner).poll(cx));
        if self.draining.load(Ordering::Relaxed)
            && let Ok(res) = &mut out
        {
            res.headers_mut().insert(
                axum::http::header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        self.finish();
        Poll::Ready(out)
    }
}

impl<F> Drop for Answer<F> {
    fn drop(&mut self) {
        self.finish();
    }
}
