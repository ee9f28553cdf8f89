//! The operator page, `/admin`, and its JSON endpoints, `/admin/api/…`, behind the operator
//! token.
//!
//! The page shows every database (control, stores, shards): the migrations compiled into the
//! binary with their state, checksum, applied time and duration; the audit events; the
//! migrations awaiting approval in checked mode, with an Approve button; and the live data
//! moves. It refreshes itself every two seconds.
//!
//! - The token comes from `NOTELY_ADMIN_TOKEN`, or from `admin.token` in the data directory,
//!   generated (and printed once) on first start. It is compared in constant time and never
//!   logged.
//! - A browser logs in with the token (a form POST) and gets a session cookie (`HttpOnly`,
//!   `SameSite=Strict`, path `/admin`); every state-changing request is a POST that must also
//!   carry the session's CSRF token in `X-CSRF-Token`.
//! - Scripts use `Authorization: Bearer <token>` (no cookie, so no CSRF exposure).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use strata::online::{Engine, MoveError, MoveRecord, MoveStatus};
use uuid::Uuid;

use crate::api::{AppError, JsonBody};
use crate::db::Settings;
use crate::moves::{self, Selection};
use crate::store::Note;
use crate::telemetry::Telemetry;

/// The operator token.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<hidden>)")
    }
}

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        AdminToken(token.into())
    }

    /// `NOTELY_ADMIN_TOKEN`, else `<data_dir>/admin.token`, created on first use with a fresh
    /// random token. Returns the token and, when it was just created, the file.
    pub fn load(data_dir: &Path) -> std::io::Result<(AdminToken, Option<std::path::PathBuf>)> {
        if let Ok(t) = std::env::var("NOTELY_ADMIN_TOKEN")
            && !t.trim().is_empty()
        {
            return Ok((AdminToken::new(t.trim()), None));
        }
        let path = data_dir.join("admin.token");
        match std::fs::read_to_string(&path) {
            Ok(t) if !t.trim().is_empty() => Ok((AdminToken::new(t.trim()), None)),
            _ => {
                let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
                write_private(&path, &token)?;
                Ok((AdminToken::new(&token), Some(path)))
            }
        }
    }

    /// The token, to show an operator once.
    pub fn reveal(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison (in the token's length).
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        let mut diff = a.len() ^ b.len();
        for (i, x) in a.iter().enumerate() {
            diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
        }
        diff == 0
    }
}

fn write_private(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{token}")
}

/// Everything the operator routes need; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    token: AdminToken,
    data_dir: PathBuf,
    settings: Settings,
    engine: Option<Arc<Engine<Note>>>,
    telemetry: Arc<Telemetry>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Set while checked mode waits for an approval (the API is not served yet).
    waiting: Arc<AtomicBool>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("data_dir", &self.data_dir)
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A logged-in browser.
#[derive(Debug, Clone)]
struct Session {
    /// Who, as they named themselves at login (recorded with approvals).
    name: String,
    csrf: String,
}

impl Admin {
    /// Operator routes over the databases under `data_dir`; `engine` is absent while checked
    /// mode waits (nothing is open yet).
    pub fn new(
        token: AdminToken,
        data_dir: &Path,
        settings: Settings,
        telemetry: Arc<Telemetry>,
    ) -> Admin {
        Admin {
            token,
            data_dir: data_dir.to_path_buf(),
            settings,
            engine: None,
            telemetry,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            waiting: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same operator state (sessions included) with the online engine.
    pub fn with_engine(&self, engine: Arc<Engine<Note>>) -> Admin {
        Admin {
            engine: Some(engine),
            ..self.clone()
        }
    }

    /// Marks whether checked mode is waiting for an approval.
    pub fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Ordering::Relaxed);
    }

    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let sid = cookie(headers, COOKIE)?;
        self.sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&sid)
            .cloned()
    }
}

const COOKIE: &str = "notely_admin";

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn random_token() -> String {
    format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple())
}

/// Who is calling: the name recorded with approvals.
#[derive(Debug, Clone)]
struct Operator(String);

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        Json(serde_json::json!({ "error": "A valid operator token is required" })),
    )
        .into_response()
}

/// Lets a request through with a valid bearer token, or with a session cookie (plus the
/// session's CSRF token for anything but GET).
async fn require_operator(State(admin): State<Admin>, mut req: Request, next: Next) -> Response {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let operator = match bearer {
        Some(given) if admin.token.matches(given.trim()) => Operator("api client".into()),
        Some(_) => return unauthorized(),
        None => {
            let Some(session) = admin.session(req.headers()) else {
                return unauthorized();
            };
            if req.method() != Method::GET {
                let sent = req
                    .headers()
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !AdminToken::new(&session.csrf).matches(sent) {
                    return (
                        StatusCode::FORBIDDEN,
                        Json(serde_json::json!({ "error": "Missing or wrong CSRF token" })),
                    )
                        .into_response();
                }
            }
            Operator(session.name)
        }
    };
    req.extensions_mut().insert(operator);
    next.run(req).await
}

