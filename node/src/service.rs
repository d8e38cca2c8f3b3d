//! The gRPC services: `Ledger` for operators, clerks, the regulator, auditors and the public,
//! and `Replication` for peers. Handlers are thin: authenticate, check the request's shape,
//! call the node, map the answer. Every write needs a bearer token of the right role; reads
//! are open. On any error nothing is stored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use huren_proto::ledger::Lot;
use huren_proto::pb::{self, ledger_server, replication_server};
use huren_proto::{ids, token};
use parking_lot::Mutex;
use tonic::{Request, Response, Status};
use tracing::{debug, info, warn};

use crate::auth::Auth;
use crate::config::Role;
use crate::error::NodeError;
use crate::node::{Appended, Node, ReportRef};
use crate::views;

/// Largest gRPC message accepted or sent, bytes.
pub const MAX_MESSAGE_BYTES: usize = 8 * 1024 * 1024;
/// Most entries one `ReadLog` returns.
pub const MAX_READ_ENTRIES: u32 = 10_000;
/// About how many bytes one `ReadLog` returns at most.
pub const MAX_READ_BYTES: usize = 4 * 1024 * 1024;
/// Most entries in one push or regulator submission.
pub const MAX_PUSH_ENTRIES: usize = 10_000;

/// Implements both services over one node.
#[derive(Debug, Clone)]
pub struct Service {
    node: Arc<Node>,
    auth: Arc<Auth>,
    penalties: Arc<Mutex<HashMap<String, Penalty>>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Penalty {
    strikes: u32,
    until: Option<Instant>,
}

fn bad(field: &str, message: impl Into<String>) -> Status {
    NodeError::BadInput {
        field: field.into(),
        message: message.into(),
    }
    .into()
}

fn appended(a: Appended) -> pb::AppendResponse {
    let entry = &a.entry.entry;
    let report_id = match entry.event.as_ref().and_then(|e| e.kind.as_ref()) {
        Some(pb::event::Kind::ReportIssued(_)) => ids::report_id(&entry.log, entry.seq),
        Some(pb::event::Kind::ReportRevoked(r)) => r.report_id.clone(),
        Some(pb::event::Kind::IntakeAccepted(i)) => i.report_id.clone(),
        Some(pb::event::Kind::IntakeRejected(i)) => i.report_id.clone(),
        Some(pb::event::Kind::DisposalRecorded(d)) => d.report_id.clone(),
        _ => String::new(),
    };
    pb::AppendResponse {
        report_id,
        log: entry.log.clone(),
        seq: entry.seq,
        hash: a.entry.hash.to_vec(),
        entry: Some(a.entry.signed),
        replayed: a.replayed,
    }
}

impl Service {
    /// Services over `node`, accepting `auth`'s tokens.
    pub fn new(node: Arc<Node>, auth: Auth) -> Self {
        Self {
            node,
            auth: Arc::new(auth),
            penalties: Arc::default(),
        }
    }

    fn lot(&self, lot: Option<pb::LotQuery>) -> Result<(ReportRef, Lot), Status> {
        let lot = lot.ok_or_else(|| bad("lot", "must be set"))?;
        let report = match (lot.report_id.is_empty(), lot.token.is_empty()) {
            (false, true) => {
                ids::parse_report_id(&lot.report_id).map_err(|m| bad("lot.report_id", m))?;
                ReportRef::Id(lot.report_id)
            }
            (true, false) => {
                let signed =
                    token::decode(&lot.token).map_err(|e| bad("lot.token", e.to_string()))?;
                ReportRef::Token(signed)
            }
            _ => return Err(bad("lot", "give exactly one of report_id and token")),
        };
        let quantity = lot
            .quantity
            .ok_or_else(|| bad("lot.quantity", "must be set"))?;
        huren_proto::quantity::parse(&quantity).map_err(|e| bad("lot.quantity", e.to_string()))?;
        huren_proto::validate::required_text("lot.product", &lot.product)
            .map_err(NodeError::from)?;
        if lot.category.len() > 64 {
            return Err(bad("lot.category", "too long"));
        }
        let at_ms = if lot.at_ms == 0 {
            self.node.clock().now_ms()
        } else {
            lot.at_ms
        };
        if at_ms < 0 {
            return Err(bad("lot.at_ms", "must be after 1970"));
        }
        let category = (!lot.category.is_empty()).then_some(lot.category);
        Ok((
            report,
            Lot {
                product: lot.product,
                category,
                quantity,
                at_ms,
            },
        ))
    }

