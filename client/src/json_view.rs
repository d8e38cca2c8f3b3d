//! Machine-readable JSON for what a node answers, printed by `huren --json`. Field names follow
//! the protocol's; times are RFC 3339 in China Standard Time (as in [`crate::report_json`]) with
//! the UTC milliseconds beside them; hashes and keys are lower-case hex; enums are their
//! protocol names.
//!
//! Scripts depend on these shapes, so fields are only ever added, never renamed. Nothing here
//! holds a secret: a signed entry appears as its portable token, which is public.

use serde_json::{json, Value};

use huren_proto::pb::{self, event::Kind};

use crate::render;
use crate::report_json::{format_time, ReportJson};

/// A time as `{"..._ms": n, "...": "rfc3339"}` fields; `null` text for 0.
fn time_value(ms: i64) -> Value {
    if ms == 0 {
        Value::Null
    } else {
        Value::String(format_time(ms))
    }
}

/// A quantity, or null.
pub fn quantity(q: Option<&pb::Quantity>) -> Value {
    match q {
        Some(q) => json!({"amount": q.amount, "unit": q.unit}),
        None => Value::Null,
    }
}

/// A report in its JSON form ([`ReportJson`]); falls back to null for an incomplete one.
pub fn report(r: &pb::ReportIssued) -> Value {
    ReportJson::from_pb(r)
        .ok()
        .and_then(|j| serde_json::to_value(j).ok())
        .unwrap_or(Value::Null)
}

/// Verdict reasons as `[{"code": "EXPIRED", "detail": "..."}]`.
pub fn reasons(reasons: &[pb::VerdictReason]) -> Value {
    reasons
        .iter()
        .map(|r| json!({"code": render::reason_label(r.code), "detail": r.detail}))
        .collect()
}

fn status_name(status: i32) -> &'static str {
    pb::ReportStatus::try_from(status).map_or("UNKNOWN", |s| s.as_str_name())
}

/// A signed entry: its hash and its portable token.
pub fn signed_entry(s: &pb::SignedEntry) -> Value {
    json!({
        "hash": hex::encode(huren_proto::format::entry_hash(&s.body)),
        "token": huren_proto::token::encode(s),
    })
}

/// A report with its status.
pub fn report_view(v: &pb::ReportView) -> Value {
    json!({
        "report_id": v.report_id,
        "status": status_name(v.status),
        "report": v.report.as_ref().map_or(Value::Null, report),
        "issued_at": time_value(v.issued_at_ms),
        "issued_at_ms": v.issued_at_ms,
        "valid_until": time_value(v.valid_until_ms),
        "valid_until_ms": v.valid_until_ms,
        "remaining": quantity(v.remaining.as_ref()),
        "drawn": quantity(v.drawn.as_ref()),
        "overdrawn": v.overdrawn,
        "revoked_by": v.revoked_by,
        "revoked_reason": v.revoked_reason,
        "intakes": v.intakes.iter().map(intake_view).collect::<Vec<_>>(),
        "disposal": v.disposal.as_ref().map_or(Value::Null, disposal),
        "entry": v.entry.as_ref().map_or(Value::Null, signed_entry),
    })
}

/// One intake decision about a report.
pub fn intake_view(i: &pb::IntakeView) -> Value {
    json!({
        "market": i.market,
        "seq": i.seq,
        "accepted": i.accepted,
        "quantity": quantity(i.quantity.as_ref()),
        "time": time_value(i.time_ms),
        "time_ms": i.time_ms,
        "reasons": reasons(&i.reasons),
    })
}

/// A disposal record.
pub fn disposal(d: &pb::DisposalRecorded) -> Value {
    let method = pb::DisposalMethod::try_from(d.method).map_or("UNKNOWN", |m| m.as_str_name());
    json!({
        "report_id": d.report_id,
        "method": method,
        "by": d.by,
        "disposed_at": time_value(d.disposed_at_ms),
        "disposed_at_ms": d.disposed_at_ms,
        "reported_to_regulator": d.reported_to_regulator,
        "note": d.note,
    })
}

/// A verdict.
pub fn verdict(v: &pb::Verdict) -> Value {
    json!({
        "valid": v.valid,
        "report_id": v.report_id,
        "reasons": reasons(&v.reasons),
        "rules_version": v.rules_version,
        "valid_until": time_value(v.valid_until_ms),
        "valid_until_ms": v.valid_until_ms,
        "remaining": quantity(v.remaining.as_ref()),
        "at": time_value(v.at_ms),
        "at_ms": v.at_ms,
    })
}

/// An appended entry.
pub fn append(a: &pb::AppendResponse) -> Value {
    json!({
        "report_id": a.report_id,
        "log": a.log,
        "seq": a.seq,
        "hash": hex::encode(&a.hash),
        "replayed": a.replayed,
    })
}

/// An intake's outcome.
pub fn intake(r: &pb::IntakeResponse) -> Value {
    let accepted = r.verdict.as_ref().is_some_and(|v| v.valid);
    json!({
        "accepted": accepted,
        "decision": if accepted { "ACCEPTED" } else { "REJECTED" },
        "verdict": r.verdict.as_ref().map_or(Value::Null, verdict),
        "recorded": r.recorded.as_ref().map_or(Value::Null, append),
    })
}

/// A trace.
pub fn trace(t: &pb::TraceResponse) -> Value {
    json!({
        "report": t.report.as_ref().map_or(Value::Null, report_view),
        "recall_markets": t.recall_markets,
    })
}

/// A log head.
pub fn head(h: &pb::Head) -> Value {
    json!({"log": h.log, "seq": h.seq, "hash": hex::encode(&h.hash), "frozen": h.frozen})
}