fn refusal(e: MoveError) -> AppError {
    match e {
        MoveError::Invalid(m) => AppError::BadRequest(m),
        MoveError::UnknownLocation { .. } => AppError::BadRequest(e.to_string()),
        MoveError::NoSuchMove(_) => AppError::NotFound("No such move"),
        other => AppError::Internal(other.to_string()),
    }
}

fn engine(admin: &Admin) -> Result<Arc<Engine<Note>>, AppError> {
    admin.engine.clone().ok_or_else(|| {
        AppError::BadRequest(
            "Notely is waiting for pending migrations to be approved; data moves come after".into(),
        )
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MoveError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(refusal)
}

async fn list_moves(State(admin): State<Admin>) -> Result<Json<Vec<MoveStatus>>, AppError> {
    let engine = engine(&admin)?;
    Ok(Json(blocking(move || engine.moves()).await?))
}

/// `{"to": "notes", "accounts": [..]}`, `{"to": .., "fraction": 0.1}`, `{"to": .., "all": true}`
/// or `{"shards": 4}`.
#[derive(Debug, Deserialize)]
struct StartMove {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    shards: Option<usize>,
    #[serde(default)]
    accounts: Option<Vec<Uuid>>,
    #[serde(default)]
    fraction: Option<f64>,
    #[serde(default)]
    all: bool,
}

async fn start_move(
    State(admin): State<Admin>,
    JsonBody(input): JsonBody<StartMove>,
) -> Result<Response, AppError> {
    let engine = engine(&admin)?;
    let to = match (input.to, input.shards) {
        (Some(to), None) => to,
        (None, Some(n)) if input.accounts.is_none() && input.fraction.is_none() && !input.all => {
            let (dir, settings) = (admin.data_dir.clone(), admin.settings.clone());
            let started = tokio::task::spawn_blocking(move || {
                moves::start_shards(&engine, &dir, &settings, n)
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| AppError::BadRequest(format!("{e:#}")))?;
            return Ok(started_response(&admin, started));
        }
        _ => {
            return Err(AppError::BadRequest(
                "say where to: \"to\" (with \"accounts\", \"fraction\" or \"all\"), or \"shards\""
                    .into(),
            ));
        }
    };
    let selection = match (input.accounts, input.fraction, input.all) {
        (Some(ids), None, false) => Selection::Accounts(ids),
        (None, Some(f), false) => Selection::Fraction(f),
        (None, None, true) => Selection::All,
        _ => {
            return Err(AppError::BadRequest(
                "say which accounts move: one of \"accounts\", \"fraction\" or \"all\"".into(),
            ));
        }
    };
    let started: Option<MoveRecord> =
        blocking(move || moves::start(&engine, &selection, &to)).await?;
    Ok(started_response(&admin, started))
}

fn started_response(admin: &Admin, started: Option<MoveRecord>) -> Response {
    admin.telemetry.log(format!(
        "INFO admin: {}",
        match &started {
            Some(m) => format!("started move {} ({})", m.id, m.description),
            None => "every account is at the target already".into(),
        }
    ));
    match started {
        Some(m) => (StatusCode::CREATED, Json(m)).into_response(),
        None => Json(serde_json::json!({ "started": false })).into_response(),
    }
}

async fn cancel_move(
    State(admin): State<Admin>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<MoveRecord>, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("Invalid move id: {id}")))?;
    let engine = engine(&admin)?;
    let record = blocking(move || moves::cancel(&engine, Some(id))).await?;
    admin
        .telemetry
        .log(format!("INFO admin: cancelling move {}", record.id));
    Ok(Json(record))
}

/// One database as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseView {
    #[serde(flatten)]
    pub status: strata::DatabaseStatus,
    /// The newest audit events, newest first.
    pub events: Vec<strata::store::Event>,
}

/// What the page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub mode: String,
    /// Checked mode is waiting for an approval: the API is not served yet.
    pub waiting: bool,
    /// Pending migrations not approved yet, over all databases.
    pub awaiting_approval: usize,
    pub databases: Vec<DatabaseView>,
    pub moves: Vec<MoveStatus>,
}

/// Events shown per database.
const EVENTS: usize = 15;

