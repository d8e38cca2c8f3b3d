//! One market's node: the live ledger, the store, and the single writer that puts entries
//! into both. Every write (this market's own events, entries replicated from peers, entries
//! of the regulator's log) goes through the writer task, which admits, signs and stages a
//! batch under the ledger lock, then commits and flushes it once for the whole batch (group
//! commit) before it answers anyone or tells the replicators.
//!
//! The projection is updated when an entry is staged, so for the length of one flush a
//! reader may see an entry that is not yet durable. Nothing leaves the node before it is
//! durable: no acknowledgement, no push, and no `ReadLog` or `Heads` answer (those are capped
//! at the durable heads). If a flush fails the node halts its writes.

use std::collections::HashMap;
use std::sync::Arc;

use ed25519_dalek::SigningKey;
use huren_proto::format::{self, VerifiedEntry};
use huren_proto::ids;
use huren_proto::ledger::{Admission, Knowledge, Ledger, Lot, Preverified, Verdict};
use huren_proto::pb::{
    event::Kind, Entry, Event, ForkEvidence, IntakeAccepted, IntakeRejected, SignedEntry,
    TestResult,
};
use huren_proto::validate::{self, TimeBounds};
use parking_lot::RwLock;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::error::NodeError;
use crate::store::Store;

/// Most jobs folded into one group commit.
const MAX_BATCH_JOBS: usize = 512;
/// Depth of the writer's queue; senders wait beyond it (backpressure).
const QUEUE_DEPTH: usize = 4096;

/// Entries that became durable together, announced to replicators and live displays.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The entries, in commit order.
    pub entries: Vec<VerifiedEntry>,
    /// Which of them entered through this node (its own appends and regulator submissions),
    /// and so are pushed to peers at once.
    pub local: Vec<bool>,
    /// Fork evidence recorded in this commit.
    pub forks: Vec<ForkEvidence>,
}

/// The result of an append of this market's own event.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The entry, durable.
    pub entry: VerifiedEntry,
    /// True when the request id had been used and this is the first result.
    pub replayed: bool,
}

/// What an ingest of entries from elsewhere did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ingested {
    /// New entries stored.
    pub stored: u32,
    /// Entries already held.
    pub duplicates: u32,
    /// Entries beyond a gap, left for a later pull.
    pub deferred: u32,
    /// Fork evidence newly recorded.
    pub forks: u32,
    /// Entries refused, with the first reason.
    pub refused: u32,
    /// Why the first refused entry was refused.
    pub first_refusal: Option<String>,
}

/// Which report an intake is about.
#[derive(Debug, Clone)]
pub enum ReportRef {
    /// By id.
    Id(String),
    /// By the signed entry a portable token carries.
    Token(SignedEntry),
}

impl ReportRef {
    /// The report's id and the shared verdict on it for `lot`, from everything `ledger` holds.
    fn judge(&self, ledger: &Ledger, lot: &Lot) -> (String, Verdict) {
        match self {
            ReportRef::Id(id) => (id.clone(), ledger.verdict(id, lot)),
            ReportRef::Token(signed) => ledger.verdict_for_entry(signed, Knowledge::Ledger, lot),
        }
    }
}

enum Job {
    Append {
        request_id: String,
        event: Event,
        reply: oneshot::Sender<Result<Appended, NodeError>>,
    },
    Intake {
        request_id: String,
        report: ReportRef,
        lot: Lot,
        reply: oneshot::Sender<Result<(Verdict, Appended), NodeError>>,
    },
    Ingest {
        entries: Vec<Result<Preverified, String>>,
        forks: Vec<ForkEvidence>,
        local: bool,
        reply: oneshot::Sender<Result<Ingested, NodeError>>,
    },
}

