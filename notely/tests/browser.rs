//! The operator page in a real browser: headless Chromium driven over WebDriver (chromedriver).
//! Notely starts in checked mode with pending migrations; a wrong token is refused; the
//! operator logs in, sees the pending migrations, clicks Approve, and sees them applied while
//! Notely starts serving its API.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (README's test command installs
//! them). Without them the test says so, loudly, and passes as skipped.

use crate::common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
    })
}

/// A minimal W3C WebDriver client: the handful of commands the test needs.
struct Driver {
    http: reqwest::Client,
    session: String,
    base: String,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Driver {
    async fn start(base: &str, chromium: &Path) -> Driver {
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run",
                         "--window-size=1280,900"]
            }
        }}});
        let res: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let session = res["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {res}"))
            .to_string();
        Driver {
            http,
            session,
            base: base.to_string(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap().json().await.unwrap()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    /// The element matching `css`, if any.
    async fn find(&self, css: &str) -> Option<String> {
        let res = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        res["value"][ELEMENT].as_str().map(str::to_string)
    }

    /// Waits (up to `limit`) for an element matching `css`.
    async fn wait_for(&self, css: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            if let Some(el) = self.find(css).await {
                return el;
            }
            assert!(
                Instant::now() < until,
                "no {css} after {limit:?}; the page:\n{}",
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn type_into(&self, el: &str, text: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, el: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, el: &str) -> String {
        let res = self
            .call(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await;
        res["value"].as_str().unwrap_or_default().to_string()
    }

    async fn count(&self, css: &str) -> usize {
        let res = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        res["value"].as_array().map(Vec::len).unwrap_or(0)
    }

    async fn source(&self) -> String {
        let res = self.call(reqwest::Method::GET, "/source", None).await;
        res["value"].as_str().unwrap_or_default().to_string()
    }

    async fn screenshot(&self) -> Vec<u8> {
        let res = self.call(reqwest::Method::GET, "/screenshot", None).await;
        base64(res["value"].as_str().unwrap_or_default())
    }

    async fn quit(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
    }
}

/// Standard base64, for the screenshot.
fn base64(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let clean: Vec<u8> = text.bytes().filter(|c| !b"=\r\n".contains(c)).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, c)| n | u32::from(value(*c)) << (18 - 6 * i));
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..chunk.len().saturating_sub(1)]);
    }
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_approves_pending_migrations_in_a_real_browser() {
    let (Some(driver), Some(chromium)) = (which("chromedriver"), which("chromium")) else {
        eprintln!(
            "\n*** SKIPPED an_operator_approves_pending_migrations_in_a_real_browser: chromium \
             and chromedriver are not installed. Install them (Debian: apt-get install -y \
             chromium chromium-driver) to run the operator page's browser test. ***\n"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Databases that exist, with migrations still pending for each.
    common::ok(&common::notely(
        d,
        &["migrate", "up", "--to", "20240226153100"],
    ));
    let token = "browser-test-operator-token";
    let mut notely = Command::new(common::NOTELY)
        .arg("--data-dir")
        .arg(d)
        .args(["--migrate", "checked", "--port", "0", "--backups", "0"])
        .env("NOTELY_ADMIN_TOKEN", token)
        .env_remove("NOTELY_DATA_DIR")
        .env_remove("NOTELY_MIGRATE")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = notely.stdout.take().unwrap();
    let notely = Killed(notely);
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let next_line = |what: &str| -> String {
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            let line = lines_rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("notely never said {what:?}"));
            if line.contains(what) {
                return line;
            }
        }
    };
    let warn = next_line("approve on the operator page");
    let page = warn
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .trim_end_matches(',')
        .to_string();
    assert!(page.ends_with("/admin"), "{warn}");
    assert!(!warn.contains(token), "the token is never printed: {warn}");
    // Each pending migration gets a link to its review.
    let review_line = next_line("#m20240301090000");
    let review_link = review_line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    assert_eq!(
        review_link,
        format!("{page}#m20240301090000"),
        "{review_line}"
    );

    let port = free_port();
    let _chromedriver = Killed(
        Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    let until = Instant::now() + Duration::from_secs(20);
    while reqwest::get(format!("{base}/status")).await.is_err() {
        assert!(Instant::now() < until, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let browser = Driver::start(&base, &chromium).await;

    // A wrong token is refused.
    browser.goto(&page).await;
    let field = browser.wait_for("#token", Duration::from_secs(10)).await;
    browser.type_into(&field, "not-the-token").await;
    browser.click(&browser.find("#login").await.unwrap()).await;
    let error = browser.wait_for("#error", Duration::from_secs(10)).await;
    assert!(
        browser
            .text(&error)
            .await
            .contains("not the operator token")
    );
    assert!(browser.find("#approve").await.is_none());

    // The right one lets the operator in: the pending migrations, and the Approve button.
    let field = browser.wait_for("#token", Duration::from_secs(10)).await;
    browser.type_into(&field, token).await;
    browser
        .type_into(&browser.find("#name").await.unwrap(), "Ada")
        .await;
    browser.click(&browser.find("#login").await.unwrap()).await;
    let banner = browser.wait_for("#awaiting", Duration::from_secs(10)).await;
    assert!(
        browser
            .text(&banner)
            .await
            .contains("5 migration(s) await approval"),
        "{}",
        browser.text(&banner).await
    );
    assert_eq!(browser.count("tr.state-pending").await, 5);
    assert!(browser.source().await.contains("place_accounts"));

    // The link opens the migration's review: its source, with the attribute's line, and the
    // index it adds.
    browser.goto(&review_link).await;
    let review = browser
        .wait_for("details#m20240301090000[open]", Duration::from_secs(10))
        .await;
    let text = browser.text(&review).await;
    assert!(
        text.contains("#[migration(20240301090000, role = \"notes\", down = drop_index)]"),
        "{text}"
    );
    assert!(
        text.contains("adds index notes.notes_by_creator (on creator, created_at)"),
        "{text}"
    );
    assert!(text.contains("not rehearsed"), "{text}");
    browser.wait_for("#awaiting", Duration::from_secs(10)).await;
    if let Some(path) = std::env::var_os("NOTELY_SCREENSHOT_PENDING") {
        std::fs::write(path, browser.screenshot().await).unwrap();
    }

    // Approve: the migrations run, the page shows them applied, and Notely serves its API.
    browser
        .click(&browser.find("#approve").await.unwrap())
        .await;
    browser.wait_for("#uptodate", Duration::from_secs(30)).await;
    assert_eq!(browser.count("tr.state-pending").await, 0);
    assert_eq!(browser.count("tr.state-applied").await, 7);
    next_line("notely: listening on");
    let shot = browser.screenshot().await;
    assert!(shot.starts_with(b"\x89PNG"), "a PNG screenshot");
    if let Some(path) = std::env::var_os("NOTELY_SCREENSHOT") {
        std::fs::write(path, &shot).unwrap();
    }
    browser.quit().await;
    drop(notely);

    // Who approved, and when, is in the audit log.
    let conn = rusqlite::Connection::open(d.join("control.db")).unwrap();
    let (detail, at): (String, String) = conn
        .query_row(
            "SELECT detail, at FROM strata_events WHERE kind = 'approved' ORDER BY id DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        detail.starts_with("approved by Ada via /admin; checksum ")
            && detail.ends_with("(read by the approver)"),
        "{detail}"
    );
    assert!(at.starts_with("20"), "{at}");
    assert_eq!(common::history(&d.join("control.db")).len(), 2);
}
