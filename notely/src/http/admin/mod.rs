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
//! - Wrong tokens (at login or as bearer) are counted per client address: after
//!   [`FREE_GUESSES`], the address waits before its next try, 1 s doubling at each further
//!   wrong token up to [`MAX_WAIT`], and is answered 429 with `Retry-After` meanwhile. Other
//!   addresses are not affected, and a correct token resets the count.
//! - Every response forbids framing (`X-Frame-Options: DENY`, `frame-ancestors 'none'`).

pub mod overview;
pub mod page;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use strata_online::{Engine, MoveError, MoveRecord, MoveStatus};
use uuid::Uuid;

use self::overview::Overview;
use crate::db::Settings;
use crate::deploy::Deployer;
use crate::http::error::{AppError, FormBody, JsonBody, Path as UrlPath};
use crate::moves::{self, Selection};
use crate::store::Note;

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
    pub fn load(data_dir: &Path) -> std::io::Result<(AdminToken, Option<PathBuf>)> {
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
    // `mode` only applies to a new file: an existing one (empty, say) keeps its mode unless
    // set here, before the token is in it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    writeln!(file, "{token}")
}

/// Everything the operator routes need; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    token: AdminToken,
    data_dir: PathBuf,
    settings: Settings,
    engine: Option<Arc<Engine<Note>>>,
    sessions: Arc<Mutex<HashMap<String, Session>>>,
    /// Wrong tokens per client address.
    guesses: Arc<Guesses>,
    /// Set while checked mode waits for an approval (the API is not served yet).
    waiting: Arc<AtomicBool>,
    /// The deploy controller of the server, when it deploys.
    deployer: Option<Deployer>,
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
    pub fn new(token: AdminToken, data_dir: &Path, settings: Settings) -> Admin {
        Admin {
            token,
            data_dir: data_dir.to_path_buf(),
            settings,
            engine: None,
            sessions: Arc::new(Mutex::new(HashMap::new())),
            guesses: Arc::new(Guesses::default()),
            waiting: Arc::new(AtomicBool::new(false)),
            deployer: None,
        }
    }

    /// The same operator state with the server's deploy controller.
    pub fn with_deployer(&self, deployer: Deployer) -> Admin {
        Admin {
            deployer: Some(deployer),
            ..self.clone()
        }
    }

    /// The server's deploy controller, when it deploys.
    pub fn deployer(&self) -> Option<&Deployer> {
        self.deployer.as_ref()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The migration settings the server runs with.
    pub fn settings(&self) -> &Settings {
        &self.settings
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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

/// Wrong tokens an address may try before it has to wait.
pub const FREE_GUESSES: u32 = 5;
/// The first wait after [`FREE_GUESSES`]; each further wrong token doubles it.
const FIRST_WAIT: Duration = Duration::from_secs(1);
/// The longest wait: an attacker sharing the operator's address locks them out no longer.
pub const MAX_WAIT: Duration = Duration::from_secs(30);
/// An address's wrong tokens are forgotten after this long without one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Addresses tracked at most; past it, the forgotten ones are dropped, then the stalest.
const TRACKED: usize = 10_000;

/// Wrong operator tokens per client address (IPv6 addresses by /64).
#[derive(Debug, Default)]
struct Guesses(Mutex<HashMap<IpAddr, Failures>>);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    /// No try is taken from the address before then.
    until: Option<Instant>,
}

/// What a token try from an address comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Right,
    Wrong,
    /// Not tried: the address must wait this long.
    Wait(Duration),
}

impl Guesses {
    /// Tries a token from `from` (`right` compares it), unless the address must wait. The
    /// comparison happens under the lock, so concurrent tries cannot slip past the count.
    fn attempt(&self, from: IpAddr, right: impl FnOnce() -> bool) -> (Verdict, u32) {
        self.attempt_at(Instant::now(), from, right)
    }

