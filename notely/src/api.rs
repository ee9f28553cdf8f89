//! The REST API, compatible with the original Notely's contract: JSON everywhere, errors as
//! `{"error": ".."}`, UUID ids, RFC 3339 times.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_http::cors::{AllowOrigin, CorsLayer};
use uuid::Uuid;

use crate::proxy::NoteProxy;
use crate::store::{Account, Db, Note, StoreError, accounts};
use crate::telemetry::Telemetry;

/// Longest account name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest note content, in characters.
pub const MAX_CONTENT: usize = 10_000;
/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

/// What the handlers share: one allocation, cloned (an `Arc`) per request.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct Shared {
    pub control: Arc<Db>,
    pub notes: NoteProxy,
    pub telemetry: Arc<Telemetry>,
    /// Extra origins allowed by CORS besides `http://localhost:*` and `http://127.0.0.1:*`.
    pub cors_origins: Vec<String>,
    /// The operator page and endpoints.
    pub admin: crate::admin::Admin,
}

/// An error answered as `{"error": ".."}`. Internal errors are logged, never shown.
#[derive(Debug)]
pub enum AppError {
    /// `400 Bad Request`
    BadRequest(String),
    /// `404 Not Found`
    NotFound(&'static str),
    /// `405 Method Not Allowed`
    MethodNotAllowed,
    /// `409 Conflict`
    Conflict(&'static str),
    /// `413 Payload Too Large`
    TooLarge,
    /// An extractor's rejection (bad percent-encoding, wrong content type, ..), with its 4xx
    /// status and text.
    Rejected(StatusCode, String),
    /// `500 Internal Server Error`
    Internal(String),
    /// `503 Service Unavailable`: a database reported damage (see [`Damaged`]).
    Damaged(Damaged),
}

/// A database file that reported damage (SQLITE_CORRUPT or SQLITE_NOTADB), and SQLite's
/// message. An answer caused by one carries it as an extension, for [`track`] to remember.
#[derive(Debug, Clone)]
pub struct Damaged {
    pub path: std::path::PathBuf,
    pub message: String,
}

impl Damaged {
    /// The damage `e` reports, if it reports damage.
    pub fn of(e: &StoreError) -> Option<Damaged> {
        let (path, source) = match e {
            StoreError::Sqlite { path, source } => (path, source),
            StoreError::Move(strata_online::MoveError::Sqlite { path, source, .. }) => {
                (path, source)
            }
            _ => return None,
        };
        matches!(
            source.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
        )
        .then(|| Damaged {
            path: path.clone(),
            message: source.to_string(),
        })
    }

    /// Remembers the damage (`/healthz` answers 503 from now on) and, the first time for this
    /// file, logs it with how to recover.
    pub fn report(&self, telemetry: &Telemetry) {
        if telemetry.damaged(&self.path, &self.message) {
            let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
            let line = format!(
                "{} is damaged ({}); {}",
                self.path.display(),
                self.message,
                crate::db::recovery_hint(dir, &self.path)
            );
            tracing::error!("{line}");
        }
    }

    fn file_name(path: &std::path::Path) -> String {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

impl AppError {
    /// An extractor's rejection as a JSON error: client errors keep their status and text,
    /// anything else is internal.
    pub fn rejection(status: StatusCode, text: String) -> AppError {
        if status.is_client_error() {
            AppError::Rejected(status, text)
        } else {
            AppError::Internal(text)
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match (Damaged::of(&e), e) {
            (Some(damaged), _) => AppError::Damaged(damaged),
            (None, StoreError::Move(e)) => AppError::from(e),
            (None, e) => AppError::Internal(e.to_string()),
        }
    }
}

/// The online engine's refusals are the client's mistakes (400, 404); the rest is ours.
impl From<strata_online::MoveError> for AppError {
    fn from(e: strata_online::MoveError) -> Self {
        use strata_online::MoveError;
        match e {
            MoveError::Invalid(m) => AppError::BadRequest(m),
            MoveError::UnknownLocation { .. } => AppError::BadRequest(e.to_string()),
            MoveError::NoSuchMove(_) => AppError::NotFound("No such move"),
            other => AppError::Internal(other.to_string()),
        }
    }
}

/// 503, carrying the damage for [`track`] to remember and log.
impl IntoResponse for Damaged {
    fn into_response(self) -> Response {
        let mut res = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "error": "A database of this service is damaged; an operator has to restore it \
                          from a backup"
            })),
        )
            .into_response();
        res.extensions_mut().insert(self);
        res
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            AppError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            AppError::NotFound(m) => (StatusCode::NOT_FOUND, m.to_string()),
            AppError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed".to_string(),
            ),
            AppError::Conflict(m) => (StatusCode::CONFLICT, m.to_string()),
            AppError::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Request body larger than {MAX_BODY} bytes"),
            ),
            AppError::Rejected(status, m) => (status, m),
            AppError::Damaged(damaged) => return damaged.into_response(),
            AppError::Internal(detail) => {
                tracing::error!("internal error: {detail}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong".to_string(),
                )
            }
        };
        (status, Json(serde_json::json!({ "error": message }))).into_response()
    }
}

