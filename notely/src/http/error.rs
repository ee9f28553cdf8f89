//! Errors answered as JSON (`{"error": ".."}`), damaged databases, and extractors that reject
//! in JSON instead of axum's plain text.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::store::StoreError;
use crate::telemetry::Telemetry;

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 256 * 1024;

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

    pub fn file_name(path: &std::path::Path) -> String {
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

/// A note route's store failure is ours (500), or a damaged database (503): never the
/// client's, whatever the engine says (an unknown or unopenable location is our problem).
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match Damaged::of(&e) {
            Some(damaged) => AppError::Damaged(damaged),
            None => AppError::Internal(e.to_string()),
        }
    }
}

/// For the operator's move routes: the engine's refusals of what the operator asked are the
/// operator's mistakes (400, 404); the rest is ours.
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

pub type ApiResult<T> = Result<T, AppError>;

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