    fn attempt_at(
        &self,
        now: Instant,
        from: IpAddr,
        right: impl FnOnce() -> bool,
    ) -> (Verdict, u32) {
        let key = match from {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
            },
            v4 => v4,
        };
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(until) = all.get(&key).and_then(|f| f.until)
            && until > now
        {
            return (Verdict::Wait(until - now), 0);
        }
        if right() {
            all.remove(&key);
            return (Verdict::Right, 0);
        }
        if all.len() >= TRACKED && !all.contains_key(&key) {
            all.retain(|_, f| {
                now.duration_since(f.last) < FORGET_AFTER || f.until.is_some_and(|u| u > now)
            });
            if all.len() >= TRACKED
                && let Some(stalest) = all.iter().min_by_key(|(_, f)| f.last).map(|(k, _)| *k)
            {
                all.remove(&stalest);
            }
        }
        let f = all.entry(key).or_insert(Failures {
            count: 0,
            last: now,
            until: None,
        });
        if now.duration_since(f.last) >= FORGET_AFTER {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        f.until = (f.count > FREE_GUESSES).then(|| {
            let doublings = (f.count - FREE_GUESSES - 1).min(16);
            now + FIRST_WAIT.saturating_mul(1 << doublings).min(MAX_WAIT)
        });
        (Verdict::Wrong, f.count)
    }
}

impl Admin {
    /// Tries `given` as the operator token from `from`, logging when the address has to wait.
    fn try_token(&self, from: IpAddr, given: &str) -> Verdict {
        let (verdict, wrong) = self.guesses.attempt(from, || self.token.matches(given));
        if verdict == Verdict::Wrong && wrong > FREE_GUESSES {
            let line = format!(
                "admin: {wrong} wrong operator tokens from {from}; its next try has to wait"
            );
            tracing::warn!("{line}");
        }
        verdict
    }
}

/// The client's address, as the server saw it (unspecified when the router is called
/// without a server).
fn peer(parts: &axum::http::Extensions) -> IpAddr {
    parts
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// The client's address, as an extractor.
struct Peer(IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(peer(&parts.extensions)))
    }
}

/// Whole seconds to wait, at least one.
fn retry_after(wait: Duration) -> String {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
        .max(1)
        .to_string()
}

/// `429 Too Many Requests` for a token try from an address that must wait.
fn too_many(wait: Duration) -> Response {
    let seconds = retry_after(wait);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.clone())],
        Json(serde_json::json!({
            "error": format!("Too many wrong operator tokens from this address; retry in {seconds} s")
        })),
    )
        .into_response()
}

/// Who is calling: the name recorded with approvals.
#[derive(Debug, Clone)]
struct Operator(String);

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Operator>()
            .cloned()
            .ok_or_else(|| AppError::Internal("an operator route without its guard".into()))
    }
}

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
        Some(given) => match admin.try_token(peer(req.extensions()), given.trim()) {
            Verdict::Right => Operator("api client".into()),
            Verdict::Wrong => return unauthorized(),
            Verdict::Wait(wait) => return too_many(wait),
        },
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
        .map_err(AppError::from)
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

fn started_response(_admin: &Admin, started: Option<MoveRecord>) -> Response {
    tracing::info!(
        "admin: {}",
        match &started {
            Some(m) => format!("started move {} ({})", m.id, m.description),
            None => "every account is at the target already".into(),
        }
    );
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
    tracing::info!("admin: cancelling move {}", record.id);
    Ok(Json(record))
}

