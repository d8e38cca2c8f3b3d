//! The HTTP server for people: JSON reads, the gate display board and the public report page.

use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::node::Node;

/// The routes.
pub fn router(node: Arc<Node>) -> Router {
    Router::new().route(
        "/healthz",
        get(move || {
            let market = node.market().to_string();
            async move { Json(serde_json::json!({ "market": market, "ok": true })) }
        }),
    )
}

/// Serves [`router`] on `listener` until `shutdown` turns true.
pub fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let app = router(node);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .await;
    })
}
