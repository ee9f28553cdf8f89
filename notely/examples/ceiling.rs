//! The HTTP ceiling for the API benchmark: the smallest axum server answering a constant JSON
//! body, on the same runtime settings as `notely serve`. `cargo run --release -p notely
//! --example ceiling -- PORT`.

use axum::Router;
use axum::routing::{get, put};

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8090);
    let body = r#"{"id":"00000000-0000-0000-0000-000000000001","content":"constant"}"#;
    let app = Router::new().route(
        "/{*rest}",
        get(move || async move { body }).merge(put(move || async move { body })),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind");
    println!(
        "ceiling: listening on http://{}",
        listener.local_addr().expect("address")
    );
    axum::serve(listener, app).await.expect("serve");
}
