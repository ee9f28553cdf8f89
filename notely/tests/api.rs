//! The REST API contract, request by request against the router (no server), plus one real
//! server process.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::common;

struct Api {
    _dir: tempfile::TempDir,
    router: axum::Router,
    token: String,
}

fn api() -> Api {
    let (dir, router, token) = common::router(vec!["https://notes.example".into()]);
    Api {
        router,
        _dir: dir,
        token,
    }
}

impl Api {
    async fn call(&self, method: Method, uri: &str, body: Option<&str>) -> (StatusCode, Value) {
        let (status, _, body) = self.raw(method, uri, body, &[]).await;
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).expect("JSON body")
        };
        (status, value)
    }

    async fn raw(
        &self,
        method: Method,
        uri: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(
                body.map(|b| Body::from(b.to_string()))
                    .unwrap_or_else(Body::empty),
            )
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let (parts, body) = res.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        (parts.status, parts.headers, bytes.to_vec())
    }

    async fn account(&self, name: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/accounts",
                Some(&json!({ "name": name }).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    async fn note(&self, account: &str, content: &str) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                &format!("/accounts/{account}/notes"),
                Some(&json!({ "content": content }).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }
}

#[tokio::test]
async fn health() {
    let api = api();
    let (status, body) = api.call(Method::GET, "/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert!(body["timestamp"].as_str().unwrap().contains('T'));
}

#[tokio::test]
async fn accounts_are_created_listed_read_and_updated() {
    let api = api();
    let id = api.account("Ada").await;
    let (status, body) = api
        .call(Method::GET, &format!("/accounts/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "id": id, "name": "Ada", "isMigrating": false, "shard": "notes" }),
        "the placement directory says where the notes are"
    );
    let chosen = "0b7d8f3e-1d2c-4e5f-9a8b-7c6d5e4f3a2b";
    let (status, body) = api
        .call(
            Method::POST,
            "/accounts",
            Some(&json!({ "id": chosen, "name": "Grace", "shard": "second" }).to_string()),
        )
        .await;
    assert_eq!(
        (status, &body["id"], &body["shard"]),
        (StatusCode::CREATED, &json!(chosen), &json!("notes")),
        "placement is not the client's to choose"
    );
    let (status, body) = api
        .call(
            Method::POST,
            "/accounts",
            Some(&json!({ "id": chosen, "name": "Again" }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (_, list) = api.call(Method::GET, "/accounts", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (status, body) = api
        .call(
            Method::PUT,
            &format!("/accounts/{id}"),
            Some(&json!({ "name": "Ada L.", "isMigrating": true }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({ "id": id, "name": "Ada L.", "isMigrating": false, "shard": "notes" }),
        "a rename leaves the placement alone"
    );
    let (status, body) = api
        .call(
            Method::GET,
            &format!("/accounts/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({ "error": "Account not found" })
        )
    );
    let (status, _) = api
        .call(
            Method::PUT,
            &format!("/accounts/{}", uuid::Uuid::new_v4()),
            Some(&json!({ "name": "x" }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn account_names_are_validated() {
    let api = api();
    for (body, why) in [
        (json!({}), "required"),
        (json!({ "name": "   " }), "required"),
        (json!({ "name": "x".repeat(101) }), "longer than 100"),
    ] {
        let (status, answer) = api
            .call(Method::POST, "/accounts", Some(&body.to_string()))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer["error"].as_str().unwrap().contains(why), "{answer}");
    }
    let (status, _) = api
        .call(
            Method::POST,
            "/accounts",
            Some(&json!({ "name": "é".repeat(100) }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "100 characters, not bytes");
}

#[tokio::test]
async fn notes_follow_the_contract() {
    let api = api();
    let a = api.account("Ada").await;
    let created = api.note(&a, "first").await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["creator"], json!(a));
    assert_eq!(created["createdAt"], created["updatedAt"]);
    // The creator is always the account, whatever the body says.
    let (_, forced) = api
        .call(
            Method::POST,
            &format!("/accounts/{a}/notes"),
            Some(&json!({ "content": "x", "creator": uuid::Uuid::new_v4() }).to_string()),
        )
        .await;
    assert_eq!(forced["creator"], json!(a));
    let (status, list) = api
        .call(Method::GET, &format!("/accounts/{a}/notes"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut listed: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut expected = vec![id.to_string(), forced["id"].as_str().unwrap().to_string()];
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
    let (status, got) = api
        .call(Method::GET, &format!("/accounts/{a}/notes/{id}"), None)
        .await;
    assert_eq!((status, &got), (StatusCode::OK, &created));

    // Last write wins by updatedAt; createdAt is preserved.
    let newer = "2099-01-01T00:00:00Z";
    let uri = format!("/accounts/{a}/notes/{id}");
    let (status, updated) = api
        .call(
            Method::PUT,
            &uri,
            Some(&json!({ "content": "second", "updatedAt": newer }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&updated["content"], &updated["createdAt"]),
        (&json!("second"), &created["createdAt"])
    );
    assert_eq!(updated["updatedAt"], json!("2099-01-01T00:00:00Z"));
    let (_, stale) = api
        .call(
            Method::PUT,
            &uri,
            Some(&json!({ "content": "stale", "updatedAt": "2020-01-01T00:00:00Z" }).to_string()),
        )
        .await;
    assert_eq!(
        stale["content"], "second",
        "an older update never overwrites a newer one"
    );
    let (_, zero) = api
        .call(
            Method::PUT,
            &uri,
            Some(&json!({ "content": "zero", "updatedAt": "0001-01-01T00:00:00Z" }).to_string()),
        )
        .await;
    assert_eq!(
        (&zero["content"], &zero["updatedAt"]),
        (&json!("zero"), &json!("2099-01-01T00:00:00.001Z")),
        "a zero updatedAt means the server's time, strictly newer than the stored one: a \
         write without a client time always wins"
    );

    let (status, body) = api.call(Method::DELETE, &uri, None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    let (status, _) = api.call(Method::DELETE, &uri, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "deleting twice is fine");
    let (status, body) = api.call(Method::GET, &uri, None).await;
    assert_eq!(
        (status, body),
        (StatusCode::NOT_FOUND, json!({ "error": "Note not found" }))
    );
    let (status, _) = api
        .call(
            Method::PUT,
            &uri,
            Some(&json!({ "content": "back?" }).to_string()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "an update does not resurrect a deleted note"
    );
    let ghost = uuid::Uuid::new_v4();
    let (status, body) = api
        .call(Method::GET, &format!("/accounts/{ghost}/notes"), None)
        .await;
    assert_eq!(
        (status, body),
        (
            StatusCode::NOT_FOUND,
            json!({ "error": "Account not found" })
        )
    );
}

#[tokio::test]
async fn a_note_is_reachable_only_through_its_own_account() {
    let api = api();
    let (a, b) = (api.account("A").await, api.account("B").await);
    let note = api.note(&a, "private").await;
    let id = note["id"].as_str().unwrap();
    let through_b = format!("/accounts/{b}/notes/{id}");
    assert_eq!(
        api.call(Method::GET, &through_b, None).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        api.call(Method::GET, &format!("/accounts/{b}/notes"), None)
            .await
            .1,
        json!([])
    );
    let (status, _) = api
        .call(
            Method::PUT,
            &through_b,
            Some(&json!({ "content": "hijack", "updatedAt": "2099-01-01T00:00:00Z" }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        api.call(Method::DELETE, &through_b, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, still) = api
        .call(Method::GET, &format!("/accounts/{a}/notes/{id}"), None)
        .await;
    assert_eq!(still["content"], "private");
    // Creating a note with another account's note id makes a note of its own (a note is
    // identified by account and id) and does not take the other over.
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/accounts/{b}/notes"),
            Some(&json!({ "id": id, "content": "mine" }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        api.call(Method::GET, &format!("/accounts/{a}/notes/{id}"), None)
            .await
            .1["content"],
        "private"
    );
}

#[tokio::test]
async fn bad_input_gets_a_json_4xx() {
    let api = api();
    let a = api.account("A").await;
    let notes = format!("/accounts/{a}/notes");
    let cases: Vec<(Method, String, Option<String>, StatusCode)> = vec![
        (
            Method::POST,
            notes.clone(),
            Some("{not json".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            notes.clone(),
            Some(json!({ "content": 5 }).to_string()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            notes.clone(),
            Some(json!({ "content": "" }).to_string()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            notes.clone(),
            Some(json!({ "content": "x".repeat(10_001) }).to_string()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            notes.clone(),
            Some(json!({ "content": "x", "id": "nope" }).to_string()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            notes.clone(),
            Some("x".repeat(300_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            Method::POST,
            "/accounts".into(),
            Some(json!({ "name": ["x"] }).to_string()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/accounts/not-a-uuid".into(),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            format!("{notes}/not-a-uuid"),
            None,
            StatusCode::BAD_REQUEST,
        ),
        (Method::GET, "/nowhere".into(), None, StatusCode::NOT_FOUND),
        (
            Method::PATCH,
            "/accounts".into(),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::DELETE,
            format!("/accounts/{a}"),
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (method, uri, body, want) in cases {
        let (status, headers, bytes) = api.raw(method.clone(), &uri, body.as_deref(), &[]).await;
        assert_eq!(status, want, "{method} {uri}");
        assert!(
            headers
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v == "application/json"),
            "{method} {uri}: {headers:?}"
        );
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(value["error"].is_string(), "{method} {uri}: {value}");
    }
}

#[tokio::test]
async fn cors_allows_local_pages_and_configured_origins() {
    let api = api();
    for (origin, allowed) in [
        ("http://localhost:5173", true),
        ("http://127.0.0.1:3000", true),
        ("https://notes.example", true),
        ("http://evil.example", false),
        ("http://localhost.evil.example:80", false),
    ] {
        let (_, headers, _) = api
            .raw(
                Method::OPTIONS,
                "/accounts",
                None,
                &[
                    ("origin", origin),
                    ("access-control-request-method", "POST"),
                    ("access-control-request-headers", "content-type"),
                ],
            )
            .await;
        let got = headers
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .map(|v| v.to_str().unwrap().to_string());
        assert_eq!(
            got.as_deref() == Some(origin),
            allowed,
            "{origin}: {headers:?}"
        );
    }
    // A plain request (no `Origin`) and a page's: both say the answer varies by origin; only
    // the page's names it.
    for origin in [None, Some("http://localhost:5173")] {
        let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
        let (status, headers, _) = api.raw(Method::GET, "/accounts", None, &headers).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get_all(header::VARY).iter().count(),
            1,
            "{headers:?}"
        );
        assert_eq!(headers[header::VARY], "origin");
        assert_eq!(
            headers
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .map(|v| v.to_str().unwrap()),
            origin
        );
    }
}

#[test]
fn a_real_server_answers_on_loopback() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_notely"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--port", "0"])
        .env_remove("NOTELY_MIGRATE")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("a line").unwrap();
        if let Some(addr) = line.strip_prefix("notely: listening on http://") {
            break addr.to_string();
        }
    };
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"status\":\"ok\""), "{answer}");
}

#[tokio::test]
async fn operator_routes_need_the_token_and_start_and_cancel_moves() {
    let api = api();
    let ada = api.account("Ada").await;
    api.note(&ada, "hello").await;
    for auth in [None, Some("Bearer wrong"), Some("Basic abc")] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (status, headers, body) = api
            .raw(Method::GET, "/admin/api/moves", None, &headers)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer");
        assert!(String::from_utf8_lossy(&body).contains("operator token"));
    }
    let bearer = format!("Bearer {}", api.token);
    let call = |method: Method, uri: &'static str, body: Option<String>| {
        let bearer = bearer.clone();
        let api = &api;
        async move {
            let (status, _, body) = api
                .raw(
                    method,
                    uri,
                    body.as_deref(),
                    &[("authorization", bearer.as_str())],
                )
                .await;
            (
                status,
                serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = call(Method::GET, "/admin/api/moves", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, body) = call(
        Method::POST,
        "/admin/api/moves",
        Some(json!({"to": "notes"}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, body) = call(
        Method::POST,
        "/admin/api/moves",
        Some(json!({"to": "nowhere", "all": true}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("unknown location `nowhere`"),
        "{body}"
    );
    let (status, body) = call(
        Method::POST,
        "/admin/api/moves",
        Some(json!({"to": "legacy", "accounts": [ada]}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (&body["owners"], &body["state"]),
        (&json!(1), &json!("running"))
    );
    // The account shows as moving only once a worker starts it; the router has no worker.
    let (status, body) = call(Method::POST, "/admin/api/moves/1/cancel", None).await;
    assert_eq!(
        (status, &body["state"]),
        (StatusCode::OK, &json!("cancelling")),
        "{body}"
    );
    let (status, _) = call(Method::POST, "/admin/api/moves/99/cancel", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(Method::GET, "/admin/api/moves", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["description"], "1 account(s) → legacy");
}

#[tokio::test]
async fn the_operator_page_logs_in_with_the_token_and_guards_posts_with_csrf() {
    let api = api();
    let (status, _, page) = api.raw(Method::GET, "/admin", None, &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&page).contains("Operator token"));
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, _, page) = api
        .raw(
            Method::POST,
            "/admin/login",
            Some("token=wrong&name=Eve"),
            &form,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&page).contains("not the operator token"));
    let body = format!("token={}&name=Ada", api.token);
    let (status, headers, _) = api
        .raw(Method::POST, "/admin/login", Some(&body), &form)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let set = headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/admin"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let with_cookie = [("cookie", cookie.as_str())];
    let (status, _, page) = api.raw(Method::GET, "/admin", None, &with_cookie).await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8_lossy(&page).into_owned();
    assert!(page.contains("Every database is up to date"), "{page}");
    assert!(!page.contains(&api.token), "the token is never in the page");
    let csrf = page
        .split("<meta name=\"csrf\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let (status, _, body) = api
        .raw(Method::GET, "/admin/api/status", None, &with_cookie)
        .await;
    assert_eq!(status, StatusCode::OK);
    let overview: Value = serde_json::from_slice(&body).unwrap();
    let paths: Vec<&str> = overview["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert_eq!(overview["awaiting_approval"], 0);
    assert!(
        !overview["databases"][0]["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // A POST needs the session's CSRF token too.
    let (status, _, _) = api
        .raw(Method::POST, "/admin/api/approve", None, &with_cookie)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let with_csrf = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let (status, _, body) = api
        .raw(Method::POST, "/admin/api/approve", None, &with_csrf)
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let approved: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&approved["approved"], &approved["by"]),
        (&json!([]), &json!("Ada via /admin"))
    );
    let (status, _, _) = api
        .raw(Method::POST, "/admin/logout", None, &with_csrf)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = api
        .raw(Method::GET, "/admin/api/status", None, &with_cookie)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "logged out");
}

/// Issue 13, item 3: a PUT without `updatedAt` right after the note's previous write (the same
/// millisecond, most of the time here) answered 200 and kept the old content. Every such write
/// is acknowledged with its own content, and its `updatedAt` is strictly newer.
#[tokio::test]
async fn an_update_without_a_client_time_always_wins_even_in_the_same_millisecond() {
    let api = api();
    let account = api.account("Quick").await;
    for i in 0..300 {
        let created = api.note(&account, "first").await;
        let id = created["id"].as_str().unwrap();
        let mut last = created["updatedAt"].as_str().unwrap().to_string();
        for round in 0..2 {
            let content = format!("put {i}.{round}");
            let (status, body) = api
                .call(
                    Method::PUT,
                    &format!("/accounts/{account}/notes/{id}"),
                    Some(&json!({ "content": content }).to_string()),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(
                body["content"],
                content.as_str(),
                "write {i}.{round} dropped"
            );
            let at = body["updatedAt"].as_str().unwrap().to_string();
            let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap();
            assert!(parse(&at) > parse(&last), "{at} is not newer than {last}");
            last = at;
        }
    }
    // A client's older time still loses (last write wins), and the answer shows what is kept.
    let note = api.note(&account, "kept").await;
    let id = note["id"].as_str().unwrap();
    let (status, body) = api
        .call(
            Method::PUT,
            &format!("/accounts/{account}/notes/{id}"),
            Some(&json!({ "content": "stale", "updatedAt": "2001-01-01T00:00:00Z" }).to_string()),
        )
        .await;
    assert_eq!((status, &body["content"]), (StatusCode::OK, &json!("kept")));
}

/// Issue 13, item 1: note ids are the client's to choose, so two accounts may use the same
/// one; each account keeps its own note.
#[tokio::test]
async fn two_accounts_may_use_the_same_note_id() {
    let api = api();
    let (a, b) = (api.account("A").await, api.account("B").await);
    let id = "5f0c4b7e-0000-4000-8000-00000000c0de";
    for (account, content) in [(&a, "mine"), (&b, "yours")] {
        let (status, body) = api
            .call(
                Method::POST,
                &format!("/accounts/{account}/notes"),
                Some(&json!({ "id": id, "content": content }).to_string()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    for (account, content) in [(&a, "mine"), (&b, "yours")] {
        let (status, body) = api
            .call(
                Method::GET,
                &format!("/accounts/{account}/notes/{id}"),
                None,
            )
            .await;
        assert_eq!(
            (status, &body["content"]),
            (StatusCode::OK, &json!(content))
        );
    }
    let (status, _) = api
        .call(Method::DELETE, &format!("/accounts/{a}/notes/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = api
        .call(Method::GET, &format!("/accounts/{b}/notes/{id}"), None)
        .await;
    assert_eq!(
        (status, &body["content"]),
        (StatusCode::OK, &json!("yours"))
    );
}

/// `GET /admin/api/review`: every pending migration of Notely with its source as written, its
/// class and schema change; an approval naming a review that is not the current one is refused.
#[tokio::test]
async fn the_review_of_each_pending_migration_shows_its_source_class_and_schema_change() {
    let dir = tempfile::tempdir().unwrap();
    let settings = notely::db::Settings {
        backups: 0,
        mode: strata::Mode::Checked,
        ..Default::default()
    };
    let token = notely::http::admin::AdminToken::new("review-test-token");
    let admin = notely::http::admin::Admin::new(token, dir.path(), settings.clone());
    let router = notely::http::admin::router(admin);
    let call = |method: Method, uri: &'static str, body: Option<String>| {
        let router = router.clone();
        async move {
            let mut req = Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", "Bearer review-test-token");
            if body.is_some() {
                req = req.header("content-type", "application/json");
            }
            let res = router
                .oneshot(
                    req.body(body.map(Body::from).unwrap_or_else(Body::empty))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = res.status();
            let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap();
            (
                status,
                serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null),
            )
        }
    };
    let (status, body) = call(Method::GET, "/admin/api/review", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let databases = body["databases"].as_array().unwrap();
    let all = notely_migrations::MIGRATIONS.all().unwrap();
    for m in &all {
        let db = databases
            .iter()
            .find(|d| d["role"] == m.role())
            .unwrap_or_else(|| panic!("no database of role {}", m.role()));
        let r = db["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == m.version())
            .unwrap_or_else(|| panic!("{} is not in the review", m.version()));
        let source = r["source"].as_str().unwrap();
        let line = r["line"].as_u64().unwrap() as usize;
        let attribute = source.lines().nth(line - 1).unwrap();
        assert!(
            attribute.starts_with("#[migration(") && source.contains(&m.version().to_string()),
            "{}: line {line} is {attribute:?}",
            m.version()
        );
        assert!(
            source.contains(&format!("fn {}(", m.name())),
            "{}",
            m.version()
        );
        assert!(r["file"].as_str().unwrap().ends_with(".rs"));
        let expected = strata::class::classify(&all, m).class.label();
        assert_eq!(r["class"], expected, "{}", m.version());
        assert_eq!(r["checksum"], m.checksum().to_hex());
    }
    let changes = |version: i64| -> Vec<String> {
        databases
            .iter()
            .flat_map(|d| d["migrations"].as_array().unwrap().iter())
            .find(|r| r["version"] == version)
            .unwrap()["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {}",
                    c["kind"], c["item"], c["name"], c["contract"]
                )
            })
            .collect()
    };
    assert_eq!(
        changes(20240301090000),
        [r#""added" "index" "notes.notes_by_creator" false"#]
    );
    assert_eq!(
        changes(20261129200000),
        [r#""changed" "primary key" "notes" true"#]
    );
    assert!(changes(20240226153000).contains(&r#""added" "table" "accounts" false"#.to_string()));

    // An approval after another review than the current one approves nothing.
    let (status, body) = call(
        Method::POST,
        "/admin/api/approve",
        Some(json!({"reviews": ["0000000000000000"]}).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("changed since the review you read")
    );
    let digests: Vec<Value> = databases.iter().map(|d| d["digest"].clone()).collect();
    let (status, body) = call(
        Method::POST,
        "/admin/api/approve",
        Some(json!({ "reviews": digests }).to_string()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["approved"].as_array().unwrap().len(), all.len());
    let conn = rusqlite::Connection::open(dir.path().join("notes.db")).unwrap();
    let detail: String = conn
        .query_row(
            "SELECT detail FROM strata_events WHERE kind = 'approved' AND version = 20240301090000",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let notes_digest = databases.iter().find(|d| d["role"] == "notes").unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        detail.contains("checksum ")
            && detail.contains(&format!("review {notes_digest} (read by the approver)")),
        "{detail}"
    );
}

/// Requests arriving together are read and written in batches (one read transaction, one
/// group commit): under 64 concurrent clients each answer is still its own — every write
/// answered is there for the next read, a missing note or account is a 404 beside found ones,
/// and a write to a missing account fails alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_and_writes_each_get_their_own_answer() {
    let api = std::sync::Arc::new(api());
    let accounts = [api.account("A").await, api.account("B").await];
    let mut tasks = Vec::new();
    for client in 0..64usize {
        let api = std::sync::Arc::clone(&api);
        let account = accounts[client % 2].clone();
        tasks.push(tokio::spawn(async move {
            let note = api.note(&account, &format!("c{client} v0")).await;
            let id = note["id"].as_str().unwrap().to_string();
            let path = format!("/accounts/{account}/notes/{id}");
            for round in 1..=5 {
                let content = format!("c{client} v{round}");
                let (status, body) = api
                    .call(
                        Method::PUT,
                        &path,
                        Some(&json!({ "content": content }).to_string()),
                    )
                    .await;
                assert_eq!(
                    (status, &body["content"]),
                    (StatusCode::OK, &json!(content))
                );
                let (status, body) = api.call(Method::GET, &path, None).await;
                assert_eq!(
                    (status, &body["content"]),
                    (StatusCode::OK, &json!(content))
                );
                let missing = format!("/accounts/{account}/notes/{}", uuid::Uuid::new_v4());
                assert_eq!(
                    api.call(Method::GET, &missing, None).await.0,
                    StatusCode::NOT_FOUND
                );
                let nobody = format!("/accounts/{}/notes/{id}", uuid::Uuid::new_v4());
                assert_eq!(
                    api.call(Method::GET, &nobody, None).await.0,
                    StatusCode::NOT_FOUND
                );
                let (status, _) = api
                    .call(Method::PUT, &nobody, Some(r#"{"content":"x"}"#))
                    .await;
                assert_eq!(status, StatusCode::NOT_FOUND);
            }
            (account, id)
        }));
    }
    for task in tasks {
        let (account, id) = task.await.unwrap();
        let (status, _) = api
            .call(
                Method::DELETE,
                &format!("/accounts/{account}/notes/{id}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
    }
    for account in &accounts {
        let (status, body) = api
            .call(Method::GET, &format!("/accounts/{account}/notes"), None)
            .await;
        assert_eq!((status, body), (StatusCode::OK, json!([])));
    }
}