    fn report_unit(&self, report_id: &str) -> String {
        let ledger = self.node.ledger();
        ledger
            .record(report_id)
            .and_then(|r| r.issued.as_ref())
            .and_then(|i| i.report.quantity.as_ref().map(|q| q.unit.clone()))
            .unwrap_or_default()
    }

    /// Checks a write's token; a refusal is logged (who and from where, never the token).
    fn authorize<T>(&self, request: &Request<T>, role: Role) -> Result<String, Status> {
        self.auth.check(request.metadata(), role).map_err(|e| {
            let from = request.remote_addr().map(|a| a.to_string()).unwrap_or_default();
            warn!(market = %self.node.market(), role = role.as_str(), from, why = %e, "write refused");
            Status::from(e)
        })
    }

    /// Checks a whole submission of regulator entries before any of it is stored: each must
    /// be validly signed, follow the one before (the first follows this node's head, or
    /// repeat an entry already held) and carry a valid event. So a refused submission stores
    /// nothing, and resending one already stored is a no-op.
    fn check_regulator_chain(&self, entries: &[pb::SignedEntry]) -> Result<(), Status> {
        let ledger = self.node.ledger();
        let bounds = huren_proto::validate::TimeBounds {
            now_ms: self.node.clock().now_ms(),
            skew_ms: ledger.rules().clock_skew_ms,
        };
        let (mut seq, mut hash) = ledger.head(ids::REGULATOR_LOG);
        for (i, signed) in entries.iter().enumerate() {
            let field = format!("entries[{i}]");
            let checked = ledger
                .preverify(signed.clone())
                .map_err(|e| bad(&field, e.to_string()))?;
            let entry = &checked.verified.entry;
            if entry.seq <= seq
                && ledger.hash_at(ids::REGULATOR_LOG, entry.seq) == Some(checked.verified.hash)
            {
                continue;
            }
            huren_proto::format::check_link(seq, &hash, entry)
                .map_err(|e| bad(&field, e.to_string()))?;
            ledger
                .check_event(entry, Some(bounds))
                .map_err(|e| bad(&field, e.to_string()))?;
            (seq, hash) = (entry.seq, checked.verified.hash);
        }
        Ok(())
    }

    fn slowed(&self, peer: &str) -> Result<(), Status> {
        let penalties = self.penalties.lock();
        if let Some(until) = penalties.get(peer).and_then(|p| p.until) {
            if Instant::now() < until {
                return Err(Status::unavailable(format!(
                    "{peer} sent entries that failed verification; slowed down, retry later"
                )));
            }
        }
        Ok(())
    }

    fn strike(&self, peer: &str, refused: u32) {
        let mut penalties = self.penalties.lock();
        let p = penalties.entry(peer.to_string()).or_default();
        if refused == 0 {
            p.strikes = p.strikes.saturating_sub(1);
            return;
        }
        p.strikes = p.strikes.saturating_add(1);
        let secs = 1u64 << p.strikes.min(6);
        p.until = Some(Instant::now() + Duration::from_secs(secs));
    }
}

#[tonic::async_trait]
impl ledger_server::Ledger for Service {
    async fn issue_report(
        &self,
        request: Request<pb::IssueReportRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let holder = self.authorize(&request, Role::Issuer)?;
        let req = request.into_inner();
        let report = req.report.ok_or_else(|| bad("report", "must be set"))?;
        let event = pb::Event {
            kind: Some(pb::event::Kind::ReportIssued(report)),
        };
        let done = self.node.append(req.request_id, event).await?;
        info!(market = %self.node.market(), log = %done.entry.entry.log, seq = done.entry.entry.seq, holder, replayed = done.replayed, "report issued");
        Ok(Response::new(appended(done)))
    }

    async fn revoke_report(
        &self,
        request: Request<pb::RevokeReportRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let holder = self.authorize(&request, Role::Issuer)?;
        let req = request.into_inner();
        ids::parse_report_id(&req.report_id).map_err(|m| bad("report_id", m))?;
        let event = pb::Event {
            kind: Some(pb::event::Kind::ReportRevoked(pb::ReportRevoked {
                report_id: req.report_id,
                reason: req.reason,
            })),
        };
        let done = self.node.append(req.request_id, event).await?;
        info!(market = %self.node.market(), seq = done.entry.entry.seq, holder, "report revoked");
        Ok(Response::new(appended(done)))
    }

