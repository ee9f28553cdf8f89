//! `POST /deploy` and `GET /deploy`, the original Notely's deploy routes (its web client's
//! "Trigger Deploy"), CORS like the rest of the API. The public route deploys this server's
//! own binary, never another: choosing one would let anyone run a file. The operator's
//! `POST /admin/api/deploy` may choose the binary and the overlap (see `admin`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::deploy::{self, DeployError, DeployState};
use crate::http::admin::Admin;
use crate::http::error::AppError;

/// The public deploy routes.
pub fn router(admin: Admin) -> Router {
    Router::new()
        .route("/deploy", get(show).post(start))
        .with_state(admin)
}

/// The newest deploy on this data directory, as either process of a deploy sees it (phase
/// `NONE` when there was none).
async fn show(State(admin): State<Admin>) -> Result<Json<DeployState>, Response> {
    current(&admin).await.map(|s| Json(s.public()))
}

/// [`deploy::status`] off the async threads.
pub async fn current(admin: &Admin) -> Result<DeployState, Response> {
    let dir = admin.data_dir().to_path_buf();
    match tokio::task::spawn_blocking(move || deploy::status(&dir)).await {
        Ok(Ok(state)) => Ok(state),
        Ok(Err(e)) => Err(e.into_response()),
        Err(e) => Err(AppError::Internal(e.to_string()).into_response()),
    }
}

/// Deploys this server's own binary; the body, if any, is ignored. The answer shows the
/// deploy as `GET /deploy` does (no paths, no log).
async fn start(State(admin): State<Admin>) -> Response {
    begin(&admin, deploy::Request::default(), "the API", true).await
}

/// Starts a deploy: `200 {"status": "deployment started", "timestamp": .., "id": ..,
/// "deploy": {..}}`, 409 while one runs, 503 when it cannot start.
pub async fn begin(admin: &Admin, request: deploy::Request, by: &str, public: bool) -> Response {
    let Some(deployer) = admin.deployer() else {
        return DeployError::Unavailable(
            "this process cannot deploy (only a server started by `notely serve` can)".into(),
        )
        .into_response();
    };
    match deployer.start(request).await {
        Ok(state) => {
            tracing::info!("deploy {} started by {by}", state.id_or_dash());
            Json(serde_json::json!({
                "status": "deployment started",
                "timestamp": chrono::Utc::now(),
                "id": state.id,
                "deploy": if public { state.public() } else { state },
            }))
            .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// 409 while a deploy runs, 503 when one cannot start, 400 for a bad request; the rest is
/// ours (500, logged).
impl IntoResponse for DeployError {
    fn into_response(self) -> Response {
        let status = match &self {
            DeployError::Running(_) => StatusCode::CONFLICT,
            DeployError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            DeployError::Invalid(_) => StatusCode::BAD_REQUEST,
            DeployError::Socket { .. } | DeployError::Io { .. } => {
                return AppError::Internal(self.to_string()).into_response();
            }
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}