fn overview(admin: &Admin) -> anyhow::Result<Overview> {
    let mut overview = Overview::gather(
        &admin.data_dir,
        &admin.settings,
        admin.engine.as_deref(),
        admin.waiting.load(Ordering::Relaxed),
    )?;
    overview.can_deploy = admin.deployer.is_some();
    Ok(overview)
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
/// What the page sends with an approval: the digests of the reviews it showed.
#[derive(Debug, Default, serde::Deserialize)]
struct Reviewed {
    #[serde(default)]
    reviews: Vec<String>,
}

async fn approve(
    State(admin): State<Admin>,
    Operator(who): Operator,
    body: Option<Json<Reviewed>>,
) -> Result<Json<serde_json::Value>, AppError> {
    let by = format!("{who} via /admin");
    let reviewed = body.map(|Json(b)| b.reviews).unwrap_or_default();
    let task = {
        let (admin, by) = (admin.clone(), by.clone());
        move || -> Result<Vec<String>, AppError> {
            let fleet = crate::db::fleet(&admin.data_dir, &admin.settings);
            let mut approved = Vec::new();
            for d in fleet.databases() {
                let migrator = fleet.migrator(&d.role);
                // With the reviews the approver saw, each database's current review must be one
                // of them: otherwise its pending set changed since, and nothing is approved.
                let seen = if reviewed.is_empty() {
                    None
                } else {
                    let now = migrator
                        .review(&d.path)
                        .map_err(|e| AppError::Internal(e.to_string()))?;
                    if now.migrations.is_empty() {
                        continue;
                    }
                    if !reviewed.contains(&now.digest) {
                        return Err(AppError::Rejected(
                            StatusCode::CONFLICT,
                            format!(
                                "the pending migrations of {} changed since the review you read; \
                             reload and read it again",
                                d.path.display()
                            ),
                        ));
                    }
                    Some(now.digest)
                };
                let ids = migrator
                    .approve_reviewed(&d.path, &by, seen.as_deref())
                    .map_err(|e| AppError::BadRequest(e.to_string()))?;
                for m in ids {
                    approved.push(format!("{} {}", d.path.display(), m));
                }
            }
            Ok(approved)
        }
    };
    let approved = tokio::task::spawn_blocking(task)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
    tracing::info!("admin: {} migration(s) approved by {by}", approved.len());
    Ok(Json(
        serde_json::json!({ "approved": approved, "by": by, "at": chrono::Utc::now() }),
    ))
}

/// Every database's review of its pending migrations (see `strata::review`).
async fn reviews(State(admin): State<Admin>) -> Result<Json<serde_json::Value>, AppError> {
    let task = move || -> anyhow::Result<Vec<strata::review::Review>> {
        let fleet = crate::db::fleet(&admin.data_dir, &admin.settings);
        fleet
            .databases()
            .iter()
            .map(|d| Ok(fleet.migrator(&d.role).review(&d.path)?))
            .collect()
    };
    let reviews = tokio::task::spawn_blocking(task)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|e| AppError::Internal(format!("{e:#}")))?;
    Ok(Json(serde_json::json!({ "databases": reviews })))
}

/// `{"binary": "/abs/path", "overlap_s": 30}`, both optional (an empty body too).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StartDeploy {
    #[serde(default)]
    binary: Option<PathBuf>,
    #[serde(default)]
    overlap_s: Option<f64>,
}