    async fn intake(
        &self,
        request: Request<pb::IntakeRequest>,
    ) -> Result<Response<pb::IntakeResponse>, Status> {
        let holder = self.authorize(&request, Role::Intake)?;
        let req = request.into_inner();
        let (report, lot) = self.lot(req.lot)?;
        let at_ms = lot.at_ms;
        let (verdict, done) = self.node.intake(req.request_id, report, lot).await?;
        let recorded = appended(done);
        let unit = self.report_unit(&recorded.report_id);
        info!(market = %self.node.market(), seq = recorded.seq, holder, valid = verdict.valid, "intake recorded");
        Ok(Response::new(pb::IntakeResponse {
            verdict: Some(views::verdict(&recorded.report_id, &verdict, &unit, at_ms)),
            recorded: Some(recorded),
        }))
    }

    async fn record_disposal(
        &self,
        request: Request<pb::RecordDisposalRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let holder = self.authorize(&request, Role::Issuer)?;
        let req = request.into_inner();
        let disposal = req.disposal.ok_or_else(|| bad("disposal", "must be set"))?;
        let event = pb::Event {
            kind: Some(pb::event::Kind::DisposalRecorded(disposal)),
        };
        let done = self.node.append(req.request_id, event).await?;
        info!(market = %self.node.market(), seq = done.entry.entry.seq, holder, "disposal recorded");
        Ok(Response::new(appended(done)))
    }

    async fn submit_regulator_entries(
        &self,
        request: Request<pb::SubmitEntriesRequest>,
    ) -> Result<Response<pb::SubmitEntriesResponse>, Status> {
        let holder = self.authorize(&request, Role::Regulator)?;
        let req = request.into_inner();
        if req.entries.is_empty() || req.entries.len() > MAX_PUSH_ENTRIES {
            return Err(bad(
                "entries",
                format!("send 1 to {MAX_PUSH_ENTRIES} entries"),
            ));
        }
        for (i, e) in req.entries.iter().enumerate() {
            let entry = huren_proto::format::decode_entry(&e.body)
                .map_err(|err| bad(&format!("entries[{i}]"), err.to_string()))?;
            if entry.log != ids::REGULATOR_LOG {
                return Err(bad(
                    &format!("entries[{i}]"),
                    "is not an entry of the regulator's log",
                ));
            }
        }
        self.check_regulator_chain(&req.entries)?;
        let result = self.node.ingest(req.entries, Vec::new(), true).await?;
        if let Some(why) = result.first_refusal {
            return Err(NodeError::BadInput {
                field: "entries".into(),
                message: why,
            }
            .into());
        }
        if result.deferred > 0 {
            return Err(NodeError::Precondition(
                "entries do not follow this node's head of the regulator's log".into(),
            )
            .into());
        }
        let (seq, hash) = self.node.ledger().head(ids::REGULATOR_LOG);
        info!(market = %self.node.market(), stored = result.stored, holder, "regulator entries stored");
        Ok(Response::new(pb::SubmitEntriesResponse {
            stored: result.stored,
            head: Some(pb::Head {
                log: ids::REGULATOR_LOG.into(),
                seq,
                hash: hash.to_vec(),
                frozen: false,
            }),
        }))
    }

    async fn get_report(
        &self,
        request: Request<pb::GetReportRequest>,
    ) -> Result<Response<pb::ReportView>, Status> {
        let id = request.into_inner().report_id;
        let view = views::report(&self.node, &id, self.node.clock().now_ms())?;
        Ok(Response::new(view))
    }

    async fn list_reports(
        &self,
        request: Request<pb::ListReportsRequest>,
    ) -> Result<Response<pb::ListReportsResponse>, Status> {
        let req = request.into_inner();
        let limit = match req.limit {
            0 => 50,
            n @ 1..=1000 => n as usize,
            _ => return Err(bad("limit", "at most 1000")),
        };
        let market = (!req.market.is_empty()).then_some(req.market);
        let ids: Vec<String> = {
            let ledger = self.node.ledger();
            ledger
                .newest_reports(market.as_deref())
                .take(limit)
                .map(String::from)
                .collect()
        };
        let now = self.node.clock().now_ms();
        let reports = ids
            .iter()
            .map(|id| views::report(&self.node, id, now))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Response::new(pb::ListReportsResponse { reports }))
    }

