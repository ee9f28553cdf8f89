//! Issue 13's findings about exposure: connections that never finish (item 4), framing of the
//! operator page (6), operator token guessing (7), file modes (8) and plain-text errors (9).

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::Value;
use tower::ServiceExt;

/// A `notely serve` process on a free port; its stderr is collected.
struct Notely {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Notely {
    /// Starts `notely serve` on `data_dir` with ARGS, with at most `open_files` file
    /// descriptors (soft and hard limit) when given.
    // The child's open-file limit has no std API: setrlimit, between fork and exec.
    #[allow(unsafe_code)]
    fn start(data_dir: &Path, open_files: Option<u64>, args: &[&str]) -> Notely {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(common::NOTELY);
        command
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--port", "0"])
            .args(args)
            .env_remove("NOTELY_DATA_DIR")
            .env_remove("NOTELY_MIGRATE")
            .env_remove("NOTELY_ADMIN_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(n) = open_files {
            // SAFETY: between fork and exec, only setrlimit (async-signal-safe) runs.
            unsafe {
                command.pre_exec(move || {
                    let limit = libc::rlimit {
                        rlim_cur: n as libc::rlim_t,
                        rlim_max: n as libc::rlim_t,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().expect("start notely");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let (pipe, log) = (child.stderr.take().unwrap(), Arc::clone(&stderr));
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let addr = lines.by_ref().map_while(Result::ok).find_map(|line| {
            line.strip_prefix("notely: listening on http://")
                .map(|a| a.trim().parse::<SocketAddr>().unwrap())
        });
        std::thread::spawn(move || for _ in lines {});
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!("notely did not start: {}", stderr.lock().unwrap());
        };
        Notely {
            child,
            addr,
            stderr,
        }
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Notely {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /accounts` on a new connection: the status line, or why there is none within `wait`.
fn status_line(addr: SocketAddr, wait: Duration) -> Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, wait).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(wait)).unwrap();
    stream
        .write_all(b"GET /accounts HTTP/1.1\r\nHost: notely\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("no answer within {wait:?}: {e}"))?;
    Ok(answer.lines().next().unwrap_or_default().to_string())
}

/// Reads (and keeps) what the server sends on `stream` until it closes the connection: how
/// long that took, or `None` if it is still open after `limit`.
fn closed_within(stream: &mut TcpStream, limit: Duration) -> (Option<Duration>, String) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return (None, String::from_utf8_lossy(&got).into_owned());
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return (Some(start.elapsed()), String::from_utf8_lossy(&got).into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (None, String::from_utf8_lossy(&got).into_owned());
            }
            // Reset: closed with unread data.
            Err(_) => return (Some(start.elapsed()), String::from_utf8_lossy(&got).into()),
        }
    }
}

/// Issue 13, item 4: with 256 open files, 300 idle connections made the server unreachable
/// (accept failed with EMFILE for every new client). Now the connections are capped below the
/// open-file limit, and at the cap the connection idle the longest makes room: real clients
/// are answered at once while idle, half-sent and kept-alive connections pile up.
#[test]
fn hundreds_of_idle_and_slow_connections_leave_room_for_real_clients() {
    let dir = tempfile::tempdir().unwrap();
    let notely = Notely::start(dir.path(), Some(256), &[]);
    let mut held = Vec::new();
    for round in 0..30 {
        for i in 0..10 {
            let mut stream = TcpStream::connect(notely.addr).unwrap();
            // (A connection may be closed already to make room: its write may fail.)
            let _ = match i % 3 {
                // Connects and says nothing.
                0 => Ok(()),
                // Half a head, never finished.
                1 => stream.write_all(b"GET /accounts HTTP/1.1\r\nHost: slow\r\nX-Wait: "),
                // One request, kept alive, its answer never read.
                _ => stream.write_all(b"GET /accounts HTTP/1.1\r\nHost: idle\r\n\r\n"),
            };
            held.push(stream);
        }
        let answer = status_line(notely.addr, Duration::from_secs(5));
        assert_eq!(
            answer.as_deref(),
            Ok("HTTP/1.1 200 OK"),
            "a real client after {} idle connections (round {round}); notely's log:\n{}",
            held.len(),
            notely.log()
        );
    }
    let log = notely.log();
    assert!(
        log.contains("WARN") && log.contains("connection limit 128 reached"),
        "the cap (half of 256 open files) is logged when reached:\n{log}"
    );
    drop(held);
    assert_eq!(
        status_line(notely.addr, Duration::from_secs(5)).as_deref(),
        Ok("HTTP/1.1 200 OK")
    );
}

/// Issue 13, item 4: slow-header and idle keep-alive connections stayed open forever. Each
/// kind is now closed after its timeout, and a client that keeps talking is not.
#[test]
fn slow_heads_idle_connections_and_slow_bodies_are_closed_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let notely = Notely::start(
        dir.path(),
        None,
        &[
            "--header-timeout",
            "1",
            "--idle-timeout",
            "6",
            "--request-timeout",
            "3",
        ],
    );
    let addr = notely.addr;
    // The idle timeout is the longest: a head or a body closed on the idle timeout's schedule
    // instead of its own fails the test.
    let limit = Duration::from_secs(10);
    // A head trickled a byte every 100 ms: the trickle does not extend the header timeout.
    let slow_head = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /accounts HTTP/1.1\r\nHost: slow\r\nX-Wait: ")
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            for _ in 0..80 {
                if writer.write_all(b"a").is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        closed_within(&mut stream, limit)
    });
    // A connection that never sends anything.
    let silent = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        closed_within(&mut stream, limit)
    });
    // A keep-alive connection after one answer.
    let kept_alive = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /accounts HTTP/1.1\r\nHost: idle\r\n\r\n")
            .unwrap();
        closed_within(&mut stream, limit)
    });
    // A body announced and never sent in full.
    let slow_body = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(
                b"POST /accounts HTTP/1.1\r\nHost: body\r\nContent-Type: application/json\r\n\
                  Content-Length: 100\r\n\r\n{\"name\":",
            )
            .unwrap();
        closed_within(&mut stream, limit)
    });
    // A client that keeps talking, a request every 600 ms for longer than every timeout.
    let talker = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut answers = 0;
        for _ in 0..7 {
            stream
                .write_all(b"GET /accounts HTTP/1.1\r\nHost: talker\r\n\r\n")
                .unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(2)))
                .unwrap();
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).unwrap_or(0);
            if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200") {
                answers += 1;
            }
            std::thread::sleep(Duration::from_millis(600));
        }
        answers
    });
    let within = |name: &str, (closed, got): (Option<Duration>, String), from: f64, to: f64| {
        let took = closed.unwrap_or_else(|| panic!("{name}: still open after {limit:?}"));
        assert!(
            took.as_secs_f64() >= from && took.as_secs_f64() <= to,
            "{name}: closed after {took:?}, expected {from}..{to} s; got {got:?}"
        );
        got
    };
    within("slow head", slow_head.join().unwrap(), 0.9, 2.5);
    within("silent connection", silent.join().unwrap(), 5.9, 7.5);
    let got = within(
        "kept-alive connection",
        kept_alive.join().unwrap(),
        5.9,
        7.5,
    );
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    within("slow body", slow_body.join().unwrap(), 2.9, 4.5);
    assert_eq!(
        talker.join().unwrap(),
        7,
        "every request of the talker is answered"
    );
}

/// A request (method, path, headers, body) and the status it should get.
type Case<'a, U, B> = (Method, U, Vec<(&'a str, &'a str)>, B, StatusCode);

async fn call(
    router: &axum::Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> axum::response::Response<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    router
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap()
}

/// Issue 13, item 6: the operator page could be framed (clickjacking its Approve button).
#[tokio::test]
async fn the_operator_page_refuses_to_be_framed() {
    let (_dir, router, token) = common::router(Vec::new());
    let bearer = format!("Bearer {token}");
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let cases: Vec<Case<&str, &[u8]>> = vec![
        (Method::GET, "/admin", vec![], b"", StatusCode::OK),
        (
            Method::POST,
            "/admin/login",
            form.to_vec(),
            b"token=wrong&name=Eve",
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/admin/api/status",
            vec![],
            b"",
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/admin/api/status",
            vec![("authorization", bearer.as_str())],
            b"",
            StatusCode::OK,
        ),
    ];
    for (method, uri, headers, body, want) in cases {
        let res = call(&router, method.clone(), uri, &headers, body.to_vec()).await;
        assert_eq!(res.status(), want, "{method} {uri}");
        let h = res.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY", "{method} {uri}: {h:?}");
        assert_eq!(
            h[header::CONTENT_SECURITY_POLICY],
            "frame-ancestors 'none'",
            "{method} {uri}: {h:?}"
        );
    }
}

/// Issue 13, item 7: 100 wrong `POST /admin/login` in 0.1 s all got 401. Now the address
/// that sends them waits (429 with `Retry-After`, 30 s at most) after five; the operator,
/// from another address, logs in meanwhile; and the waiting address gets in once its wait is
/// over. Through a real server, so that the client addresses are real.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_slow_down_their_address_only() {
    let dir = tempfile::tempdir().unwrap();
    let settings = notely::db::Settings {
        backups: 0,
        ..Default::default()
    };
    notely::db::startup(dir.path(), &settings, &mut std::io::sink(), None).unwrap();
    let server = notely::server::Server::start(
        dir.path(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        Vec::new(),
        Arc::new(notely::telemetry::Telemetry::default()),
        None,
    )
    .await
    .unwrap();
    let token = std::fs::read_to_string(dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(IpAddr::from(ip))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    };
    let (attacker, operator) = (from([127, 0, 0, 1]), from([127, 0, 0, 2]));
    let base = format!("http://{}", server.addr);
    let login = |client: &reqwest::Client, token: &str| {
        let request = client
            .post(format!("{base}/admin/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={token}&name=Ada"));
        async move { request.send().await }
    };
    let retry_after = |res: &reqwest::Response| -> u64 {
        res.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap()
    };
    let started = Instant::now();
    let flood: Vec<_> = (0..100)
        .map(|_| tokio::spawn(login(&attacker, "wrong")))
        .collect();
    let mut refused = 0;
    let mut slowed = 0;
    for attempt in flood {
        let res = attempt.await.unwrap().unwrap();
        match res.status().as_u16() {
            401 => refused += 1,
            429 => {
                slowed += 1;
                let wait = retry_after(&res);
                assert!((1..=30).contains(&wait), "Retry-After: {wait}");
            }
            other => panic!("a wrong token got {other}"),
        }
    }
    let flood_took = started.elapsed();
    assert!(
        (6..=10).contains(&refused) && slowed == 100 - refused,
        "401: {refused}, 429: {slowed} in {flood_took:?}"
    );
    // Make sure a fresh wait has just begun: a wrong token that counts (401).
    loop {
        let res = login(&attacker, "wrong").await.unwrap();
        if res.status() == 401 {
            break;
        }
        assert_eq!(res.status(), 429);
        tokio::time::sleep(Duration::from_secs(retry_after(&res))).await;
    }
    // Meanwhile, even the right token is not tried from that address...
    let res = login(&attacker, &token).await.unwrap();
    assert_eq!(res.status(), 429);
    let wait = retry_after(&res);
    assert!((1..=30).contains(&wait), "Retry-After: {wait}");
    let res = attacker
        .get(format!("{base}/admin/api/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "nor as a bearer token");
    // ... while the operator's address logs in and calls the API at once.
    let res = login(&operator, &token).await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(res.headers().contains_key(header::SET_COOKIE));
    let res = operator
        .get(format!("{base}/admin/api/status"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // Once the wait is over, the right token gets in from the waiting address too.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let res = login(&attacker, &token).await.unwrap();
    assert_eq!(res.status(), 303);
    server.stop().await.unwrap();
}

/// Unix permission bits of `path`.
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file and directory under `dir` (itself included) with its mode.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut all = vec![(dir.display().to_string(), mode(dir))];
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(modes(&path));
        } else {
            all.push((path.display().to_string(), mode(&path)));
        }
    }
    all
}

/// Issue 13, item 8: the data directory and databases were created with the default modes
/// (0755, 0644), and an existing empty `admin.token` kept its 0644 when the token was written
/// into it. Now what Notely creates is its owner's only (or as `--umask` says).
#[test]
fn data_files_are_readable_by_their_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    let notely = Notely::start(&fresh, None, &[]);
    let made = modes(&fresh);
    drop(notely);
    for name in ["control.db", "notes.db", "legacy.db", "admin.token"] {
        assert!(
            made.iter().any(|(p, _)| p.ends_with(name)),
            "{name} in {made:?}"
        );
    }
    assert!(made.iter().any(|(p, _)| p.ends_with("-wal")), "{made:?}");
    for (path, m) in &made {
        let want = if Path::new(path).is_dir() {
            0o700
        } else {
            0o600
        };
        assert_eq!(*m, want, "{path}: {m:o}");
    }

    // An empty token file made by someone else, world-readable.
    let existing = dir.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    let token_file = existing.join("admin.token");
    std::fs::write(&token_file, "").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    drop(Notely::start(&existing, None, &[]));
    assert!(
        !std::fs::read_to_string(&token_file)
            .unwrap()
            .trim()
            .is_empty()
    );
    assert_eq!(mode(&token_file), 0o600);

    // Configured otherwise: the group may read.
    let shared = dir.path().join("shared");
    let notely = Notely::start(&shared, None, &["--umask", "027"]);
    let made = modes(&shared);
    drop(notely);
    for (path, m) in &made {
        let want = if Path::new(path).is_dir() {
            0o750
        } else if path.ends_with("admin.token") {
            0o600
        } else {
            0o640
        };
        assert_eq!(*m, want, "{path}: {m:o}");
    }
}

/// Issue 13, item 9: `GET /accounts/%ff%fe` was answered 400 in plain text, as was every
/// other rejection of axum's extractors. Every error is `{"error": ..}` JSON.
#[tokio::test]
async fn every_rejection_is_json() {
    let (_dir, router, token) = common::router(Vec::new());
    let bearer = format!("Bearer {token}");
    let account = {
        let res = call(
            &router,
            Method::POST,
            "/accounts",
            &[],
            br#"{"name":"Ada"}"#.to_vec(),
        )
        .await;
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let json = [("content-type", "application/json")];
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let big_form = format!("token={}", "x".repeat(300_000)).into_bytes();
    let cases: Vec<Case<String, Vec<u8>>> = vec![
        // Bad percent-encoding (not UTF-8) in each path parameter.
        (
            Method::GET,
            "/accounts/%ff%fe".into(),
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/accounts/%ff%fe".into(),
            json.to_vec(),
            br#"{"name":"x"}"#.to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/accounts/%ff%fe/notes".into(),
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("/accounts/{account}/notes/%c3%28"),
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::DELETE,
            format!("/accounts/%80/notes/{account}"),
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/admin/api/moves/%ff/cancel".into(),
            vec![("authorization", bearer.as_str())],
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        // A bad UUID, a bad JSON body, an oversize body.
        (
            Method::GET,
            "/accounts/not-a-uuid".into(),
            vec![],
            vec![],
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/accounts".into(),
            json.to_vec(),
            b"{not json".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            format!("/accounts/{account}/notes"),
            json.to_vec(),
            vec![b'x'; 300_000],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        // The login form: a wrong content type, an oversize or malformed body.
        (
            Method::POST,
            "/admin/login".into(),
            vec![("content-type", "text/plain")],
            b"token=x".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/admin/login".into(),
            vec![],
            b"token=x".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            Method::POST,
            "/admin/login".into(),
            form.to_vec(),
            big_form,
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::POST,
            "/admin/login".into(),
            form.to_vec(),
            b"token=a&token=b".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ];
    for (method, uri, headers, body, want) in cases {
        let res = call(&router, method.clone(), &uri, &headers, body).await;
        let status = res.status();
        let content_type = res.headers().get(header::CONTENT_TYPE).cloned();
        let body = axum::body::to_bytes(res.into_body(), usize::MAX)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert_eq!(status, want, "{method} {uri}: {text}");
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{method} {uri}: {text}"
        );
        let value: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {text}"));
        assert!(value["error"].is_string(), "{method} {uri}: {value}");
    }
}
