//! The REST API, compatible with the original Notely's contract: JSON everywhere, errors as
//! `{"error": ".."}`, UUID ids, RFC 3339 times.

use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::http::admin::Admin;
use crate::http::error::{ApiResult, AppError, Damaged, JsonBody, Path};
use crate::proxy::NoteProxy;
use crate::store::{Account, Db, Note, StoreError, accounts};
use crate::telemetry::Telemetry;

/// Longest account name, in characters.
pub const MAX_NAME: usize = 100;
/// Longest note content, in characters.
pub const MAX_CONTENT: usize = 10_000;

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
    pub admin: Admin,
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
    state.notes.list(account).await?.map(Json).ok_or(NO_ACCOUNT)
}

async fn get_note(
    State(state): State<AppState>,
    Path((account_id, note_id)): Path<(String, String)>,
) -> ApiResult<Json<Note>> {
    let account = parse_id(&account_id, "account")?;
    let note = parse_id(&note_id, "note")?;
    state
        .notes
        .get(account, note)
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
    let make = move |creator: Uuid| Note {
        id,
        creator,
        created_at: now,
        updated_at: now,
        content,
    };
    match state.notes.create(account, make).await?.ok_or(NO_ACCOUNT)? {
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
        .update(account, note, content, updated_at)
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
    state.notes.delete(account, note).await?.ok_or(NO_ACCOUNT)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records every routed request in the telemetry, by route template, and reports a damaged
/// store an answer names. A service of its own rather than axum's `from_fn`, which boxes each
/// request's future and clones the rest of the stack per request (README's "API benchmark").
#[derive(Debug, Clone)]
struct Track<S> {
    inner: S,
    telemetry: Arc<Telemetry>,
}

#[derive(Debug, Clone)]
struct TrackLayer(Arc<Telemetry>);

impl<S> tower_layer::Layer<S> for TrackLayer {
    type Service = Track<S>;
    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            telemetry: Arc::clone(&self.0),
        }
    }
}

impl<S> tower_service::Service<Request> for Track<S>
where
    S: tower_service::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let route = req.extensions().get::<MatchedPath>().cloned();
        Tracked {
            inner: self.inner.call(req),
            telemetry: Arc::clone(&self.telemetry),
            method,
            route,
            started,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being answered, recorded once answered.
    struct Tracked<F> {
        #[pin]
        inner: F,
        telemetry: Arc<Telemetry>,
        method: axum::http::Method,
        route: Option<MatchedPath>,
        started: std::time::Instant,
    }
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.inner.poll(cx));
        if let Ok(res) = &answer {
            if let Some(damaged) = res.extensions().get::<Damaged>() {
                damaged.report(this.telemetry);
            }
            this.telemetry.api(
                this.method.as_str(),
                this.route.as_ref().map_or("(unmatched)", |m| m.as_str()),
                this.started.elapsed(),
                res.status().is_server_error(),
            );
        }
        std::task::Poll::Ready(answer)
    }
}

/// The API's routes, each request recorded in the telemetry.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/accounts", get(list_accounts).post(create_account))
        .route("/accounts/{id}", get(get_account).put(update_account))
        .route("/accounts/{id}/notes", get(list_notes).post(create_note))
        .route(
            "/accounts/{id}/notes/{note}",
            get(get_note).put(update_note).delete(delete_note),
        )
        .route_layer(TrackLayer(Arc::clone(&state.telemetry)))
        .with_state(state)
}