    async fn verify(
        &self,
        request: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::Verdict>, Status> {
        let (report, lot) = self.lot(request.into_inner().lot)?;
        let (id, verdict) = self.node.verdict(&report, &lot);
        let unit = self.report_unit(&id);
        Ok(Response::new(views::verdict(
            &id, &verdict, &unit, lot.at_ms,
        )))
    }

    async fn trace(
        &self,
        request: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceResponse>, Status> {
        let id = request.into_inner().report_id;
        Ok(Response::new(views::trace(
            &self.node,
            &id,
            self.node.clock().now_ms(),
        )?))
    }

    async fn read_log(
        &self,
        request: Request<pb::ReadLogRequest>,
    ) -> Result<Response<pb::ReadLogResponse>, Status> {
        let req = request.into_inner();
        if !ids::valid_log_name(&req.log) {
            return Err(bad("log", format!("{:?} is not a log name", req.log)));
        }
        let limit = match req.limit {
            0 => 1000,
            n if n <= MAX_READ_ENTRIES => n,
            _ => return Err(bad("limit", format!("at most {MAX_READ_ENTRIES}"))),
        };
        let from = req.from.max(1);
        let durable = self.node.durable_head(&req.log);
        let entries =
            self.node
                .store()
                .range(&req.log, from, durable, limit as usize, MAX_READ_BYTES)?;
        let head = head(&self.node, &req.log, durable);
        debug!(market = %self.node.market(), log = %req.log, from, n = entries.len(), "read log");
        Ok(Response::new(pb::ReadLogResponse {
            entries,
            head: Some(head),
        }))
    }

    async fn heads(
        &self,
        _request: Request<pb::HeadsRequest>,
    ) -> Result<Response<pb::HeadsResponse>, Status> {
        Ok(Response::new(pb::HeadsResponse {
            heads: heads(&self.node),
        }))
    }

    async fn forks(
        &self,
        _request: Request<pb::ForksRequest>,
    ) -> Result<Response<pb::ForksResponse>, Status> {
        let forks = self.node.ledger().forks().to_vec();
        Ok(Response::new(pb::ForksResponse { forks }))
    }

    async fn get_trust_list(
        &self,
        _request: Request<pb::GetTrustListRequest>,
    ) -> Result<Response<pb::SignedTrustList>, Status> {
        Ok(Response::new(
            self.node.ledger().membership().trust_list().clone(),
        ))
    }

    async fn status(
        &self,
        _request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let ledger = self.node.ledger();
        let market = ledger
            .membership()
            .market(self.node.market())
            .cloned()
            .unwrap_or_default();
        let reply = pb::StatusResponse {
            market: self.node.market().to_string(),
            name_zh: market.name_zh,
            name_latin: market.name_latin,
            heads: Vec::new(),
            reports: ledger.report_count() as u64,
            forks: ledger.forks().len() as u32,
            rules_version: ledger.rules().version,
            halted: self.node.halted().unwrap_or_default(),
            now_ms: self.node.clock().now_ms(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        drop(ledger);
        Ok(Response::new(pb::StatusResponse {
            heads: heads(&self.node),
            ..reply
        }))
    }
}

/// One log's head as peers may see it: capped at what is durable.
fn head(node: &Node, log: &str, durable: u64) -> pb::Head {
    let ledger = node.ledger();
    let hash = ledger
        .hash_at(log, durable)
        .map(|h| h.to_vec())
        .unwrap_or_default();
    pb::Head {
        log: log.to_string(),
        seq: durable,
        hash,
        frozen: ledger.frozen_at(log).is_some(),
    }
}

/// Every log's durable head.
pub fn heads(node: &Node) -> Vec<pb::Head> {
    let logs: Vec<String> = node
        .ledger()
        .heads()
        .into_iter()
        .map(|(log, ..)| log)
        .collect();
    logs.iter()
        .map(|log| head(node, log, node.durable_head(log)))
        .collect()
}

#[tonic::async_trait]
impl replication_server::Replication for Service {
    async fn push(
        &self,
        request: Request<pb::PushRequest>,
    ) -> Result<Response<pb::PushResponse>, Status> {
        let peer = self.authorize(&request, Role::Peer)?;
        self.slowed(&peer)?;
        let req = request.into_inner();
        if req.entries.len() > MAX_PUSH_ENTRIES || req.forks.len() > 64 {
            return Err(bad(
                "entries",
                format!("at most {MAX_PUSH_ENTRIES} entries and 64 forks"),
            ));
        }
        let result = self.node.ingest(req.entries, req.forks, false).await?;
        if let Some(why) = &result.first_refusal {
            warn!(market = %self.node.market(), peer, refused = result.refused, why = %why, "peer pushed entries that failed verification");
        }
        self.strike(&peer, result.refused);
        Ok(Response::new(pb::PushResponse {
            stored: result.stored,
            duplicates: result.duplicates,
            deferred: result.deferred,
        }))
    }
}