/// State shared by the node's servers, replicators and writer.
#[derive(Debug)]
pub struct Node {
    market: String,
    key: SigningKey,
    ledger: RwLock<Ledger>,
    store: Store,
    jobs: mpsc::Sender<Job>,
    durable: RwLock<HashMap<String, u64>>,
    committed: broadcast::Sender<Arc<Committed>>,
    clock: Arc<dyn Clock>,
    halted: RwLock<Option<String>>,
    closing: tokio::sync::watch::Sender<bool>,
    writer_task: parking_lot::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Node {
    /// Opens the store, replays it into a ledger, and starts the writer task. Must be called
    /// inside a tokio runtime.
    ///
    /// # Errors
    /// [`NodeError::Storage`] when the store cannot be opened or does not verify, and
    /// [`NodeError::Precondition`] when `key` is not the key membership holds for `market`.
    pub fn open(
        market: &str,
        key: SigningKey,
        store: Store,
        membership: huren_proto::trust::Membership,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, NodeError> {
        let started = std::time::Instant::now();
        let ledger = store.replay(membership)?;
        let (head, _) = ledger.head(market);
        let expected = ledger
            .membership()
            .key_at(market, head + 1)
            .map_err(|e| NodeError::Precondition(e.to_string()))?;
        if expected != key.verifying_key() {
            return Err(NodeError::Precondition(format!(
                "the key file is not {market}'s key in the trust list (public key {})",
                huren_proto::keyfile::public_hex(&key.verifying_key())
            )));
        }
        let durable = ledger
            .heads()
            .into_iter()
            .map(|(log, seq, _, _)| (log, seq))
            .collect();
        let halted = ledger
            .frozen_at(market)
            .map(|seq| format!("this market's own log is forked at seq {seq}; appending stopped"));
        info!(
            market,
            reports = ledger.report_count(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store replayed"
        );
        let (jobs, rx) = mpsc::channel(QUEUE_DEPTH);
        let (committed, _) = broadcast::channel(1024);
        let (closing, closed) = tokio::sync::watch::channel(false);
        let node = Arc::new(Self {
            market: market.to_string(),
            key,
            ledger: RwLock::new(ledger),
            store,
            jobs,
            durable: RwLock::new(durable),
            committed,
            clock,
            halted: RwLock::new(halted),
            closing,
            writer_task: parking_lot::Mutex::new(None),
        });
        let task = tokio::spawn(Arc::clone(&node).writer(rx, closed));
        *node.writer_task.lock() = Some(task);
        Ok(node)
    }

    /// Stops the writer after the batch in hand; later writes fail with
    /// [`NodeError::Unavailable`]. Returns when the writer has ended.
    pub async fn close(&self) {
        let _ = self.closing.send(true);
        let task = self.writer_task.lock().take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// This node's market id.
    pub fn market(&self) -> &str {
        &self.market
    }

    /// The node's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Read access to the live ledger. Hold it briefly: the writer waits for it.
    pub fn ledger(&self) -> parking_lot::RwLockReadGuard<'_, Ledger> {
        self.ledger.read()
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Why the node refuses to append to its own log, if it does.
    pub fn halted(&self) -> Option<String> {
        self.halted.read().clone()
    }

    /// Durable head seq of a log (0 when empty).
    pub fn durable_head(&self, log: &str) -> u64 {
        self.durable.read().get(log).copied().unwrap_or(0)
    }

    /// Subscribes to commits, for replication and live displays.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.committed.subscribe()
    }

    /// Appends this market's own event; returns once it is durable. A non-empty
    /// `request_id` makes a retry return the first result without appending.
    ///
    /// # Errors
    /// [`NodeError::BadInput`] naming the field, [`NodeError::NotFound`],
    /// [`NodeError::Precondition`], [`NodeError::Conflict`] for a reused request id, or
    /// [`NodeError::Storage`].
    pub async fn append(&self, request_id: String, event: Event) -> Result<Appended, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Append {
            request_id,
            event,
            reply,
        })
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Verifies a report for a lot and records the decision in this market's log. The verdict
    /// and the draw happen under the writer, so two intakes cannot both take the last of a lot
    /// on one node.
    ///
    /// # Errors
    /// As [`Node::append`].
    pub async fn intake(
        &self,
        request_id: String,
        report: ReportRef,
        lot: Lot,
    ) -> Result<(Verdict, Appended), NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Intake {
            request_id,
            report,
            lot,
            reply,
        })
        .await?;
        rx.await.map_err(|_| stopped())?
    }