/// Starts a deploy, of another binary if the operator names one.
async fn deploy(
    State(admin): State<Admin>,
    Operator(who): Operator,
    body: axum::body::Bytes,
) -> Response {
    let input: StartDeploy = if body.iter().all(u8::is_ascii_whitespace) {
        StartDeploy::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(input) => input,
            Err(e) => return AppError::BadRequest(format!("Invalid JSON: {e}")).into_response(),
        }
    };
    let overlap = match input.overlap_s {
        Some(s) if !(s.is_finite() && (0.0..=86_400.0).contains(&s)) => {
            return AppError::BadRequest(format!(
                "overlap_s must be between 0 and 86400 seconds, got {s}"
            ))
            .into_response();
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let request = crate::deploy::Request {
        binary: input.binary,
        overlap,
    };
    crate::http::deploy::begin(&admin, request, &format!("{who} via /admin"), false).await
}

#[derive(Debug, Deserialize)]
struct Login {
    #[serde(default)]
    token: String,
    #[serde(default)]
    name: String,
}

async fn login(
    State(admin): State<Admin>,
    Peer(from): Peer,
    FormBody(form): FormBody<Login>,
) -> Response {
    let verdict = admin.try_token(from, form.token.trim());
    if let Verdict::Wait(wait) = verdict {
        let seconds = retry_after(wait);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, seconds.clone())],
            Html(page::login(Some(&format!(
                "Too many wrong tokens from this address: try again in {seconds} s."
            )))),
        )
            .into_response();
    }
    if verdict == Verdict::Wrong {
        tracing::warn!("admin: a login with a wrong operator token was refused");
        return (
            StatusCode::UNAUTHORIZED,
            Html(page::login(Some("That is not the operator token."))),
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
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(
            sid.clone(),
            Session {
                name: name.clone(),
                csrf: random_token(),
            },
        );
    tracing::info!("admin: {name} logged in");
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
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
        return Html(page::login(None)).into_response();
    };
    match gather(&admin).await {
        Ok(o) => Html(page::page(&o, &session.name, &session.csrf)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The page's body alone, for its refreshes.
async fn body(State(admin): State<Admin>) -> Result<Html<String>, AppError> {
    Ok(Html(page::body(&gather(&admin).await?)))
}

/// The operator routes: the page and login (open), the rest behind the token.
pub fn router(admin: Admin) -> Router {
    let guarded = Router::new()
        .route("/admin/body", get(body))
        .route("/admin/logout", post(logout))
        .route("/admin/api/status", get(status))
        .route("/admin/api/approve", post(approve))
        .route("/admin/api/review", get(reviews))
        .route("/admin/api/moves", get(list_moves).post(start_move))
        .route("/admin/api/moves/{id}/cancel", post(cancel_move))
        .route("/admin/api/deploy", post(deploy))
        .route_layer(axum::middleware::from_fn_with_state(
            admin.clone(),
            require_operator,
        ));
    Router::new()
        .route("/admin", get(page))
        .route("/admin/login", post(login))
        .merge(guarded)
        .with_state(admin)
        .layer(axum::middleware::map_response(no_framing))
}

/// The operator page must not be framed by another site (clickjacking its Approve button).
async fn no_framing(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_tokens_make_their_address_wait_doubling_up_to_a_cap() {
        let guesses = Guesses::default();
        let (attacker, operator) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let mut now = Instant::now();
        for n in 1..=FREE_GUESSES {
            assert_eq!(
                guesses.attempt_at(now, attacker, || false),
                (Verdict::Wrong, n)
            );
        }
        // The sixth wrong token still counts; then the address waits 1 s, 2 s, 4 s, .. 30 s.
        let mut waits = Vec::new();
        for _ in 0..40 {
            assert_eq!(
                guesses.attempt_at(now, attacker, || false).0,
                Verdict::Wrong
            );
            let Verdict::Wait(wait) = guesses.attempt_at(now, attacker, || true).0 else {
                panic!("a correct token is not even tried while the address waits");
            };
            waits.push(wait.as_secs());
            // Another address is not affected.
            assert_eq!(guesses.attempt_at(now, operator, || true).0, Verdict::Right);
            now += wait;
        }
        assert_eq!(&waits[..7], [1, 2, 4, 8, 16, 30, 30]);
        assert!(waits.iter().all(|w| *w <= MAX_WAIT.as_secs()));
        // Once the wait is over, the right token gets in and resets the count.
        assert_eq!(guesses.attempt_at(now, attacker, || true).0, Verdict::Right);
        assert_eq!(
            guesses.attempt_at(now, attacker, || false),
            (Verdict::Wrong, 1)
        );
        // Old wrong tokens are forgotten.
        for _ in 1..FREE_GUESSES {
            guesses.attempt_at(now, attacker, || false);
        }
        now += FORGET_AFTER;
        assert_eq!(
            guesses.attempt_at(now, attacker, || false),
            (Verdict::Wrong, 1)
        );
        // An IPv6 client is one address per /64.
        let (a, b) = (
            "2001:db8::1".parse::<IpAddr>().unwrap(),
            "2001:db8::ffff:2".parse::<IpAddr>().unwrap(),
        );
        for _ in 0..=FREE_GUESSES {
            guesses.attempt_at(now, a, || false);
        }
        assert!(matches!(
            guesses.attempt_at(now, b, || true).0,
            Verdict::Wait(_)
        ));
    }
}