fn overview(admin: &Admin) -> anyhow::Result<Overview> {
    let fleet = crate::db::fleet(&admin.data_dir, &admin.settings);
    let mut databases = Vec::new();
    for status in fleet.status()? {
        let history = fleet
            .migrator(&status.status.role)
            .history(&status.status.path)?;
        let mut events = history.events;
        events.reverse();
        events.truncate(EVENTS);
        databases.push(DatabaseView { status, events });
    }
    let awaiting_approval = databases
        .iter()
        .flat_map(|d| &d.status.status.migrations)
        .filter(|m| {
            matches!(
                m.state,
                strata::MigrationState::Pending | strata::MigrationState::OutOfOrder
            ) && !m.approved
        })
        .count();
    let moves = match &admin.engine {
        Some(engine) => engine.moves()?,
        None => Vec::new(),
    };
    Ok(Overview {
        mode: format!("{:?}", admin.settings.mode).to_lowercase(),
        waiting: admin.waiting.load(Ordering::Relaxed),
        awaiting_approval,
        databases,
        moves,
    })
}

async fn gather(admin: &Admin) -> Result<Overview, AppError> {
    let admin = admin.clone();
    tokio::task::spawn_blocking(move || overview(&admin))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("{e:#}")))
}

async fn status(State(admin): State<Admin>) -> Result<Json<Overview>, AppError> {
    Ok(Json(gather(&admin).await?))
}

/// Approves every pending migration of every database, in the caller's name.
async fn approve(
    State(admin): State<Admin>,
    axum::Extension(Operator(who)): axum::Extension<Operator>,
) -> Result<Json<serde_json::Value>, AppError> {
    let by = format!("{who} via /admin");
    let task = {
        let (admin, by) = (admin.clone(), by.clone());
        move || -> anyhow::Result<Vec<String>> {
            let fleet = crate::db::fleet(&admin.data_dir, &admin.settings);
            let mut approved = Vec::new();
            for d in fleet.databases() {
                for m in fleet.migrator(&d.role).approve(&d.path, &by)? {
                    approved.push(format!("{} {}", d.path.display(), m));
                }
            }
            Ok(approved)
        }
    };
    let approved = tokio::task::spawn_blocking(task)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::BadRequest(format!("{e:#}")))?;
    admin.telemetry.log(format!(
        "INFO admin: {} migration(s) approved by {by}",
        approved.len()
    ));
    Ok(Json(
        serde_json::json!({ "approved": approved, "by": by, "at": chrono::Utc::now() }),
    ))
}

#[derive(Debug, Deserialize)]
struct Login {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
}

async fn login(State(admin): State<Admin>, Form(form): Form<Login>) -> Response {
    if !admin.token.matches(form.token.trim()) {
        admin
            .telemetry
            .log("WARN admin: a login with a wrong operator token was refused".into());
        return (
            StatusCode::UNAUTHORIZED,
            Html(crate::admin_page::login(Some(
                "That is not the operator token.",
            ))),
        )
            .into_response();
    }
    let name = form.name.trim();
    let name = if name.is_empty() {
        "operator".to_string()
    } else {
        name.chars().take(60).collect()
    };
    let sid = random_token();
    admin
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            sid.clone(),
            Session {
                name: name.clone(),
                csrf: random_token(),
            },
        );
    admin.telemetry.log(format!("INFO admin: {name} logged in"));
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={sid}; HttpOnly; SameSite=Strict; Path=/admin"),
        )],
        Redirect::to("/admin"),
    )
        .into_response()
}

async fn logout(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    if let Some(sid) = cookie(&headers, COOKIE) {
        admin
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&sid);
    }
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/admin; Max-Age=0"),
        )],
        Redirect::to("/admin"),
    )
        .into_response()
}

/// The page: the login form, or the overview for a logged-in browser.
async fn page(State(admin): State<Admin>, headers: HeaderMap) -> Response {
    let Some(session) = admin.session(&headers) else {
        return Html(crate::admin_page::login(None)).into_response();
    };
    match gather(&admin).await {
        Ok(o) => Html(crate::admin_page::page(&o, &session.name, &session.csrf)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The page's body alone, for its refreshes.
async fn body(State(admin): State<Admin>) -> Result<Html<String>, AppError> {
    Ok(Html(crate::admin_page::body(&gather(&admin).await?)))
}

/// The operator routes: the page and login (open), the rest behind the token.
pub fn router(admin: Admin) -> Router {
    let guarded = Router::new()
        .route("/admin/body", get(body))
        .route("/admin/logout", post(logout))
        .route("/admin/api/status", get(status))
        .route("/admin/api/approve", post(approve))
        .route("/admin/api/moves", get(list_moves).post(start_move))
        .route("/admin/api/moves/{id}/cancel", post(cancel_move))
        .route_layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            require_operator,
        ));
    Router::new()
        .route("/admin", get(page))
        .route("/admin/login", post(login))
        .merge(guarded)
        .with_state(admin)
}
