//! Adversarial tests of the `notely` service as a whole (issue 13): random requests against
//! every route, and a real server killed with SIGKILL at random points under concurrent
//! writers, checked against a ledger of every acknowledged write.
//!
//! Both run fast by default; `bench/adversarial/run.sh` runs them long (more cases, more
//! kills) through the environment variables `NOTELY_FUZZ_CASES` and `NOTELY_KILLS`.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use tower::ServiceExt;

use crate::common::{account, http, notely, ok, seed, serve, try_http};

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------------------------
// Request fuzzing: never a 5xx, never a panic, every error answered in JSON.

struct Router {
    _dir: tempfile::TempDir,
    router: axum::Router,
    account: String,
    note: String,
    token: String,
}

fn router() -> Router {
    let (dir, router, token) = common::router(Vec::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let send = |req: Request<Body>| {
        rt.block_on(async {
            let res = router.clone().oneshot(req).await.unwrap();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&bytes).unwrap()
        })
    };
    let account = send(
        Request::post("/accounts")
            .header("content-type", "application/json")
            .body(Body::from(r#"{"name":"Fuzz"}"#))
            .unwrap(),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    let note = send(
        Request::post(format!("/accounts/{account}/notes"))
            .header("content-type", "application/json")
            .body(Body::from(r#"{"content":"hello"}"#))
            .unwrap(),
    )["id"]
        .as_str()
        .unwrap()
        .to_string();
    Router {
        _dir: dir,
        router,
        account,
        note,
        token,
    }
}

/// A path segment: real ids, wrong ids, encodings and junk.
fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{account}".to_string()),
        Just("{note}".to_string()),
        Just("accounts".to_string()),
        Just("notes".to_string()),
        Just("admin".to_string()),
        Just("api".to_string()),
        Just("moves".to_string()),
        Just("login".to_string()),
        Just("status".to_string()),
        Just("cancel".to_string()),
        Just("healthz".to_string()),
        Just("00000000-0000-0000-0000-000000000000".to_string()),
        Just("%ff%fe".to_string()),
        Just("%00".to_string()),
        Just("%2e%2e".to_string()),
        Just("..".to_string()),
        Just(String::new()),
        Just("a".repeat(5000)),
        "[a-zA-Z0-9%._~-]{1,40}",
        any::<u32>().prop_map(|n| n.to_string()),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(br#"{"content":"x"}"#.to_vec()),
        Just(br#"{"name":"x"}"#.to_vec()),
        Just(br#"{"content":""}"#.to_vec()),
        Just(br#"{"content":7,"updatedAt":"yesterday"}"#.to_vec()),
        Just(br#"{"id":"not-a-uuid","content":"x"}"#.to_vec()),
        Just(br#"{"updatedAt":"0001-01-01T00:00:00Z","content":"old"}"#.to_vec()),
        Just(br#"{"updatedAt":"9999-12-31T23:59:59Z","content":"future"}"#.to_vec()),
        Just(br#"{"to":"notes","all":true}"#.to_vec()),
        Just(br#"[1,2,3]"#.to_vec()),
        Just(b"null".to_vec()),
        Just(b"{".to_vec()),
        Just(vec![b'{'; 10_000]),
        Just(format!(r#"{{"content":"{}"}}"#, "z".repeat(2_000_000)).into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..200),
        "[ -~]{0,100}".prop_map(String::into_bytes),
    ]
}

#[derive(Debug, Clone)]
struct Fuzzed {
    method: &'static str,
    segments: Vec<String>,
    query: Option<String>,
    body: Vec<u8>,
    content_type: Option<&'static str>,
    authorized: bool,
    origin: Option<&'static str>,
}

fn fuzzed() -> impl Strategy<Value = Fuzzed> {
    (
        prop::sample::select(vec![
            "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE", "FOO",
        ]),
        proptest::collection::vec(segment(), 0..6),
        proptest::option::of("[a-z=&%0-9]{0,30}"),
        body(),
        proptest::option::of(prop::sample::select(vec![
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin1",
            "multipart/form-data; boundary=x",
        ])),
        any::<bool>(),
        proptest::option::of(prop::sample::select(vec![
            "http://localhost:1",
            "https://evil.example",
            "null",
        ])),
    )
        .prop_map(
            |(method, segments, query, body, content_type, authorized, origin)| Fuzzed {
                method,
                segments,
                query,
                body,
                content_type,
                authorized,
                origin,
            },
        )
}

/// Paths that lead somewhere, more often than random segments would.
fn shaped(r: &Router, f: &Fuzzed) -> String {
    let fill = |s: &str| {
        s.replace("{account}", &r.account)
            .replace("{note}", &r.note)
    };
    let mut path = String::new();
    for s in &f.segments {
        path.push('/');
        path.push_str(&fill(s));
    }
    if path.is_empty() {
        path.push('/');
    }
    if let Some(q) = &f.query {
        path.push('?');
        path.push_str(q);
    }
    path
}

#[test]
fn random_requests_to_every_route_never_fail_the_server_and_errors_are_json() {
    let r = router();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = env_or("NOTELY_FUZZ_CASES", 400);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let checked = std::cell::Cell::new(0u32);
    let check = |f: Fuzzed| -> Result<(), TestCaseError> {
        let path = shaped(&r, &f);
        let Ok(mut req) = Request::builder().method(f.method).uri(&path).body(()) else {
            // Not even a valid request line (the HTTP parser refuses it first).
            return Ok(());
        };
        let headers = req.headers_mut();
        if let Some(ct) = f.content_type {
            headers.insert("content-type", ct.parse().unwrap());
        }
        if let Some(o) = f.origin {
            headers.insert("origin", o.parse().unwrap());
        }
        if f.authorized {
            headers.insert(
                "authorization",
                format!("Bearer {}", r.token).parse().unwrap(),
            );
        }
        let req = req.map(|()| Body::from(f.body.clone()));
        let (status, content_type, bytes) = rt.block_on(async {
            let res = r.router.clone().oneshot(req).await.unwrap();
            let status = res.status();
            let ct = res
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, ct, bytes)
        });
        checked.set(checked.get() + 1);
        prop_assert!(
            !status.is_server_error(),
            "{} {path} answered {status}: {}",
            f.method,
            String::from_utf8_lossy(&bytes)
        );
        if status.is_client_error() && f.method != "HEAD" {
            let json = serde_json::from_slice::<serde_json::Value>(&bytes);
            prop_assert!(
                content_type.starts_with("application/json")
                    && json.as_ref().is_ok_and(|v| v["error"].is_string()),
                "{} {path} answered {status} ({content_type}) without a JSON error: {:?}",
                f.method,
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(())
    };
    // What the outside test found, every time; then random requests.
    let found = [
        ("GET", vec!["accounts", "%ff%fe"]),
        ("GET", vec!["accounts", "{account}", "notes", "%ff%fe"]),
        ("PUT", vec!["accounts", "%ff%fe", "notes", "{note}"]),
        ("DELETE", vec!["accounts", "{account}", "notes", "%c3%28"]),
        ("POST", vec!["admin", "api", "moves", "%ff", "cancel"]),
    ];
    for (method, segments) in found {
        check(Fuzzed {
            method,
            segments: segments.into_iter().map(String::from).collect(),
            query: None,
            body: Vec::new(),
            content_type: None,
            authorized: true,
            origin: None,
        })
        .unwrap();
    }
    runner.run(&fuzzed(), check).unwrap();
    assert_eq!(checked.get(), cases + 5, "every case reached the router");
}

// ---------------------------------------------------------------------------------------------
// kill -9 under concurrent writers: every acknowledged write survives, nothing comes back.

/// What the ledger knows of one note: its acknowledged state (`None`: deleted), and the state
/// a write in flight when the server died would leave.
#[derive(Debug, Clone)]
struct Entry {
    acked: Option<String>,
    in_flight: Option<Option<String>>,
}

type Ledger = Arc<Mutex<BTreeMap<(String, String), Entry>>>;

/// One writer: creates, updates and deletes notes of its own account, recording each write as
/// in flight before sending it and as acknowledged once the answer says so.
fn writer(urls: Vec<String>, account: String, ledger: Ledger, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = seed | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let live: Vec<String> = ledger
            .lock()
            .unwrap()
            .iter()
            .filter(|((a, _), e)| *a == account && e.acked.is_some() && e.in_flight.is_none())
            .map(|((_, id), _)| id.clone())
            .collect();
        let pick = next();
        let content = format!("w{seed}-{n}");
        let (method, id, body, after) = if live.is_empty() || pick % 3 == 0 {
            let id = uuid::Uuid::new_v4().to_string();
            let body = format!(r#"{{"id":"{id}","content":"{content}"}}"#);
            ("POST", id, Some(body), Some(content))
        } else if pick % 3 == 1 {
            let id = live[(next() % live.len() as u64) as usize].clone();
            let body = format!(r#"{{"content":"{content}"}}"#);
            ("PUT", id, Some(body), Some(content))
        } else {
            let id = live[(next() % live.len() as u64) as usize].clone();
            ("DELETE", id, None, None)
        };
        let key = (account.clone(), id.clone());
        ledger
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_insert(Entry {
                acked: None,
                in_flight: None,
            })
            .in_flight = Some(after.clone());
        let path = if method == "POST" {
            format!("/accounts/{account}/notes")
        } else {
            format!("/accounts/{account}/notes/{id}")
        };
        let url = &urls[(next() % urls.len() as u64) as usize];
        let Ok((status, _)) = try_http(url, method, &path, body.as_deref()) else {
            // The server is gone: the write stays in flight until the restart settles it.
            std::thread::sleep(Duration::from_millis(20));
            continue;
        };
        let mut ledger = ledger.lock().unwrap();
        let entry = ledger.get_mut(&key).unwrap();
        match (method, status) {
            ("POST", 201) | ("PUT", 200) | ("DELETE", 204) => {
                entry.acked = after;
                entry.in_flight = None;
            }
            _ => panic!("{method} {path} answered {status}"),
        }
    }
}

/// Reads every note of the ledger back and settles writes that were in flight at the kill:
/// each note must hold its acknowledged state or the in-flight write's, nothing else.
fn settle(url: &str, ledger: &Ledger) -> (u64, u64) {
    let mut ledger = ledger.lock().unwrap();
    let (mut checked, mut settled) = (0, 0);
    for ((account, id), entry) in ledger.iter_mut() {
        let (status, body) = http(url, "GET", &format!("/accounts/{account}/notes/{id}"), None);
        let now = match status {
            200 => Some(body["content"].as_str().unwrap().to_string()),
            404 => None,
            other => panic!("reading note {id} answered {other}: {body}"),
        };
        checked += 1;
        if now == entry.acked {
            entry.in_flight = None;
            continue;
        }
        assert_eq!(
            entry.in_flight.as_ref(),
            Some(&now),
            "note {id} of {account}: acknowledged {:?}, in flight {:?}, but the store has \
             {now:?} (lost or resurrected)",
            entry.acked,
            entry.in_flight
        );
        entry.acked = now;
        entry.in_flight = None;
        settled += 1;
    }
    (checked, settled)
}

#[test]
fn kill_9_at_random_points_under_concurrent_writers_loses_no_acknowledged_write() {
    let kills = env_or("NOTELY_KILLS", 8);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    let ledger: Ledger = Arc::default();
    let (mut server, mut url) = serve(d, &[]);
    let accounts: Vec<String> = (0..4)
        .map(|i| account(&url, &format!("writer {i}")))
        .collect();
    let mut rng = seed();
    let (mut total_checked, mut total_settled) = (0, 0);
    for kill in 0..kills {
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = accounts
            .iter()
            .enumerate()
            .map(|(i, account)| {
                let (urls, account, ledger, stop) = (
                    vec![url.clone()],
                    account.clone(),
                    Arc::clone(&ledger),
                    Arc::clone(&stop),
                );
                let seed = rng.wrapping_add(i as u64 * 7919 + kill as u64);
                std::thread::spawn(move || writer(urls, account, ledger, stop, seed))
            })
            .collect();
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(50 + rng % 400));
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            w.join().expect("a writer saw a wrong answer");
        }
        (server, url) = serve(d, &[]);
        let (checked, settled) = settle(&url, &ledger);
        total_checked += checked;
        total_settled += settled;
    }
    let notes = ledger.lock().unwrap().len();
    eprintln!(
        "{kills} kills, {notes} notes written, {total_checked} reads checked, \
         {total_settled} in-flight writes settled"
    );
    assert!(notes > 20, "the writers wrote too little: {notes}");
    let _ = server.kill();
    let _ = server.wait();
}

/// Two servers on one data directory, every writer sending each request to either: both
/// agree with the ledger, and with each other, afterwards.
#[test]
fn two_servers_on_one_directory_writing_the_same_notes_agree_with_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&notely(d, &["migrate", "up"]));
    let (mut a, url_a) = serve(d, &[]);
    let (mut b, url_b) = serve(d, &[]);
    let ledger: Ledger = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let account = account(&url_a, &format!("shared {i}"));
            let (urls, ledger, stop) = (
                vec![url_a.clone(), url_b.clone()],
                Arc::clone(&ledger),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || writer(urls, account, ledger, stop, 17 + i))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().expect("a writer saw a wrong answer");
    }
    for url in [&url_a, &url_b] {
        let (checked, settled) = settle(url, &ledger);
        assert_eq!(
            settled, 0,
            "nothing was in flight, yet {settled} note(s) differ"
        );
        assert!(checked > 20, "the writers wrote too little: {checked}");
    }
    for server in [&mut a, &mut b] {
        let _ = server.kill();
        let _ = server.wait();
    }
}
