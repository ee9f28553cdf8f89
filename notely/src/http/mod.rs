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
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
        .layer(CorsWhereItApplies(cors))
}

/// tower-http's CORS for the requests it concerns (those with an `Origin`, and every
/// `OPTIONS`, which it answers as a preflight); the others, most API calls, skip it and get
/// the one header it would have added, `Vary: Origin`. Its service costs every request a few
/// allocations and a boxed predicate call (README's "API benchmark").
#[derive(Debug, Clone)]
struct CorsWhereItApplies(CorsLayer);

impl<S: Clone> tower_layer::Layer<S> for CorsWhereItApplies {
    type Service = CorsOrNot<S>;
    fn layer(&self, inner: S) -> CorsOrNot<S> {
        CorsOrNot {
            cors: self.0.layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Debug, Clone)]
struct CorsOrNot<S> {
    cors: tower_http::cors::Cors<S>,
    plain: S,
}

type Request = axum::http::Request<axum::body::Body>;
type Response = axum::http::Response<axum::body::Body>;

impl<S> tower_service::Service<Request> for CorsOrNot<S>
where
    S: tower_service::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Either<tower_http::cors::ResponseFuture<S::Future>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Either may take the request.
        std::task::ready!(self.plain.poll_ready(cx))?;
        self.cors.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        if req.method() == Method::OPTIONS || req.headers().contains_key(header::ORIGIN) {
            Either::Cors {
                inner: self.cors.call(req),
            }
        } else {
            Either::Plain {
                inner: self.plain.call(req),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of one of the two ways.
    #[project = EitherProj]
    enum Either<C, P> {
        Cors { #[pin] inner: C },
        Plain { #[pin] inner: P },
    }
}

impl<C, P, E> Future for Either<C, P>
where
    C: Future<Output = Result<Response, E>>,
    P: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EitherProj::Cors { inner } => inner.poll(cx),
            EitherProj::Plain { inner } => inner.poll(cx).map_ok(|mut res| {
                res.headers_mut()
                    .append(header::VARY, HeaderValue::from_static("origin"));
                res
            }),
        }
    }
}
