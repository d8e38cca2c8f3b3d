//! Ledger answers as JSON for the read API and the board's event stream. Field names follow
//! the protocol's; every instant appears twice, as `<name>_ms` (UTC milliseconds) and
//! `<name>_cst` (China Standard Time text for people), with `null` text for an unknown
//! instant. Enums are their protocol names. Markets and categories carry their Chinese names
//! from the trust list and the rules in force, so a display needs no second lookup.

use std::collections::HashMap;

use huren_proto::format;
use huren_proto::pb::{self, event::Kind};
use huren_proto::time::cst;
use serde_json::{json, Value};

use crate::node::Node;

/// Display names of markets and categories, copied out of the ledger in one short lock.
pub(super) struct Names {
    markets: HashMap<String, (String, String)>,
    categories: HashMap<String, String>,
}

impl Names {
    pub(super) fn of(node: &Node) -> Self {
        let ledger = node.ledger();
        let markets = ledger
            .membership()
            .markets()
            .map(|m| (m.id.clone(), (m.name_zh.clone(), m.name_latin.clone())))
            .collect();
        let categories = ledger
            .rules()
            .categories
            .iter()
            .map(|c| (c.category.clone(), c.name_zh.clone()))
            .collect();
        Self {
            markets,
            categories,
        }
    }

    /// Chinese and Latin names of a market; the id twice when it is not a member.
    pub(super) fn market<'a>(&'a self, id: &'a str) -> (&'a str, &'a str) {
        self.markets
            .get(id)
            .map_or((id, id), |(zh, latin)| (zh.as_str(), latin.as_str()))
    }

    /// The Chinese name of a category, if the rules in force know it.
    pub(super) fn category(&self, code: &str) -> Option<&str> {
        self.categories.get(code).map(String::as_str)
    }

    fn market_json(&self, id: &str) -> Value {
        let (zh, latin) = self.market(id);
        json!({ "id": id, "name_zh": zh, "name_latin": latin })
    }
}

/// `null` for an unknown (zero) instant, else its CST text.
pub(super) fn cst_or_null(ms: i64) -> Value {
    if ms == 0 {
        Value::Null
    } else {
        Value::String(cst(ms))
    }
}

fn quantity(q: Option<&pb::Quantity>) -> Value {
    q.map_or(
        Value::Null,
        |q| json!({ "amount": q.amount, "unit": q.unit }),
    )
}

pub(super) fn result_name(result: i32) -> &'static str {
    pb::TestResult::try_from(result).map_or("TEST_RESULT_UNSPECIFIED", |r| r.as_str_name())
}

pub(super) fn status_name(status: i32) -> &'static str {
    pb::ReportStatus::try_from(status).map_or("REPORT_STATUS_UNSPECIFIED", |s| s.as_str_name())
}

fn reasons(reasons: &[pb::VerdictReason]) -> Value {
    reasons
        .iter()
        .map(|r| {
            let code =
                pb::Reason::try_from(r.code).map_or("REASON_UNSPECIFIED", |c| c.as_str_name());
            json!({ "code": code, "detail": r.detail })
        })
        .collect()
}

fn item(i: &pb::TestItem) -> Value {
    json!({
        "code": i.code,
        "name": i.name,
        "method": i.method,
        "value": i.value,
        "unit": i.unit,
        "limit": i.limit,
        "result": result_name(i.result),
    })
}

fn issued(r: &pb::ReportIssued, names: &Names) -> Value {
    json!({
        "stall_code": r.stall_code,
        "product": r.product,
        "category": r.category,
        "category_zh": names.category(&r.category),
        "origin": r.origin,
        "lot_id": r.lot_id,
        "quantity": quantity(r.quantity.as_ref()),
        "bag_code": r.bag_code,
        "sampled_at_ms": r.sampled_at_ms,
        "sampled_at_cst": cst_or_null(r.sampled_at_ms),
        "tested_at_ms": r.tested_at_ms,
        "tested_at_cst": cst_or_null(r.tested_at_ms),
        "tester": r.tester,
        "items": r.items.iter().map(item).collect::<Vec<_>>(),
        "result": result_name(r.result),
    })
}

fn intake(i: &pb::IntakeView, names: &Names) -> Value {
    json!({
        "market": names.market_json(&i.market),
        "seq": i.seq,
        "accepted": i.accepted,
        "quantity": quantity(i.quantity.as_ref()),
        "time_ms": i.time_ms,
        "time_cst": cst_or_null(i.time_ms),
        "reasons": reasons(&i.reasons),
    })
}