type ApiResult<T> = Result<T, AppError>;

/// A JSON body, whatever its content type (the original's clients do not always set one);
/// malformed JSON, wrong types and oversize bodies are answered with a JSON 4xx.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge
            } else {
                AppError::BadRequest(format!("Cannot read the request body: {e}"))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::BadRequest(format!("Invalid JSON: {e}")))
    }
}

/// Path parameters, like axum's `Path`, but a bad one (invalid percent-encoding, not UTF-8) is
/// answered with a JSON 400 instead of plain text.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(e) => Err(AppError::rejection(e.status(), e.body_text())),
        }
    }
}

/// A form body, like axum's `Form`, but a wrong content type, an oversize or malformed body is
/// answered with a JSON 4xx instead of plain text.
#[derive(Debug)]
pub struct FormBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for FormBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(value)) => Ok(FormBody(value)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(AppError::TooLarge),
            Err(e) => Err(AppError::rejection(e.status(), e.body_text())),
        }
    }
}

fn parse_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| AppError::BadRequest(format!("Invalid {what} id: {raw:?}")))
}

/// Go's zero time (`0001-01-01T00:00:00Z`) means "not set", as in the original.
fn set_time(t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| t.year() > 1)
}

/// Milliseconds are what the store keeps.
fn now() -> DateTime<Utc> {
    crate::store::from_millis(Utc::now().timestamp_millis())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountInput {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    is_migrating: bool,
    #[serde(default)]
    shard: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct NoteInput {
    #[serde(default)]
    id: Option<Uuid>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
}

impl AccountInput {
    /// The account with id `id`, validated. `isMigrating` and `shard` are accepted for the
    /// original clients' sake and ignored: placement belongs to `notely move`.
    fn into_account(self, id: Uuid) -> ApiResult<Account> {
        let _ = (self.is_migrating, self.shard);
        Ok(Account::new(id, valid_name(self.name)?))
    }
}

fn valid_name(name: Option<String>) -> ApiResult<String> {
    let name = name.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(AppError::BadRequest("Account name is required".into()));
    }
    if name.chars().count() > MAX_NAME {
        return Err(AppError::BadRequest(format!(
            "Account name is longer than {MAX_NAME} characters"
        )));
    }
    Ok(name)
}

fn valid_content(content: Option<String>) -> ApiResult<String> {
    let content = content.unwrap_or_default();
    if content.is_empty() {
        return Err(AppError::BadRequest("Note content is required".into()));
    }
    if content.chars().count() > MAX_CONTENT {
        return Err(AppError::BadRequest(format!(
            "Note content is longer than {MAX_CONTENT} characters"
        )));
    }
    Ok(content)
}

async fn account(state: &AppState, raw: &str) -> ApiResult<Account> {
    let id = parse_id(raw, "account")?;
    state
        .control
        .read(move |c| accounts::get(c, id))
        .await?
        .ok_or(AppError::NotFound("Account not found"))
}

/// 200 when every store answers; 503 naming the stores that do not, or that reported damage
/// (to a request, or to this check, which reads each one's schema).
async fn healthz(State(state): State<AppState>) -> Response {
    let mut pools: Vec<_> = state
        .notes
        .engine()
        .locations()
        .iter()
        .map(|l| Arc::clone(&l.pool))
        .collect();
    pools.push(Arc::clone(state.control.pool()));
    let mut failed = Vec::new();
    for pool in pools {
        let path = pool.path().to_path_buf();
        let probe = tokio::task::spawn_blocking(move || {
            pool.with_reader(|c| {
                c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
                    r.get::<_, i64>(0)
                })
            })
        })
        .await;
        match probe {
            Ok(Ok(_)) => {}
            Ok(Err(source)) => {
                let error = StoreError::Sqlite {
                    path: path.clone(),
                    source,
                };
                match Damaged::of(&error) {
                    Some(damaged) => damaged.report(&state.telemetry),
                    None => {
                        tracing::warn!("health check failed: {error}");
                        failed.push(format!("{}: {error}", Damaged::file_name(&path)));
                    }
                }
            }
            Err(e) => failed.push(format!("{}: {e}", Damaged::file_name(&path))),
        }
    }
    let damaged = state.telemetry.damaged_stores();
    failed.extend(
        damaged
            .iter()
            .map(|(path, message)| format!("{} is damaged ({message})", Damaged::file_name(path))),
    );
    if failed.is_empty() {
        return Json(serde_json::json!({"status": "ok", "timestamp": Utc::now()})).into_response();
    }
    let damaged: Vec<String> = damaged.keys().map(|p| Damaged::file_name(p)).collect();
    let hint = if damaged.is_empty() {
        ""
    } else {
        "; restore damaged databases from a backup (`notely migrate restore`, after stopping notely)"
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({
            "status": "unavailable",
            "error": format!("{}{hint}", failed.join("; ")),
            "damaged": damaged,
            "timestamp": Utc::now(),
        })),
    )
        .into_response()
}