    /// Checks entries from elsewhere (a peer, or the regulator's CLI) and stores those that
    /// pass, and records valid fork evidence. Signatures are checked here, in parallel, before
    /// the writer sees the entries. `local` marks entries to push to peers at once.
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] when the node is stopping, or [`NodeError::Storage`].
    pub async fn ingest(
        self: &Arc<Self>,
        entries: Vec<SignedEntry>,
        forks: Vec<ForkEvidence>,
        local: bool,
    ) -> Result<Ingested, NodeError> {
        let checked = self.preverify(entries).await?;
        let pending = self.enqueue_ingest(checked, forks, local).await?;
        pending.await.map_err(|_| stopped())?
    }

    /// The first half of [`Node::ingest`]: checks signatures against a snapshot of membership,
    /// off the async threads and without holding the ledger (the writer later re-checks that
    /// each key is still in force). A catch-up checks one batch while the writer stores the
    /// previous one.
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] when the node is stopping.
    pub async fn preverify(
        &self,
        entries: Vec<SignedEntry>,
    ) -> Result<Vec<Result<Preverified, String>>, NodeError> {
        let membership = self.ledger.read().membership().clone();
        let check =
            move |e| huren_proto::ledger::preverify(&membership, e).map_err(|e| e.to_string());
        if entries.len() < 32 {
            return Ok(entries.into_iter().map(check).collect());
        }
        tokio::task::spawn_blocking(move || {
            use rayon::prelude::*;
            entries.into_par_iter().map(check).collect::<Vec<_>>()
        })
        .await
        .map_err(|_| stopped())
    }

    /// The second half of [`Node::ingest`]: queues checked entries for the writer, in the
    /// order of calls, and returns where the result will arrive once they are durable.
    ///
    /// # Errors
    /// [`NodeError::Unavailable`] when the node is stopping.
    pub async fn enqueue_ingest(
        &self,
        checked: Vec<Result<Preverified, String>>,
        forks: Vec<ForkEvidence>,
        local: bool,
    ) -> Result<oneshot::Receiver<Result<Ingested, NodeError>>, NodeError> {
        let (reply, rx) = oneshot::channel();
        self.send(Job::Ingest {
            entries: checked,
            forks,
            local,
            reply,
        })
        .await?;
        Ok(rx)
    }

    async fn send(&self, job: Job) -> Result<(), NodeError> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }

    /// The verdict for a report (by id or token) without recording anything.
    pub fn verdict(&self, report: &ReportRef, lot: &Lot) -> (String, Verdict) {
        report.judge(&self.ledger.read(), lot)
    }

    fn bounds(&self, ledger: &Ledger) -> TimeBounds {
        TimeBounds {
            now_ms: self.clock.now_ms(),
            skew_ms: ledger.rules().clock_skew_ms,
        }
    }

    async fn writer(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Job>,
        mut closed: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let first = tokio::select! {
                job = rx.recv() => job,
                _ = closed.wait_for(|c| *c) => None,
            };
            let Some(first) = first else { break };
            let mut jobs = vec![first];
            while jobs.len() < MAX_BATCH_JOBS {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
            self.run_batch(jobs).await;
        }
    }

    async fn run_batch(&self, jobs: Vec<Job>) {
        let mut batch = Batch::default();
        let mut replies: Vec<Reply> = Vec::new();
        {
            let mut ledger = self.ledger.write();
            for job in jobs {
                replies.push(self.process(job, &mut ledger, &mut batch));
            }
        }
        let outcome = self.persist(&batch).await;
        if let Err(e) = &outcome {
            error!(market = %self.market, error = %e, "flush failed; halting writes");
            *self.halted.write() = Some(format!("storage failed: {e}; restart the node"));
        } else if !batch.entries.is_empty() || !batch.forks.is_empty() {
            {
                let mut durable = self.durable.write();
                for v in &batch.entries {
                    durable.insert(v.entry.log.clone(), v.entry.seq);
                }
            }
            let committed = Committed {
                entries: std::mem::take(&mut batch.entries),
                local: std::mem::take(&mut batch.local),
                forks: std::mem::take(&mut batch.forks),
            };
            // No subscriber is fine: replication then relies on pulls.
            let _ = self.committed.send(Arc::new(committed));
        }
        for reply in replies {
            reply(outcome.as_ref().map(|_| ()));
        }
    }

    async fn persist(&self, batch: &Batch) -> Result<(), NodeError> {
        if batch.entries.is_empty() && batch.forks.is_empty() {
            return Ok(());
        }
        let mut writes = sled::Batch::default();
        for v in &batch.entries {
            Store::stage(&mut writes, &v.entry.log, v.entry.seq, &v.signed);
        }
        self.store.commit(writes)?;
        for evidence in &batch.forks {
            self.store.put_fork(evidence)?;
        }
        self.store.flush().await
    }

    fn process(&self, job: Job, ledger: &mut Ledger, batch: &mut Batch) -> Reply {
        match job {
            Job::Append {
                request_id,
                event,
                reply,
            } => {
                let result = self.append_own(ledger, batch, request_id, event, None);
                deferred(reply, result)
            }
            Job::Intake {
                request_id,
                report,
                lot,
                reply,
            } => {
                let result = self.intake_own(ledger, batch, request_id, report, lot);
                deferred(reply, result)
            }
            Job::Ingest {
                entries,
                forks,
                local,
                reply,
            } => {
                let result = Ok(self.ingest_batch(ledger, batch, entries, forks, local));
                deferred(reply, result)
            }
        }
    }

    /// May this node sign its next entry: not halted, not forked, its key in force and the
    /// market not suspended at the next seq.
    fn may_append(&self, ledger: &Ledger) -> Result<(), NodeError> {
        if let Some(why) = self.halted.read().clone() {
            return Err(NodeError::Precondition(why));
        }
        if let Some(seq) = ledger.frozen_at(&self.market) {
            return Err(NodeError::Precondition(format!(
                "this market's log is forked at seq {seq}; appending stopped"
            )));
        }
        let (head, _) = ledger.head(&self.market);
        match ledger.membership().key_for(&self.market, head + 1) {
            Ok(key) if key == self.key.verifying_key() => {}
            Ok(_) => {
                return Err(NodeError::Precondition(format!(
                    "{}'s key was rotated; this node's key is not in force from seq {}",
                    self.market,
                    head + 1
                )))
            }
            Err(e) => return Err(NodeError::PermissionDenied(e.to_string())),
        }
        Ok(())
    }

    fn own_check(&self, ledger: &Ledger, event: &Event) -> Result<(), NodeError> {
        let bounds = self.bounds(ledger);
        let kind = event.kind.as_ref().ok_or(NodeError::BadInput {
            field: "event".into(),
            message: "must be set".into(),
        })?;
        match kind {
            Kind::ReportIssued(r) => {
                validate::report(r, Some(bounds))?;
                // One sample bag is one test; and a lot holds one live report at a time, or
                // a second report would reset what is left of it.
                if let Some(earlier) = ledger.reports_for_bag(&r.bag_code).first() {
                    return Err(NodeError::Conflict(format!(
                        "report.bag_code: sample bag {} already has report {earlier}",
                        r.bag_code
                    )));
                }
                for earlier in ledger.reports_for_lot(&r.lot_id) {
                    let live = ledger.state(earlier, bounds.now_ms).is_some_and(|s| {
                        matches!(
                            s.status,
                            huren_proto::ledger::Status::Valid
                                | huren_proto::ledger::Status::Overdrawn
                        )
                    });
                    if live {
                        return Err(NodeError::Conflict(format!(
                            "report.lot_id: lot {} already has report {earlier}, still valid; \
                             revoke it first, or draw on it",
                            r.lot_id
                        )));
                    }
                }
                if huren_proto::rules::category(ledger.rules(), &r.category).is_none() {
                    return Err(NodeError::BadInput {
                        field: "report.category".into(),
                        message: format!(
                            "{:?} is not a category of rules version {}",
                            r.category,
                            ledger.rules().version
                        ),
                    });
                }
            }
            Kind::ReportRevoked(r) => {
                let issued = own_report(ledger, &self.market, &r.report_id, "report_id")?;
                let _ = issued;
                let state = ledger
                    .state(&r.report_id, bounds.now_ms)
                    .expect("report is held");
                if let Some(rev) = state.revoked {
                    return Err(NodeError::Precondition(format!(
                        "{} was already revoked by {}: {}",
                        r.report_id, rev.by, rev.reason
                    )));
                }
                validate::event(event, Some(bounds))?;
            }
            Kind::DisposalRecorded(d) => {
                validate::event(event, Some(bounds))?;
                let issued = own_report(ledger, &self.market, &d.report_id, "disposal.report_id")?;
                if issued.report.result != TestResult::Positive as i32 {
                    return Err(NodeError::Precondition(format!(
                        "{} is not positive; only a positive lot needs a disposal record",
                        d.report_id
                    )));
                }
                let record = ledger.record(&d.report_id).expect("report is held");
                if record.disposals.iter().any(|x| x.by == self.market) {
                    return Err(NodeError::Precondition(format!(
                        "a disposal of {} is already recorded",
                        d.report_id
                    )));
                }
            }
            _ => {
                return Err(NodeError::BadInput {
                    field: "event".into(),
                    message: "a market node appends reports, revocations, intakes and disposals"
                        .into(),
                })
            }
        }
        Ok(())
    }

    /// Looks for an earlier write with the same request id; `Some` ends the append.
    fn replay_request(
        &self,
        ledger: &Ledger,
        batch: &Batch,
        request_id: &str,
        same: impl Fn(&Entry) -> bool,
    ) -> Option<Result<VerifiedEntry, NodeError>> {
        if request_id.is_empty() {
            return None;
        }
        let seq = ledger.request(&self.market, request_id)?;
        let held = batch
            .entries
            .iter()
            .find(|v| v.entry.log == self.market && v.entry.seq == seq)
            .cloned()
            .map(Ok)
            .or_else(|| {
                let stored = self.store.get(&self.market, seq).transpose()?;
                Some(stored.and_then(|s| {
                    VerifiedEntry::from_trusted_store(s)
                        .map_err(|e| NodeError::Storage(e.to_string()))
                }))
            })?;
        Some(held.and_then(|v| {
            if same(&v.entry) {
                Ok(v)
            } else {
                Err(NodeError::Conflict(format!(
                    "request id {request_id:?} was already used for a different write ({})",
                    ids::report_id(&self.market, seq)
                )))
            }
        }))
    }

    fn append_own(
        &self,
        ledger: &mut Ledger,
        batch: &mut Batch,
        request_id: String,
        event: Event,
        checked: Option<()>,
    ) -> Result<Appended, NodeError> {
        validate::request_id(&request_id)?;
        if let Some(first) = self.replay_request(ledger, batch, &request_id, |e| {
            same_write(e.event.as_ref(), &event)
        }) {
            return first.map(|entry| Appended {
                entry,
                replayed: true,
            });
        }
        self.may_append(ledger)?;
        if checked.is_none() {
            self.own_check(ledger, &event)?;
        }
        let (head, head_hash) = ledger.head(&self.market);
        let entry = Entry {
            format: format::FORMAT_VERSION,
            log: self.market.clone(),
            seq: head + 1,
            prev_hash: head_hash.to_vec(),
            time_ms: self.clock.now_ms(),
            request_id,
            event: Some(event),
        };
        ledger
            .check_event(&entry, None)
            .map_err(NodeError::Refused)?;
        let signed = format::sign_entry(&self.key, &entry);
        if signed.body.len() > format::MAX_BODY_LEN {
            return Err(NodeError::BadInput {
                field: "event".into(),
                message: format!(
                    "encodes to {} bytes, over {}",
                    signed.body.len(),
                    format::MAX_BODY_LEN
                ),
            });
        }
        let verified = VerifiedEntry {
            hash: format::entry_hash(&signed.body),
            signed,
            entry,
        };
        ledger.apply(&verified);
        batch.entries.push(verified.clone());
        batch.local.push(true);
        Ok(Appended {
            entry: verified,
            replayed: false,
        })
    }

    fn intake_own(
        &self,
        ledger: &mut Ledger,
        batch: &mut Batch,
        request_id: String,
        report: ReportRef,
        lot: Lot,
    ) -> Result<(Verdict, Appended), NodeError> {
        validate::request_id(&request_id)?;
        let (report_id, verdict) = report.judge(ledger, &lot);
        let same_lot = |e: &Entry| match e.event.as_ref().and_then(|e| e.kind.as_ref()) {
            Some(Kind::IntakeAccepted(i)) => {
                i.report_id == report_id
                    && i.quantity.as_ref() == Some(&lot.quantity)
                    && i.product == lot.product
            }
            Some(Kind::IntakeRejected(i)) => {
                i.report_id == report_id
                    && i.quantity.as_ref() == Some(&lot.quantity)
                    && i.product == lot.product
            }
            _ => false,
        };
        if let Some(first) = self.replay_request(ledger, batch, &request_id, same_lot) {
            let entry = first?;
            let verdict = verdict_from_entry(&entry.entry, ledger);
            return Ok((
                verdict,
                Appended {
                    entry,
                    replayed: true,
                },
            ));
        }
        if report_id.is_empty() {
            return Err(NodeError::BadInput {
                field: "lot.token".into(),
                message: verdict
                    .reasons
                    .first()
                    .map(|r| r.detail.clone())
                    .unwrap_or_default(),
            });
        }
        ids::parse_report_id(&report_id).map_err(|m| NodeError::BadInput {
            field: "lot.report_id".into(),
            message: m,
        })?;
        huren_proto::quantity::parse(&lot.quantity).map_err(|e| NodeError::BadInput {
            field: "lot.quantity".into(),
            message: e.to_string(),
        })?;
        validate::required_text("lot.product", &lot.product)?;
        let issuer = ids::parse_report_id(&report_id)
            .map(|(m, _)| m)
            .unwrap_or_default();
        let issuer_seq_seen = ledger.head(&issuer).0;
        let regulator_seq_seen = ledger.head(ids::REGULATOR_LOG).0;
        let event = if verdict.valid {
            Kind::IntakeAccepted(IntakeAccepted {
                report_id: report_id.clone(),
                quantity: Some(lot.quantity.clone()),
                product: lot.product.clone(),
                rules_version: verdict.rules_version,
                issuer_seq_seen,
                regulator_seq_seen,
            })
        } else {
            Kind::IntakeRejected(IntakeRejected {
                report_id: report_id.clone(),
                quantity: Some(lot.quantity.clone()),
                product: lot.product.clone(),
                rules_version: verdict.rules_version,
                reasons: verdict.reasons.clone(),
                issuer_seq_seen,
                regulator_seq_seen,
            })
        };
        let appended = self.append_own(
            ledger,
            batch,
            request_id,
            Event { kind: Some(event) },
            Some(()),
        )?;
        Ok((verdict, appended))
    }

    fn ingest_batch(
        &self,
        ledger: &mut Ledger,
        batch: &mut Batch,
        entries: Vec<Result<Preverified, String>>,
        forks: Vec<ForkEvidence>,
        local: bool,
    ) -> Ingested {
        let mut out = Ingested::default();
        let bounds = self.bounds(ledger);
        let refuse = |out: &mut Ingested, why: String| {
            out.refused += 1;
            if out.first_refusal.is_none() {
                out.first_refusal = Some(why);
            }
        };
        for checked in entries {
            let checked = match checked {
                Ok(c) => c,
                Err(why) => {
                    refuse(&mut out, why);
                    continue;
                }
            };
            match ledger.admit_preverified(checked, Some(bounds)) {
                Ok(Admission::Next(verified)) => {
                    ledger.apply(&verified);
                    batch.entries.push(verified);
                    batch.local.push(local);
                    out.stored += 1;
                }
                Ok(Admission::Duplicate) => out.duplicates += 1,
                Ok(Admission::Gap { .. }) => out.deferred += 1,
                Ok(Admission::Conflict { incoming, .. }) => {
                    let log = incoming.entry.log.clone();
                    let seq = incoming.entry.seq;
                    let held = batch
                        .entries
                        .iter()
                        .find(|v| v.entry.log == log && v.entry.seq == seq)
                        .map(|v| v.signed.clone())
                        .or_else(|| self.store.get(&log, seq).ok().flatten());
                    let Some(held) = held else {
                        refuse(&mut out, format!("{log} seq {seq}: held entry unreadable"));
                        continue;
                    };
                    let evidence = ForkEvidence {
                        first: Some(held),
                        second: Some(incoming.signed),
                    };
                    if self.note_fork(ledger, batch, evidence) {
                        out.forks += 1;
                    }
                }
                Err(e) => refuse(&mut out, e.to_string()),
            }
        }
        for evidence in forks {
            match ledger.check_fork(&evidence) {
                Ok(_) => {
                    if self.note_fork(ledger, batch, evidence) {
                        out.forks += 1;
                    }
                }
                Err(why) => refuse(&mut out, format!("fork evidence refused: {why}")),
            }
        }
        out
    }

    fn note_fork(&self, ledger: &mut Ledger, batch: &mut Batch, evidence: ForkEvidence) -> bool {
        let Ok((log, seq)) = ledger.check_fork(&evidence) else {
            return false;
        };
        if !ledger.record_fork(evidence.clone()) {
            return false;
        }
        error!(market = %self.market, log = %log, seq, "fork: two validly signed entries at one seq; log frozen");
        if log == self.market {
            let why = format!(
                "this market's own log is forked at seq {seq}: another copy of its key signed a \
                 different entry there (restored from an old backup?); appending stopped"
            );
            warn!(market = %self.market, "{why}");
            *self.halted.write() = Some(why);
        }
        batch.forks.push(evidence);
        true
    }
}

