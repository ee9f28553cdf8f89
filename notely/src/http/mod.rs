//! Notely over HTTP: [`app`] is the whole router (the REST API of [`api`], the deploy routes
//! of [`deploy`] and the operator routes of [`admin`]), [`serve`] the accept loop that runs
//! it, [`error`] how every error is answered.

pub mod admin;
pub mod api;
pub mod deploy;
pub mod error;
pub mod serve;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use api::AppState;
use error::{AppError, MAX_BODY};

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

/// The whole router: the API and the operator routes (tests call it directly, without a
/// server).
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
    let admin = admin::router(state.admin.clone());
    let deploys = deploy::router(state.admin.clone());
    api::router(state)
        .merge(admin)
        .merge(deploys)
        .fallback(|| async { AppError::NotFound("Not found") })
        .method_not_allowed_fallback(|| async { AppError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(cors)
}
