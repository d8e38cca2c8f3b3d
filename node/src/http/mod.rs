//! The HTTP server for people, beside gRPC: a JSON read API under `/api/`, the gate display
//! board (`/board`, live through server-sent events), the public report page a phone opens
//! (`/r/{id}`, and `/T/{token}` from a report's QR code) and the QR code images.
//!
//! It owns no state: every answer is built from the node's live ledger through
//! [`crate::views`], the same code the gRPC API answers with, so the two never disagree. It
//! never writes to the ledger and takes no token. Pages, styles and scripts are embedded in
//! the binary and load nothing from elsewhere; every piece of ledger data placed into HTML is
//! escaped, and the pages forbid inline scripts by their content security policy besides.
//!
//! - `api`: the JSON routes and their errors.
//! - `json`: report, trace, heads and forks as JSON (times as UTC ms and CST text).
//! - `html`: escaping, the page frame, and the Chinese labels of statuses and units.
//! - `pages`: the report page, the token page, error pages and the QR images.
//! - `board`: the gate display board and its event stream.

mod api;
mod board;
mod html;
mod json;
mod pages;

use std::sync::Arc;

use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::error::NodeError;
use crate::node::Node;

/// Longest report id accepted in a path: a market id (32), a dash and a sequence number.
pub const MAX_ID_CHARS: usize = 64;
/// Most reports one list answer holds.
pub const MAX_LIST: usize = 1000;
/// Reports in a list when the request names no limit.
pub const DEFAULT_LIST: usize = 50;

/// What every handler needs.
#[derive(Clone)]
struct App {
    node: Arc<Node>,
    /// Base of the links put in QR codes, e.g. `http://127.0.0.1:8101`.
    public_base: String,
    /// Turns true when the node stops; live streams end then.
    shutdown: watch::Receiver<bool>,
}

/// The routes over `node`. `public_base` is the scheme and authority that QR codes link to
/// (e.g. `http://127.0.0.1:8101`); live event streams end when `shutdown` turns true.
pub fn router(node: Arc<Node>, public_base: String, shutdown: watch::Receiver<bool>) -> Router {
    let app = App {
        node,
        public_base,
        shutdown,
    };
    Router::new()
        .route("/", get(board::page))
        .route("/healthz", get(healthz))
        .route("/api/reports", get(api::reports))
        .route("/api/reports/{id}", get(api::report))
        .route("/api/heads", get(api::heads))
        .route("/api/forks", get(api::forks))
        .route("/api/status", get(api::status))
        .route("/board", get(board::page))
        .route("/board/events", get(board::events))
        .route("/r/{id}", get(pages::report))
        .route("/r/{id}/qr.png", get(pages::qr_png))
        .route("/r/{id}/qr.svg", get(pages::qr_svg))
        .route("/T/{token}", get(pages::token))
        .route("/t/{token}", get(pages::token))
        .route("/assets/page.css", get(assets::page_css))
        .route("/assets/board.css", get(assets::board_css))
        .route("/assets/board.js", get(assets::board_js))
        .fallback(fallback)
        .with_state(app)
}

/// Serves [`router`] on `listener` until `shutdown` turns true. QR codes link to this
/// market's `http_addr` in the trust list, or to the listener's own address when the trust
/// list gives none.
pub fn serve(
    node: Arc<Node>,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let advertised = node
        .ledger()
        .membership()
        .market(node.market())
        .map(|m| m.http_addr.trim().to_string())
        .unwrap_or_default();
    let public_base = match (advertised.is_empty(), listener.local_addr()) {
        (false, _) => advertised,
        (true, Ok(addr)) => format!("http://{addr}"),
        (true, Err(_)) => String::new(),
    };
    let market = node.market().to_string();
    let app = router(node, public_base.clone(), shutdown.clone());
    tokio::spawn(async move {
        info!(market = %market, qr_links = %public_base, "HTTP server started");
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|s| *s).await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(market = %market, error = %e, "HTTP server failed");
        }
    })
}

async fn healthz(axum::extract::State(app): axum::extract::State<App>) -> Response {
    Json(serde_json::json!({ "market": app.node.market(), "ok": true })).into_response()
}

/// Unknown paths: a JSON error under `/api/`, a page elsewhere.
async fn fallback(uri: Uri) -> Response {
    debug!(path = %uri.path(), "no such route");
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        HttpError::NotFound(format!("no API route {}", uri.path())).json()
    } else {
        pages::not_found_page("此页面不存在", "Page not found", "请检查网址。")
    }
}

/// Why a request failed, with the HTTP status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HttpError {
    /// 400: malformed id, token or query.
    BadRequest(String),
    /// 404: nothing by that id here.
    NotFound(String),
    /// 503: the node is stopping or halted; try again.
    Unavailable(String),
    /// 500: our own storage failed.
    Internal(String),
}

impl HttpError {
    fn status(&self) -> StatusCode {
        match self {
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::NotFound(_) => StatusCode::NOT_FOUND,
            HttpError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            HttpError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            HttpError::BadRequest(_) => "bad_request",
            HttpError::NotFound(_) => "not_found",
            HttpError::Unavailable(_) => "unavailable",
            HttpError::Internal(_) => "internal",
        }
    }

    fn message(&self) -> &str {
        match self {
            HttpError::BadRequest(m)
            | HttpError::NotFound(m)
            | HttpError::Unavailable(m)
            | HttpError::Internal(m) => m,
        }
    }

    /// As `{"error": "...", "code": "..."}` with the matching status.
    fn json(&self) -> Response {
        if matches!(self, HttpError::Internal(_)) {
            warn!(error = %self.message(), "HTTP request failed on our side");
        }
        let body = serde_json::json!({ "error": self.message(), "code": self.code() });
        let mut response = (self.status(), Json(body)).into_response();
        no_store(&mut response);
        response
    }
}

impl From<NodeError> for HttpError {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::BadInput { .. } => HttpError::BadRequest(message),
            NodeError::NotFound(_) => HttpError::NotFound(message),
            NodeError::Storage(_) => HttpError::Internal(message),
            _ => HttpError::Unavailable(message),
        }
    }
}

/// Checks a report id taken from a path before anything looks it up.
fn check_id(id: &str) -> Result<(), HttpError> {
    if id.len() > MAX_ID_CHARS {
        return Err(HttpError::BadRequest(format!(
            "a report id has at most {MAX_ID_CHARS} characters"
        )));
    }
    huren_proto::ids::parse_report_id(id)
        .map(|_| ())
        .map_err(HttpError::BadRequest)
}

fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The embedded styles and script, served with their types.
mod assets {
    use axum::http::header;
    use axum::response::IntoResponse;

    const PAGE_CSS: &str = include_str!("assets/page.css");
    const BOARD_CSS: &str = include_str!("assets/board.css");
    const BOARD_JS: &str = include_str!("assets/board.js");

    fn asset(kind: &'static str, body: &'static str) -> impl IntoResponse {
        (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
    }

    pub(super) async fn page_css() -> impl IntoResponse {
        asset("text/css; charset=utf-8", PAGE_CSS)
    }

    pub(super) async fn board_css() -> impl IntoResponse {
        asset("text/css; charset=utf-8", BOARD_CSS)
    }

    pub(super) async fn board_js() -> impl IntoResponse {
        asset("text/javascript; charset=utf-8", BOARD_JS)
    }
}