async fn list_accounts(State(state): State<AppState>) -> ApiResult<Json<Vec<Account>>> {
    Ok(Json(state.control.read(accounts::list).await?))
}

async fn get_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Account>> {
    Ok(Json(account(&state, &id).await?))
}

async fn create_account(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<AccountInput>,
) -> ApiResult<(StatusCode, Json<Account>)> {
    let id = input
        .id
        .filter(|id| !id.is_nil())
        .unwrap_or_else(Uuid::new_v4);
    let account = input.into_account(id)?;
    match state
        .control
        .write(move |c| accounts::create(c, &account, notely_migrations::NOTES))
        .await?
    {
        Some(stored) => Ok((StatusCode::CREATED, Json(stored))),
        None => Err(AppError::Conflict("An account with this id exists")),
    }
}

async fn update_account(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<AccountInput>,
) -> ApiResult<Json<Account>> {
    let account = input.into_account(parse_id(&id, "account")?)?;
    state
        .control
        .write(move |c| accounts::rename(c, account.id, &account.name))
        .await?
        .map(Json)
        .ok_or(NO_ACCOUNT)
}

const NO_ACCOUNT: AppError = AppError::NotFound("Account not found");
const NO_NOTE: AppError = AppError::NotFound("Note not found");

async fn list_notes(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
) -> ApiResult<Json<Vec<Uuid>>> {
    let account = parse_id(&account_id, "account")?;
    state
        .notes
        .list(&state.control, account)
        .await?
        .map(Json)
        .ok_or(NO_ACCOUNT)
}