/// Answers one job's caller once the batch's flush is known to have succeeded or failed.
type Reply = Box<dyn FnOnce(Result<(), &NodeError>) + Send>;

#[derive(Default)]
struct Batch {
    entries: Vec<VerifiedEntry>,
    local: Vec<bool>,
    forks: Vec<ForkEvidence>,
}

fn stopped() -> NodeError {
    NodeError::Unavailable("the node is stopping".into())
}

/// Holds a reply until the batch is durable: a result that was already an error is sent
/// as is; a success is sent only if the flush succeeded.
fn deferred<T: Send + 'static>(
    reply: oneshot::Sender<Result<T, NodeError>>,
    result: Result<T, NodeError>,
) -> Reply {
    Box::new(move |flushed| {
        let answer = match (result, flushed) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(NodeError::Storage(e.to_string())),
            (Ok(v), Ok(())) => Ok(v),
        };
        // The caller may have gone away; the entry is durable either way.
        let _ = reply.send(answer);
    })
}

fn own_report<'a>(
    ledger: &'a Ledger,
    market: &str,
    id: &str,
    field: &str,
) -> Result<&'a huren_proto::ledger::Issued, NodeError> {
    let (issuer, _) = ids::parse_report_id(id).map_err(|m| NodeError::BadInput {
        field: field.into(),
        message: m,
    })?;
    let issued = ledger
        .record(id)
        .and_then(|r| r.issued.as_ref())
        .ok_or_else(|| NodeError::NotFound(format!("report {id} is not held by this node")))?;
    if issuer != market {
        return Err(NodeError::PermissionDenied(format!(
            "{id} was issued by {issuer}; {market} may act only on its own reports"
        )));
    }
    Ok(issued)
}