fn disposal(d: &pb::DisposalRecorded) -> Value {
    let method = pb::DisposalMethod::try_from(d.method)
        .map_or("DISPOSAL_METHOD_UNSPECIFIED", |m| m.as_str_name());
    json!({
        "method": method,
        "by": d.by,
        "disposed_at_ms": d.disposed_at_ms,
        "disposed_at_cst": cst_or_null(d.disposed_at_ms),
        "reported_to_regulator": d.reported_to_regulator,
        "note": d.note,
    })
}

/// A signed entry as its hash and its portable token (the token is public: it is what the
/// report's QR code carries).
fn signed_entry(s: &pb::SignedEntry) -> Value {
    json!({
        "hash": hex::encode(format::entry_hash(&s.body)),
        "token": huren_proto::token::encode(s),
    })
}

/// A report with its status, as `views::report` built it.
pub(super) fn report_view(v: &pb::ReportView, names: &Names) -> Value {
    let issuer = huren_proto::ids::parse_report_id(&v.report_id)
        .map(|(m, _)| m)
        .unwrap_or_default();
    let revoked = if v.revoked_by.is_empty() {
        Value::Null
    } else {
        json!({ "by": names.market_json(&v.revoked_by), "reason": v.revoked_reason })
    };
    json!({
        "report_id": v.report_id,
        "market": names.market_json(&issuer),
        "status": status_name(v.status),
        "report": v.report.as_ref().map_or(Value::Null, |r| issued(r, names)),
        "issued_at_ms": v.issued_at_ms,
        "issued_at_cst": cst_or_null(v.issued_at_ms),
        "valid_until_ms": v.valid_until_ms,
        "valid_until_cst": cst_or_null(v.valid_until_ms),
        "remaining": quantity(v.remaining.as_ref()),
        "drawn": quantity(v.drawn.as_ref()),
        "overdrawn": v.overdrawn,
        "revoked": revoked,
        "intakes": v.intakes.iter().map(|i| intake(i, names)).collect::<Vec<_>>(),
        "disposal": v.disposal.as_ref().map_or(Value::Null, disposal),
        "entry": v.entry.as_ref().map_or(Value::Null, signed_entry),
        "links": {
            "page": format!("/r/{}", v.report_id),
            "qr_png": format!("/r/{}/qr.png", v.report_id),
            "qr_svg": format!("/r/{}/qr.svg", v.report_id),
        },
    })
}

/// A report with its trace: the view, plus the markets that must recall its goods.
pub(super) fn trace(t: &pb::TraceResponse, names: &Names) -> Value {
    let mut value = t
        .report
        .as_ref()
        .map_or_else(|| json!({}), |v| report_view(v, names));
    value["recall_markets"] = t
        .recall_markets
        .iter()
        .map(|m| names.market_json(m))
        .collect();
    value
}

/// One log's head.
pub(super) fn head(h: &pb::Head) -> Value {
    json!({
        "log": h.log,
        "seq": h.seq,
        "hash": if h.hash.is_empty() { Value::Null } else { Value::String(hex::encode(&h.hash)) },
        "frozen": h.frozen,
    })
}

/// One piece of fork evidence: where, and both entries as hash, clock and token.
pub(super) fn fork(f: &pb::ForkEvidence) -> Value {
    let side = |s: Option<&pb::SignedEntry>| {
        let Some(s) = s else { return Value::Null };
        let entry = format::decode_entry(&s.body).ok();
        let time_ms = entry.as_ref().map_or(0, |e| e.time_ms);
        let mut value = signed_entry(s);
        value["time_ms"] = json!(time_ms);
        value["time_cst"] = cst_or_null(time_ms);
        value["event"] = json!(entry
            .as_ref()
            .and_then(|e| e.event.as_ref())
            .and_then(|e| e.kind.as_ref())
            .map(Kind::name));
        value
    };
    let place = f
        .first
        .as_ref()
        .and_then(|s| format::decode_entry(&s.body).ok())
        .map(|e| (e.log, e.seq));
    json!({
        "log": place.as_ref().map(|p| p.0.as_str()),
        "seq": place.as_ref().map(|p| p.1),
        "first": side(f.first.as_ref()),
        "second": side(f.second.as_ref()),
    })
}