async fn get_note(
    State(state): State<AppState>,
    Path((account_id, note_id)): Path<(String, String)>,
) -> ApiResult<Json<Note>> {
    let account = parse_id(&account_id, "account")?;
    let note = parse_id(&note_id, "note")?;
    state
        .notes
        .get(&state.control, account, note)
        .await?
        .ok_or(NO_ACCOUNT)?
        .map(Json)
        .ok_or(NO_NOTE)
}

async fn create_note(
    State(state): State<AppState>,
    Path(account_id): Path<String>,
    JsonBody(input): JsonBody<NoteInput>,
) -> ApiResult<(StatusCode, Json<Note>)> {
    let account = parse_id(&account_id, "account")?;
    let content = valid_content(input.content)?;
    let id = input
        .id
        .filter(|id| !id.is_nil())
        .unwrap_or_else(Uuid::new_v4);
    let now = now();
    let make = move |a: &Account| Note {
        id,
        creator: a.id,
        created_at: now,
        updated_at: now,
        content,
    };
    match state
        .notes
        .create(&state.control, account, make)
        .await?
        .ok_or(NO_ACCOUNT)?
    {
        Some(note) => Ok((StatusCode::CREATED, Json(note))),
        None => Err(AppError::Conflict("A note with this id exists")),
    }
}

/// Last write wins by `updatedAt`: an older update never overwrites a newer one; the answer
/// is the note as stored.
async fn update_note(
    State(state): State<AppState>,
    Path((account_id, note_id)): Path<(String, String)>,
    JsonBody(input): JsonBody<NoteInput>,
) -> ApiResult<Json<Note>> {
    let account = parse_id(&account_id, "account")?;
    let note = parse_id(&note_id, "note")?;
    let content = valid_content(input.content)?;
    // Without a client time the proxy stamps the write under the lock, strictly newer than
    // the stored note (`proxy::server_time`).
    let updated_at =
        set_time(input.updated_at).map(|t| crate::store::from_millis(t.timestamp_millis()));
    state
        .notes
        .update(&state.control, account, note, content, updated_at)
        .await?
        .ok_or(NO_ACCOUNT)?
        .map(Json)
        .ok_or(NO_NOTE)
}

async fn delete_note(
    State(state): State<AppState>,
    Path((account_id, note_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let account = parse_id(&account_id, "account")?;
    let note = parse_id(&note_id, "note")?;
    state
        .notes
        .delete(&state.control, account, note)
        .await?
        .ok_or(NO_ACCOUNT)?;
    Ok(StatusCode::NO_CONTENT)
}

fn local_origin(origin: &str) -> bool {
    ["http://localhost:", "http://127.0.0.1:"]
        .iter()
        .any(|prefix| {
            origin
                .strip_prefix(prefix)
                .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        })
        || origin == "http://localhost"
        || origin == "http://127.0.0.1"
}

/// Records every routed request in the telemetry, by route template.
async fn track(
    State(state): State<AppState>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    let started = std::time::Instant::now();
    let res = next.run(req).await;
    if let Some(damaged) = res.extensions().get::<Damaged>() {
        damaged.report(&state.telemetry);
    }
    state.telemetry.api(
        method.as_str(),
        matched.as_ref().map_or("(unmatched)", |m| m.as_str()),
        started.elapsed(),
        res.status().is_server_error(),
    );
    res
}

/// The API's router (tests call it directly, without a server).
pub fn app(state: AppState) -> Router {
    let extra = state.cors_origins.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            origin
                .to_str()
                .is_ok_and(|o| local_origin(o) || extra.iter().any(|e| e == o))
        }))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::CONTENT_TYPE]);
    let admin = crate::admin::router(state.admin.clone());
    Router::new()
        .route("/healthz", get(healthz))
        .route("/accounts", get(list_accounts).post(create_account))
        .route("/accounts/{id}", get(get_account).put(update_account))
        .route("/accounts/{id}/notes", get(list_notes).post(create_note))
        .route(
            "/accounts/{id}/notes/{note}",
            get(get_note).put(update_note).delete(delete_note),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
        .merge(admin)
        .fallback(|| async { AppError::NotFound("Not found") })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors)
}