/// Whether a retried write asks for what the first did. Times a client fills in with "now"
/// when the operator gives none (sampling, test and disposal times) may differ between the
/// two attempts and are not compared; everything else must be equal.
fn same_write(first: Option<&Event>, retry: &Event) -> bool {
    fn without_times(event: &Event) -> Event {
        let mut event = event.clone();
        match event.kind.as_mut() {
            Some(Kind::ReportIssued(r)) => {
                r.sampled_at_ms = 0;
                r.tested_at_ms = 0;
            }
            Some(Kind::DisposalRecorded(d)) => d.disposed_at_ms = 0,
            _ => {}
        }
        event
    }
    first.is_some_and(|first| without_times(first) == without_times(retry))
}

/// The verdict recorded in an intake entry, for answering a retried intake.
fn verdict_from_entry(entry: &Entry, ledger: &Ledger) -> Verdict {
    match entry.event.as_ref().and_then(|e| e.kind.as_ref()) {
        Some(Kind::IntakeRejected(i)) => Verdict {
            valid: false,
            reasons: i.reasons.clone(),
            rules_version: i.rules_version,
            valid_until_ms: None,
            remaining: None,
        },
        Some(Kind::IntakeAccepted(i)) => Verdict {
            valid: true,
            reasons: Vec::new(),
            rules_version: i.rules_version,
            valid_until_ms: ledger
                .state(&i.report_id, entry.time_ms)
                .and_then(|s| s.valid_until_ms),
            remaining: None,
        },
        _ => Verdict {
            valid: false,
            reasons: Vec::new(),
            rules_version: 0,
            valid_until_ms: None,
            remaining: None,
        },
    }
}

impl Node {
    /// Digest of the live state at `at_ms`; equal to `rebuild::digest` of a replay of the same
    /// store when the state is a true projection of the logs.
    pub fn state_digest(&self, at_ms: i64) -> String {
        crate::rebuild::digest(&self.ledger.read(), at_ms)
    }
}
