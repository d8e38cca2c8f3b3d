//! The gate display board: a page for the big screen at the market gate that scrolls the
//! latest results (time, market, stall, product, items, pass or suspected fail), and the
//! server-sent event stream that brings each newly committed report to it without a reload,
//! whichever market issued it. The page's script reconnects by itself when the node restarts
//! and then fetches the latest list again, so nothing committed while it was away is missed.
//!
//! The stream subscribes to the node's commits before it answers, so a board that fetches the
//! list once the stream is open cannot fall into a gap between the two. A board that falls
//! behind the commit channel is told to fetch the list again rather than being sent a partial
//! picture. Streams end when the node stops, so that stopping is never held up by a board.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{stream, StreamExt};
use huren_proto::ids;
use huren_proto::pb::event::Kind;
use serde::Deserialize;
use serde_json::json;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;
use tracing::debug;

use super::html::{self, esc};
use super::json::{self as j, Names};
use super::{App, HttpError};
use crate::node::{Committed, Node};
use crate::views;

const BOARD: &str = include_str!("assets/board.html");

/// How soon a disconnected board tries again, in milliseconds (sent as the SSE `retry`).
pub const RETRY_MS: u64 = 1000;
/// A commit touching more reports than this tells boards to fetch the list again instead of
/// streaming each one (a node catching up after a long absence).
pub const MAX_EVENTS_PER_COMMIT: usize = 100;

/// `?market=` of the board and its stream: only that market's reports.
#[derive(Debug, Default, Deserialize)]
pub(super) struct BoardQuery {
    market: Option<String>,
}

fn market_filter(
    query: Result<Query<BoardQuery>, QueryRejection>,
) -> Result<Option<String>, HttpError> {
    let Query(query) = query.map_err(|e| HttpError::BadRequest(e.body_text()))?;
    match query.market.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(m) if ids::is_market_id(m) => Ok(Some(m.to_string())),
        Some(_) => Err(HttpError::BadRequest("market: not a market id".into())),
    }
}

/// `GET /board` (and `/`): the board page. Its script fetches the list and opens the stream.
pub(super) async fn page(State(app): State<App>) -> Response {
    let (zh, latin) = {
        let names = Names::of(&app.node);
        let (zh, latin) = names.market(app.node.market());
        (zh.to_string(), latin.to_string())
    };
    let body = html::fill(
        BOARD,
        &[
            ("market_zh", &esc(&zh)),
            ("market_latin", &esc(&latin)),
            ("market_id", &esc(app.node.market())),
        ],
    );
    html::respond(StatusCode::OK, body)
}

/// `GET /board/events?market=`: server-sent events. `hello` first (with the reconnection
/// delay), then `report` with a report's JSON view for each newly committed report, `update`
/// when a report is revoked or its lot disposed of, and `resync` when the board should fetch
/// the list again.
pub(super) async fn events(
    State(app): State<App>,
    query: Result<Query<BoardQuery>, QueryRejection>,
) -> Response {
    let market = match market_filter(query) {
        Ok(m) => m,
        Err(e) => return e.json(),
    };
    // Subscribe before answering: whatever commits after this reaches the board.
    let commits = BroadcastStream::new(app.node.subscribe());
    let node = Arc::clone(&app.node);
    debug!(market = %node.market(), filter = ?market, "board connected");
    let hello = Event::default()
        .event("hello")
        .retry(Duration::from_millis(RETRY_MS))
        .data(json!({ "market": node.market() }).to_string());
    let live =
        commits.flat_map(move |commit| stream::iter(events_of(&node, commit, market.as_deref())));
    let mut stop = app.shutdown.clone();
    let stream = stream::once(async move { hello })
        .chain(live)
        .map(Ok::<_, Infallible>)
        .take_until(async move {
            let _ = stop.wait_for(|s| *s).await;
        });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    super::no_store(&mut response);
    response
}

/// The events one commit means for a board showing `market` (or every market).
fn events_of(
    node: &Node,
    commit: Result<Arc<Committed>, BroadcastStreamRecvError>,
    market: Option<&str>,
) -> Vec<Event> {
    let resync = || vec![Event::default().event("resync").data("{}")];
    let commit = match commit {
        Ok(c) => c,
        Err(BroadcastStreamRecvError::Lagged(missed)) => {
            debug!(market = %node.market(), missed, "board fell behind; asking it to resync");
            return resync();
        }
    };
    let touched: Vec<(&'static str, String)> = commit
        .entries
        .iter()
        .filter_map(|v| {
            let kind = v.entry.event.as_ref()?.kind.as_ref()?;
            match kind {
                Kind::ReportIssued(_) => {
                    Some(("report", ids::report_id(&v.entry.log, v.entry.seq)))
                }
                Kind::ReportRevoked(r) => Some(("update", r.report_id.clone())),
                Kind::DisposalRecorded(d) => Some(("update", d.report_id.clone())),
                _ => None,
            }
        })
        .filter(|(_, id)| {
            market.is_none_or(|m| ids::parse_report_id(id).is_ok_and(|(issuer, _)| issuer == m))
        })
        .collect();
    if touched.len() > MAX_EVENTS_PER_COMMIT {
        return resync();
    }
    if touched.is_empty() {
        return Vec::new();
    }
    let names = Names::of(node);
    let now = node.clock().now_ms();
    touched
        .into_iter()
        .filter_map(|(kind, id)| {
            // A revocation of a report this node does not hold has nothing to show.
            let view = views::report(node, &id, now).ok()?;
            Some(
                Event::default()
                    .event(kind)
                    .data(j::report_view(&view, &names).to_string()),
            )
        })
        .collect()
}
