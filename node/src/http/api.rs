//! The JSON read API: reports newest first, one report with its trace, heads, forks and the
//! node's status. Reads only, open to everyone, like the gRPC reads. A malformed id or query
//! is a 400 and an unknown id a 404, both as `{"error": "...", "code": "..."}`.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::json::{self as j, Names};
use super::{check_id, no_store, App, HttpError, DEFAULT_LIST, MAX_LIST};
use crate::views;

/// `?limit=&market=` of the report list, read as text so that errors can say what is wrong.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ListQuery {
    limit: Option<String>,
    market: Option<String>,
}

/// The list's limit and market filter, checked.
pub(super) fn list_params(
    app: &App,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<(usize, Option<String>), HttpError> {
    let Query(query) = query.map_err(|e| HttpError::BadRequest(e.body_text()))?;
    let limit = match query.limit.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_LIST,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST).contains(&n) => n,
            _ => {
                return Err(HttpError::BadRequest(format!(
                    "limit: {text:?} is not a number from 1 to {MAX_LIST}"
                )))
            }
        },
    };
    let market = match query.market.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(m) if !huren_proto::ids::is_market_id(m) => {
            return Err(HttpError::BadRequest(format!(
                "market: {:?} is not a market id",
                m.chars().take(40).collect::<String>()
            )))
        }
        Some(m) => {
            if app.node.ledger().membership().market(m).is_none() {
                return Err(HttpError::NotFound(format!(
                    "market {m} is not a member of this network"
                )));
            }
            Some(m.to_string())
        }
    };
    Ok((limit, market))
}

/// The newest reports as JSON views, newest first.
pub(super) fn newest(
    app: &App,
    limit: usize,
    market: Option<&str>,
) -> Result<Vec<Value>, HttpError> {
    let ids: Vec<String> = app
        .node
        .ledger()
        .newest_reports(market)
        .take(limit)
        .map(String::from)
        .collect();
    let now = app.node.clock().now_ms();
    let names = Names::of(&app.node);
    ids.iter()
        .map(|id| {
            views::report(&app.node, id, now)
                .map(|v| j::report_view(&v, &names))
                .map_err(HttpError::from)
        })
        .collect()
}

fn ok(value: Value) -> Response {
    let mut response = Json(value).into_response();
    no_store(&mut response);
    response
}

/// `GET /api/reports?limit=&market=`: newest first; limit 1 to 1000 (default 50).
pub(super) async fn reports(
    State(app): State<App>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let answer = list_params(&app, query).and_then(|(limit, market)| {
        let reports = newest(&app, limit, market.as_deref())?;
        Ok(json!({
            "market": market,
            "limit": limit,
            "count": reports.len(),
            "reports": reports,
        }))
    });
    match answer {
        Ok(value) => ok(value),
        Err(e) => e.json(),
    }
}

/// `GET /api/reports/{id}`: the report with its status, intakes and recall markets.
pub(super) async fn report(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Response {
    let answer = id
        .map_err(|e| HttpError::BadRequest(e.body_text()))
        .and_then(|Path(id)| {
            check_id(&id)?;
            let trace = views::trace(&app.node, &id, app.node.clock().now_ms())?;
            Ok(j::trace(&trace, &Names::of(&app.node)))
        });
    match answer {
        Ok(value) => ok(value),
        Err(e) => e.json(),
    }
}

/// `GET /api/heads`: every log's durable head.
pub(super) async fn heads(State(app): State<App>) -> Response {
    let heads = crate::service::heads(&app.node);
    ok(json!({ "heads": heads.iter().map(j::head).collect::<Vec<_>>() }))
}

/// `GET /api/forks`: recorded fork evidence.
pub(super) async fn forks(State(app): State<App>) -> Response {
    let forks = app.node.ledger().forks().to_vec();
    ok(json!({ "forks": forks.iter().map(j::fork).collect::<Vec<_>>() }))
}

/// `GET /api/status`: who this node is, its heads and health.
pub(super) async fn status(State(app): State<App>) -> Response {
    let node = &app.node;
    let (name_zh, name_latin, reports, forks, rules_version) = {
        let ledger = node.ledger();
        let me = ledger.membership().market(node.market());
        (
            me.map(|m| m.name_zh.clone()).unwrap_or_default(),
            me.map(|m| m.name_latin.clone()).unwrap_or_default(),
            ledger.report_count(),
            ledger.forks().len(),
            ledger.rules().version,
        )
    };
    let now_ms = node.clock().now_ms();
    let heads = crate::service::heads(node);
    ok(json!({
        "market": node.market(),
        "name_zh": name_zh,
        "name_latin": name_latin,
        "reports": reports,
        "forks": forks,
        "rules_version": rules_version,
        "halted": node.halted(),
        "now_ms": now_ms,
        "now_cst": j::cst_or_null(now_ms),
        "version": env!("CARGO_PKG_VERSION"),
        "heads": heads.iter().map(j::head).collect::<Vec<_>>(),
    }))
}
