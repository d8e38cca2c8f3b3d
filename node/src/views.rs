//! Turning ledger state into the answers people and programs read: the `ReportView` and
//! `TraceResponse` of the gRPC API (which the HTTP JSON API and pages reuse). Views are built
//! from the live ledger and the stored signed entry; they never change state.

use huren_proto::ids;
use huren_proto::ledger::{Status, Verdict};
use huren_proto::pb;
use huren_proto::quantity;

use crate::error::NodeError;
use crate::node::Node;

/// The gRPC status enum for a derived status.
pub fn status_code(status: Status) -> pb::ReportStatus {
    match status {
        Status::Valid => pb::ReportStatus::Valid,
        Status::Expired => pb::ReportStatus::StatusExpired,
        Status::Revoked => pb::ReportStatus::StatusRevoked,
        Status::PositivePendingDisposal => pb::ReportStatus::PositivePendingDisposal,
        Status::PositiveDisposed => pb::ReportStatus::PositiveDisposed,
        Status::Exhausted => pb::ReportStatus::Exhausted,
        Status::Overdrawn => pb::ReportStatus::Overdrawn,
        Status::Forked => pb::ReportStatus::Forked,
    }
}

/// A report with its status at `now_ms`.
///
/// # Errors
/// [`NodeError::BadInput`] for a malformed id, [`NodeError::NotFound`] for one not held.
pub fn report(node: &Node, id: &str, now_ms: i64) -> Result<pb::ReportView, NodeError> {
    let (market, seq) = ids::parse_report_id(id).map_err(|m| NodeError::BadInput {
        field: "report_id".into(),
        message: m,
    })?;
    let mut view = {
        let ledger = node.ledger();
        let record = ledger
            .record(id)
            .filter(|r| r.issued.is_some())
            .ok_or_else(|| NodeError::NotFound(format!("report {id} is not held by this node")))?;
        let issued = record.issued.as_ref().expect("filtered on issued");
        let state = ledger.state(id, now_ms).expect("issued report has a state");
        let unit = issued
            .report
            .quantity
            .as_ref()
            .map_or("", |q| q.unit.as_str());
        pb::ReportView {
            report_id: id.to_string(),
            entry: None,
            report: Some((*issued.report).clone()),
            issued_at_ms: issued.time_ms,
            status: status_code(state.status) as i32,
            revoked_reason: state
                .revoked
                .as_ref()
                .map(|r| r.reason.clone())
                .unwrap_or_default(),
            revoked_by: state
                .revoked
                .as_ref()
                .map(|r| r.by.clone())
                .unwrap_or_default(),
            valid_until_ms: state.valid_until_ms.unwrap_or(0),
            remaining: quantity::format_in(state.remaining, unit),
            drawn: quantity::format_in(state.drawn, unit),
            intakes: record
                .intakes
                .iter()
                .map(|i| pb::IntakeView {
                    market: i.market.clone(),
                    seq: i.seq,
                    accepted: i.accepted,
                    quantity: i.quantity.clone(),
                    time_ms: i.time_ms,
                    reasons: i.reasons.clone(),
                })
                .collect(),
            disposal: record.disposals.first().map(|d| d.record.clone()),
            overdrawn: state.overdrawn,
        }
    };
    view.entry = node.store().get(&market, seq)?;
    Ok(view)
}

/// Where a report's goods went, and who must recall them.
///
/// # Errors
/// As [`report`].
pub fn trace(node: &Node, id: &str, now_ms: i64) -> Result<pb::TraceResponse, NodeError> {
    let view = report(node, id, now_ms)?;
    let must_recall = matches!(
        pb::ReportStatus::try_from(view.status),
        Ok(pb::ReportStatus::StatusRevoked
            | pb::ReportStatus::PositivePendingDisposal
            | pb::ReportStatus::PositiveDisposed
            | pb::ReportStatus::Forked)
    );
    let mut recall: Vec<String> = if must_recall {
        view.intakes
            .iter()
            .filter(|i| i.accepted)
            .map(|i| i.market.clone())
            .collect()
    } else {
        Vec::new()
    };
    recall.sort();
    recall.dedup();
    Ok(pb::TraceResponse {
        report: Some(view),
        recall_markets: recall,
    })
}

/// A verdict as the gRPC API sends it.
pub fn verdict(report_id: &str, v: &Verdict, unit: &str, at_ms: i64) -> pb::Verdict {
    pb::Verdict {
        valid: v.valid,
        reasons: v.reasons.clone(),
        rules_version: v.rules_version,
        report_id: report_id.to_string(),
        valid_until_ms: v.valid_until_ms.unwrap_or(0),
        remaining: v.remaining.and_then(|r| quantity::format_in(r, unit)),
        at_ms,
    }
}