/// Every log's head.
pub fn heads(heads: &[pb::Head]) -> Value {
    heads.iter().map(head).collect()
}

/// An event, tagged with its kind.
pub fn event(e: Option<&pb::Event>) -> Value {
    let Some(kind) = e.and_then(|e| e.kind.as_ref()) else {
        return Value::Null;
    };
    match kind {
        Kind::ReportIssued(r) => json!({"kind": "report_issued", "report": report(r)}),
        Kind::ReportRevoked(r) => {
            json!({"kind": "report_revoked", "report_id": r.report_id, "reason": r.reason})
        }
        Kind::IntakeAccepted(i) => json!({
            "kind": "intake_accepted", "report_id": i.report_id, "product": i.product,
            "quantity": quantity(i.quantity.as_ref()), "rules_version": i.rules_version,
            "issuer_seq_seen": i.issuer_seq_seen, "regulator_seq_seen": i.regulator_seq_seen,
        }),
        Kind::IntakeRejected(i) => json!({
            "kind": "intake_rejected", "report_id": i.report_id, "product": i.product,
            "quantity": quantity(i.quantity.as_ref()), "rules_version": i.rules_version,
            "reasons": reasons(&i.reasons),
            "issuer_seq_seen": i.issuer_seq_seen, "regulator_seq_seen": i.regulator_seq_seen,
        }),
        Kind::DisposalRecorded(d) => json!({"kind": "disposal_recorded", "disposal": disposal(d)}),
        Kind::MarketAdmitted(a) => json!({
            "kind": "market_admitted",
            "market": a.market.as_ref().map_or(Value::Null, market),
        }),
        Kind::KeyRotated(k) => json!({
            "kind": "key_rotated", "market": k.market,
            "new_public_key": hex::encode(&k.new_public_key), "effective_seq": k.effective_seq,
        }),
        Kind::MarketSuspended(s) => json!({
            "kind": "market_suspended", "market": s.market, "from_seq": s.from_seq,
            "reason": s.reason,
        }),
        Kind::RulesPublished(p) => json!({
            "kind": "rules_published",
            "rules": p.rules.as_ref().map_or(Value::Null, rules),
        }),
    }
}

/// Recognition rules.
pub fn rules(r: &pb::Rules) -> Value {
    json!({
        "version": r.version,
        "clock_skew_ms": r.clock_skew_ms,
        "categories": r.categories.iter().map(|c| json!({
            "category": c.category, "name_zh": c.name_zh, "validity_ms": c.validity_ms,
            "required_items": c.required_items,
        })).collect::<Vec<_>>(),
    })
}

/// A market record.
pub fn market(m: &pb::Market) -> Value {
    json!({
        "id": m.id, "name_zh": m.name_zh, "name_latin": m.name_latin,
        "public_key": hex::encode(&m.public_key),
        "grpc_addr": m.grpc_addr, "http_addr": m.http_addr,
    })
}

/// A signed entry decoded for display (signature not checked), with hash and token.
pub fn entry(s: &pb::SignedEntry) -> Value {
    let hash = hex::encode(huren_proto::format::entry_hash(&s.body));
    match huren_proto::format::decode_entry(&s.body) {
        Ok(e) => json!({
            "log": e.log, "seq": e.seq, "prev_hash": hex::encode(&e.prev_hash),
            "time": time_value(e.time_ms), "time_ms": e.time_ms, "request_id": e.request_id,
            "event": event(e.event.as_ref()), "hash": hash,
        }),
        Err(err) => json!({"hash": hash, "error": err.to_string()}),
    }
}

/// A log range.
pub fn log(reply: &pb::ReadLogResponse) -> Value {
    json!({
        "entries": reply.entries.iter().map(entry).collect::<Vec<_>>(),
        "head": reply.head.as_ref().map_or(Value::Null, head),
    })
}

/// Fork evidence.
pub fn forks(forks: &[pb::ForkEvidence]) -> Value {
    forks
        .iter()
        .map(|f| {
            json!({
                "first": f.first.as_ref().map_or(Value::Null, entry),
                "second": f.second.as_ref().map_or(Value::Null, entry),
            })
        })
        .collect()
}

/// A node's status.
pub fn status(s: &pb::StatusResponse) -> Value {
    json!({
        "market": s.market, "name_zh": s.name_zh, "name_latin": s.name_latin,
        "version": s.version, "now": time_value(s.now_ms), "now_ms": s.now_ms,
        "reports": s.reports, "forks": s.forks, "rules_version": s.rules_version,
        "halted": if s.halted.is_empty() { Value::Null } else { Value::String(s.halted.clone()) },
        "heads": heads(&s.heads),
    })
}

/// A trust list.
pub fn trust_list(list: &pb::TrustList, signature: &str) -> Value {
    json!({
        "format": list.format,
        "network": list.network,
        "created": time_value(list.created_ms),
        "created_ms": list.created_ms,
        "regulator_key": hex::encode(&list.regulator_key),
        "signature": signature,
        "markets": list.markets.iter().map(market).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_names_reasons_and_times_in_cst() {
        let v = pb::Verdict {
            valid: false,
            reasons: vec![pb::VerdictReason {
                code: pb::Reason::Revoked as i32,
                detail: "revoked by regulator: fraud".into(),
            }],
            report_id: "shanxi-3".into(),
            valid_until_ms: huren_proto::time::from_cst(2026, 12, 6, 6, 32, 0),
            ..Default::default()
        };
        let j = verdict(&v);
        assert_eq!(j["reasons"][0]["code"], "REVOKED");
        assert_eq!(j["valid_until"], "2026-12-06T06:32:00+08:00");
        assert_eq!(j["at"], Value::Null);
    }
}
