//! Operator endpoints under `/admin/api`, behind the operator token: data moves (list, start,
//! cancel). The token comes from `NOTELY_ADMIN_TOKEN`, or from `admin.token` in the data
//! directory, generated (and printed once) on first start. Requests carry it as
//! `Authorization: Bearer <token>`; it is compared in constant time and never logged.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use strata::online::{MoveError, MoveRecord, MoveStatus};
use uuid::Uuid;

use crate::api::{AppError, AppState, JsonBody};
use crate::moves::{self, Selection};

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

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if state
        .admin
        .as_ref()
        .is_some_and(|t| t.matches(given.trim()))
    {
        next.run(req).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({ "error": "A valid operator token is required" })),
        )
            .into_response()
    }
}

fn refusal(e: MoveError) -> AppError {
    match e {
        MoveError::Invalid(m) => AppError::BadRequest(m),
        MoveError::UnknownLocation { .. } => AppError::BadRequest(e.to_string()),
        MoveError::NoSuchMove(_) => AppError::NotFound("No such move"),
        other => AppError::Internal(other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, MoveError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(refusal)
}

async fn list_moves(State(state): State<AppState>) -> Result<Json<Vec<MoveStatus>>, AppError> {
    let engine = Arc::clone(state.notes.engine());
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
    State(state): State<AppState>,
    JsonBody(input): JsonBody<StartMove>,
) -> Result<Response, AppError> {
    let engine = Arc::clone(state.notes.engine());
    let to = match (input.to, input.shards) {
        (Some(to), None) => to,
        (None, Some(n)) if input.accounts.is_none() && input.fraction.is_none() && !input.all => {
            let dir = state.data_dir.clone();
            let started = tokio::task::spawn_blocking(move || {
                moves::start_shards(&engine, &dir, &crate::db::Settings::default(), n)
            })
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| AppError::BadRequest(format!("{e:#}")))?;
            return Ok(started_response(&state, started));
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
    Ok(started_response(&state, started))
}

fn started_response(state: &AppState, started: Option<MoveRecord>) -> Response {
    state.telemetry.log(format!(
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
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<MoveRecord>, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("Invalid move id: {id}")))?;
    let engine = Arc::clone(state.notes.engine());
    let record = blocking(move || moves::cancel(&engine, Some(id))).await?;
    state
        .telemetry
        .log(format!("INFO admin: cancelling move {}", record.id));
    Ok(Json(record))
}

/// The operator routes, behind the token.
pub fn routes(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/admin/api/moves", get(list_moves).post(start_move))
        .route("/admin/api/moves/{id}/cancel", post(cancel_move))
        .route_layer(axum::middleware::from_fn_with_state(state, require_token))
}
