//! The auditor: replays a whole ledger, from a node or from an export file, starting at the
//! first entry of every log, and checks everything that can be checked: signatures (strict),
//! membership and keys as the regulator's log set them for each entry, links, sequence
//! numbers, clocks, fork evidence, and the rules a market's decisions must follow. It owns the
//! replay order, the findings and the summary; docs/FORMAT.md ("Export file") describes what
//! it checks for a third party.
//!
//! It never decides on its own what the shared code decides: admission goes through
//! `ledger::preverify` and `Ledger::admit_preverified`, state through `Ledger::apply` and
//! `Ledger::state`, and every verdict through `Ledger::verdict_on_issued`; so the node, the
//! CLI and the auditor cannot disagree about an entry or a report.
//!
//! # Signatures, and why not batch verification
//!
//! Every signature is checked with ed25519-dalek's `verify_strict` (through
//! `huren_proto::ledger::preverify`), on all cores with rayon, a chunk of entries at a time.
//! Batch verification is not used to decide anything, because no cheap pre-check makes it as
//! strict: `verify_batch` in ed25519-dalek 2.2 checks `Σ zᵢ(Rᵢ − [Sᵢ]B + [kᵢ]Aᵢ) = 0` with
//! random 128-bit `zᵢ` derived from the inputs. A signer can make `Rᵢ` the right point plus a
//! point of small order `T`; then `verify_strict` refuses the signature (its cofactorless
//! equation compares `R` exactly) while the batch equation holds whenever `zᵢ·T = 0`, which
//! for `T` of order 2 is every even `zᵢ`: half the time, and always after the signer grinds
//! a few variants, since the `zᵢ` are a deterministic function of the inputs. The checks the
//! batch skips and `verify_strict` makes (canonical `S`, which dalek's batch does check;
//! canonical, non-small-order `R` and `A`) are cheap, but refusing such an `R` needs its
//! prime-order test (`[ℓ]R = 0`), which costs about as much as a whole `verify_strict`. Falling
//! back to `verify_strict` only for a batch that fails does not help either: the forged entry
//! passes the batch. `huren`'s audit benchmark measures batch verification beside
//! `verify_strict` to show what was given up.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Read};
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use rayon::prelude::*;
use serde_json::{json, Value};

use huren_proto::format::{self, FormatError, Hash, VerifiedEntry};
use huren_proto::ids::{self, REGULATOR_LOG};
use huren_proto::ledger::{self, Admission, AdmitError, Ledger, Lot, Preverified};
use huren_proto::pb::{
    self, event::Kind, ForkEvidence, Head, SignedEntry, SignedTrustList, TestResult,
};
use huren_proto::trust::{Membership, MembershipError};

use crate::connect::{Client, ClientError};
use crate::export::{self, ExportError, ExportReader, Record};

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Default for how far an entry's clock may be behind its predecessor's: 10 minutes.
pub const DEFAULT_CLOCK_TOLERANCE_MS: i64 = 10 * MINUTE_MS;
/// Default for how far an entry's clock may be ahead of the audit's clock: 5 minutes, the
/// rules' default clock skew.
pub const DEFAULT_FUTURE_SKEW_MS: i64 = huren_proto::rules::DEFAULT_CLOCK_SKEW_MS;
/// Default time a positive report's issuer has to record the lot's disposal: 24 hours.
pub const DEFAULT_DISPOSAL_DEADLINE_MS: i64 = 24 * HOUR_MS;
/// Entries whose signatures are checked together, in parallel.
pub const CHUNK: usize = 4096;

/// Exit code of `huren audit` when any integrity check failed.
pub const EXIT_INTEGRITY: u8 = 5;
/// Exit code of `huren audit` when every integrity check passed but a rule was broken.
pub const EXIT_RULES: u8 = 6;

/// What an audit is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditOptions {
    /// The regulator's public key, obtained out of band; the trust list must be signed by it.
    pub regulator_key: VerifyingKey,
    /// The audit's clock, UTC ms: entries later than this plus `future_skew_ms` are findings,
    /// and so are positives whose disposal deadline passed before it.
    pub now_ms: i64,
    /// How far an entry's clock may be behind its predecessor's in the same log.
    pub clock_tolerance_ms: i64,
    /// How far an entry's clock may be ahead of `now_ms`.
    pub future_skew_ms: i64,
    /// Time from a positive report's entry to its disposal record.
    pub disposal_deadline_ms: i64,
}

impl AuditOptions {
    /// Options with the documented defaults.
    pub fn new(regulator_key: VerifyingKey, now_ms: i64) -> Self {
        Self {
            regulator_key,
            now_ms,
            clock_tolerance_ms: DEFAULT_CLOCK_TOLERANCE_MS,
            future_skew_ms: DEFAULT_FUTURE_SKEW_MS,
            disposal_deadline_ms: DEFAULT_DISPOSAL_DEADLINE_MS,
        }
    }
}

/// What a finding is about. Integrity failures mean the ledger (or the file) is not what its
/// authors signed, or was signed by someone who may not; rule findings mean it verifies but
/// records something the rules forbid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FindingKind {
    /// The export file is not well formed: framing, order, a damaged trailer digest.
    ExportMalformed,
    /// The trust list is not signed by the pinned regulator key, or is malformed.
    TrustListRefused,
    /// An entry's body does not decode, is too large, has an unknown format, or names no log.
    Undecodable,
    /// A signature does not verify (strictly) under the key in force.
    BadSignature,
    /// A signature verifies under another key of the same market, not the one in force at
    /// that seq (a rotated-out key, or one not yet in force).
    RotatedOutKey,
    /// The entry's author is not a member of the network.
    NonMember,
    /// The entry's author was suspended from a seq at or before this entry.
    SuspendedSigner,
    /// An event whose fields are invalid or that does not belong in its log.
    InvalidEvent,
    /// An entry is not at the sequence number (or in the log) its place calls for.
    WrongSeq,
    /// An entry's `prev_hash` is not its predecessor's hash.
    BrokenLink,
    /// A log header does not match its entries (count, last hash, frozen mark).
    HeadMismatch,
    /// Fork evidence that does not prove a fork.
    BadForkEvidence,
    /// Valid fork evidence: an author signed two entries at one seq.
    Fork,
    /// An intake accepted a report that was not valid for it when and where it was decided.
    InvalidIntake,
    /// Accepted intakes draw more than the report's lot.
    Overdraw,
    /// A positive report without the issuer's disposal record within the deadline.
    PositiveNotDisposed,
    /// An intake accepted a report whose revocation had already reached that market.
    IntakeAfterRevocation,
    /// An entry's clock is far behind its predecessor's.
    ClockRegression,
    /// An entry's clock is ahead of the audit's clock beyond the allowed skew.
    ClockFuture,
    /// A regulator entry that changed nothing (e.g. admitting a market twice).
    RegulatorEventNoEffect,
}

impl FindingKind {
    /// True for integrity failures, false for rule findings.
    pub fn integrity(self) -> bool {
        use FindingKind::*;
        matches!(
            self,
            ExportMalformed
                | TrustListRefused
                | Undecodable
                | BadSignature
                | RotatedOutKey
                | NonMember
                | SuspendedSigner
                | InvalidEvent
                | WrongSeq
                | BrokenLink
                | HeadMismatch
                | BadForkEvidence
        )
    }

    /// The kind's name in text and JSON, e.g. `bad_signature`.
    pub fn name(self) -> &'static str {
        use FindingKind::*;
        match self {
            ExportMalformed => "export_malformed",
            TrustListRefused => "trust_list_refused",
            Undecodable => "undecodable",
            BadSignature => "bad_signature",
            RotatedOutKey => "rotated_out_key",
            NonMember => "non_member",
            SuspendedSigner => "suspended_signer",
            InvalidEvent => "invalid_event",
            WrongSeq => "wrong_seq",
            BrokenLink => "broken_link",
            HeadMismatch => "head_mismatch",
            BadForkEvidence => "bad_fork_evidence",
            Fork => "fork",
            InvalidIntake => "invalid_intake",
            Overdraw => "overdraw",
            PositiveNotDisposed => "positive_not_disposed",
            IntakeAfterRevocation => "intake_after_revocation",
            ClockRegression => "clock_regression",
            ClockFuture => "clock_future",
            RegulatorEventNoEffect => "regulator_event_no_effect",
        }
    }
}

/// An entry a finding rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// The log.
    pub log: String,
    /// The sequence number.
    pub seq: u64,
    /// The entry hash of the body as found (all zeros when there is no body).
    pub hash: Hash,
}

impl EntryRef {
    /// `log #seq hash-prefix`.
    pub fn label(&self) -> String {
        format!(
            "{} #{} {}",
            self.log,
            self.seq,
            crate::render::short_hash(&self.hash)
        )
    }
}

/// One thing the audit found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What kind of fault.
    pub kind: FindingKind,
    /// What exactly, in a sentence.
    pub detail: String,
    /// The entries it rests on.
    pub entries: Vec<EntryRef>,
}

/// What one log held.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogSummary {
    /// The log.
    pub log: String,
    /// Entries the header (or the node) declared.
    pub declared: u64,
    /// Entries that passed every integrity check and were replayed.
    pub checked: u64,
    /// Entries after an integrity failure, which could not be placed.
    pub unchecked: u64,
    /// Hash of the last checked entry.
    pub head: Option<Hash>,
    /// Checked entries by event kind.
    pub kinds: BTreeMap<&'static str, u64>,
}

/// Counts over the whole ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Totals {
    /// Checked entries.
    pub entries: u64,
    /// Reports issued.
    pub reports: u64,
    /// Of which negative (pass).
    pub passes: u64,
    /// Of which positive.
    pub positives: u64,
    /// Intakes accepted.
    pub intakes_accepted: u64,
    /// Intakes rejected.
    pub intakes_rejected: u64,
    /// Revocations.
    pub revocations: u64,
    /// Disposal records.
    pub disposals: u64,
    /// Valid fork evidence.
    pub forks: u64,
    /// Positives still inside their disposal deadline without a disposal.
    pub positives_pending: u64,
}

/// The result of an audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    /// The network named by the trust list (empty if it was refused).
    pub network: String,
    /// The options the audit ran with.
    pub options: AuditOptions,
    /// Every log, in replay order.
    pub logs: Vec<LogSummary>,
    /// Totals.
    pub totals: Totals,
    /// Findings: integrity failures in replay order, then forks, then rule findings.
    pub findings: Vec<Finding>,
}

impl AuditReport {
    /// Number of integrity failures.
    pub fn integrity_failures(&self) -> usize {
        self.findings.iter().filter(|f| f.kind.integrity()).count()
    }

    /// Number of rule findings.
    pub fn rule_findings(&self) -> usize {
        self.findings.len() - self.integrity_failures()
    }

    /// Findings counted by kind.
    pub fn by_kind(&self) -> BTreeMap<FindingKind, usize> {
        let mut out = BTreeMap::new();
        for f in &self.findings {
            *out.entry(f.kind).or_insert(0) += 1;
        }
        out
    }

    /// The kinds found, without repeats.
    pub fn kinds(&self) -> BTreeSet<FindingKind> {
        self.findings.iter().map(|f| f.kind).collect()
    }

    /// 0 when clean, [`EXIT_INTEGRITY`] on any integrity failure, else [`EXIT_RULES`] on any
    /// rule finding.
    pub fn exit_code(&self) -> u8 {
        if self.integrity_failures() > 0 {
            EXIT_INTEGRITY
        } else if !self.findings.is_empty() {
            EXIT_RULES
        } else {
            0
        }
    }

    fn verdict_word(&self) -> &'static str {
        match self.exit_code() {
            0 => "clean",
            EXIT_INTEGRITY => "integrity_failure",
            _ => "rule_findings",
        }
    }

    /// The report for people: a summary table, the totals, then each finding with the entries
    /// it rests on.
    pub fn text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "audit of network {:?} at {}",
            self.network,
            huren_proto::time::cst(self.options.now_ms)
        );
        let mut rows = vec![vec![
            "log".to_string(),
            "entries".into(),
            "checked".into(),
            "reports".into(),
            "revoked".into(),
            "accepted".into(),
            "rejected".into(),
            "disposals".into(),
            "regulator".into(),
            "head".into(),
        ]];
        for l in &self.logs {
            let k = |name: &str| l.kinds.get(name).copied().unwrap_or(0).to_string();
            let admin: u64 = [
                "market_admitted",
                "key_rotated",
                "market_suspended",
                "rules_published",
            ]
            .iter()
            .map(|n| l.kinds.get(n).copied().unwrap_or(0))
            .sum();
            rows.push(vec![
                l.log.clone(),
                l.declared.to_string(),
                l.checked.to_string(),
                k("report_issued"),
                k("report_revoked"),
                k("intake_accepted"),
                k("intake_rejected"),
                k("disposal_recorded"),
                admin.to_string(),
                l.head.map_or("-".into(), |h| crate::render::short_hash(&h)),
            ]);
        }
        out.push_str(&crate::render::table(&rows));
        let t = &self.totals;
        let _ = writeln!(
            out,
            "{} entries checked; {} reports ({} passes, {} positives, {} awaiting disposal \
             within the deadline); intakes {} accepted, {} rejected; {} revocations; \
             {} disposals; {} forks",
            t.entries,
            t.reports,
            t.passes,
            t.positives,
            t.positives_pending,
            t.intakes_accepted,
            t.intakes_rejected,
            t.revocations,
            t.disposals,
            t.forks
        );
        if self.findings.is_empty() {
            out.push_str("findings: none\n");
        } else {
            let counts: Vec<String> = self
                .by_kind()
                .iter()
                .map(|(k, n)| format!("{} {n}", k.name()))
                .collect();
            let _ = writeln!(out, "findings: {}", counts.join(", "));
            for f in &self.findings {
                let class = if f.kind.integrity() {
                    "INTEGRITY"
                } else {
                    "RULE"
                };
                let _ = writeln!(out, "{class} {}: {}", f.kind.name(), f.detail);
                for e in &f.entries {
                    let _ = writeln!(out, "    {}", e.label());
                }
            }
        }
        let _ = writeln!(
            out,
            "result: {} (exit code {})",
            match self.exit_code() {
                0 => "CLEAN",
                EXIT_INTEGRITY => "INTEGRITY FAILURE",
                _ => "RULE FINDINGS",
            },
            self.exit_code()
        );
        out
    }

    /// The report for scripts (`--json`).
    pub fn json(&self) -> Value {
        let entry = |e: &EntryRef| json!({"log": e.log, "seq": e.seq, "hash": crate::render::short_hash(&e.hash)});
        let t = &self.totals;
        json!({
            "network": self.network,
            "audited_at": crate::report_json::format_time(self.options.now_ms),
            "audited_at_ms": self.options.now_ms,
            "result": self.verdict_word(),
            "exit_code": self.exit_code(),
            "options": {
                "clock_tolerance_ms": self.options.clock_tolerance_ms,
                "future_skew_ms": self.options.future_skew_ms,
                "disposal_deadline_ms": self.options.disposal_deadline_ms,
            },
            "logs": self.logs.iter().map(|l| json!({
                "log": l.log,
                "entries": l.declared,
                "checked": l.checked,
                "unchecked": l.unchecked,
                "head": l.head.map(hex::encode),
                "kinds": l.kinds,
            })).collect::<Vec<_>>(),
            "totals": {
                "entries": t.entries,
                "reports": t.reports,
                "passes": t.passes,
                "positives": t.positives,
                "positives_pending_disposal": t.positives_pending,
                "intakes_accepted": t.intakes_accepted,
                "intakes_rejected": t.intakes_rejected,
                "revocations": t.revocations,
                "disposals": t.disposals,
                "forks": t.forks,
            },
            "findings_by_kind": self.by_kind().iter()
                .map(|(k, n)| (k.name().to_string(), json!(n)))
                .collect::<serde_json::Map<_, _>>(),
            "findings": self.findings.iter().map(|f| json!({
                "kind": f.kind.name(),
                "integrity": f.kind.integrity(),
                "detail": f.detail,
                "entries": f.entries.iter().map(entry).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Why an audit could not be carried out at all (as opposed to a ledger that fails it).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The export file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The node failed or went away during the audit.
    #[error("reading the node")]
    Node(#[from] ClientError),
    /// The node's answers do not add up (a log shorter than its own head).
    #[error("reading the node")]
    Export(#[from] ExportError),
}

/// Where an audit or export is; drawn as a progress bar on a terminal.
pub trait Progress: Sync {
    /// The number of entries expected in all, when known.
    fn set_total(&self, total: u64);
    /// `n` more entries done.
    fn advance(&self, n: u64);
    /// Done; clear the display.
    fn finish(&self);
}

/// Progress that shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// A progress bar on stderr.
#[derive(Debug)]
pub struct Bar(indicatif::ProgressBar);

impl Progress for Bar {
    fn set_total(&self, total: u64) {
        self.0.set_length(total);
        self.0.set_style(
            indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} entries ({per_sec}, {eta} left)",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
    }

    fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

/// A progress bar labelled `what` when both stdout and stderr are terminals; otherwise (a
/// pipe, a file, CI) nothing is drawn at all.
pub fn progress_for_terminal(what: &str) -> Box<dyn Progress> {
    if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new_spinner().with_message(what.to_string());
        bar.set_style(
            indicatif::ProgressStyle::with_template("{msg} {spinner} {pos} entries ({per_sec})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Box::new(Bar(bar))
    } else {
        Box::new(Silent)
    }
}

/// Audits an export file.
///
/// # Errors
/// [`AuditError::Io`] when the file cannot be read; a malformed file is a finding, not an
/// error.
pub fn audit_file(
    path: &Path,
    options: AuditOptions,
    progress: &dyn Progress,
) -> Result<AuditReport, AuditError> {
    let io = |source| AuditError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    audit_reader(
        std::io::BufReader::with_capacity(1 << 20, file),
        options,
        progress,
    )
    .map_err(|e| match e {
        AuditError::Io { source, .. } => io(source),
        e => e,
    })
}

/// Audits an export read from `input`, streaming: memory holds one chunk of entries and the
/// ledger's state, not the file.
///
/// # Errors
/// [`AuditError::Io`] when reading fails.
pub fn audit_reader<R: Read>(
    input: R,
    options: AuditOptions,
    progress: &dyn Progress,
) -> Result<AuditReport, AuditError> {
    let mut reader = ExportReader::new(input);
    let mut auditor = Auditor::new(options);
    let mut unreported = 0;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                if matches!(record, Record::Entry(_)) {
                    unreported += 1;
                    if unreported == 1024 {
                        progress.advance(unreported);
                        unreported = 0;
                    }
                }
                auditor.record(record);
            }
            Ok(None) => break,
            Err(ExportError::Io { path, source }) => return Err(AuditError::Io { path, source }),
            Err(e) => {
                auditor.malformed(&e);
                break;
            }
        }
    }
    progress.advance(unreported);
    let report = auditor.finish();
    progress.finish();
    Ok(report)
}

/// Audits what the node behind `client` holds: its trust list, every log up to the heads it
/// reports when the audit begins (read in bounded batches), and its fork evidence. The same
/// node exported at the same moment audits the same.
///
/// # Errors
/// [`AuditError::Node`] or [`AuditError::Export`] when the node fails or contradicts itself.
pub async fn audit_node(
    client: &Client,
    options: AuditOptions,
    progress: &dyn Progress,
) -> Result<AuditReport, AuditError> {
    let trust_list = client.trust_list().await?;
    let heads = export::export_order(client.heads().await?);
    progress.set_total(heads.iter().map(|h| h.seq).sum());
    let mut auditor = Auditor::new(options);
    auditor.record(Record::TrustList(trust_list));
    for head in heads {
        auditor.record(Record::Log(head.clone()));
        let mut next = 1;
        while next <= head.seq {
            let batch = export::read_batch(client, &head, next).await?;
            next += batch.len() as u64;
            progress.advance(batch.len() as u64);
            for signed in batch {
                auditor.record(Record::Entry(signed));
            }
        }
    }
    for evidence in client.forks().await? {
        auditor.record(Record::Fork(evidence));
    }
    let report = auditor.finish();
    progress.finish();
    Ok(report)
}

/// An accepted intake, kept for the rules checked once every log is replayed.
#[derive(Debug, Clone)]
struct Accepted {
    at: EntryRef,
    time_ms: i64,
    intake: pb::IntakeAccepted,
}

/// The log being replayed.
#[derive(Debug)]
struct Cursor {
    head: Head,
    summary: LogSummary,
    next: u64,
    /// Seq, clock and hash of the last checked entry.
    last: Option<(u64, i64, Hash)>,
    broken: bool,
}

/// An entry whose signature was checked, or why it could not be.
type Checked = Result<Preverified, Refused>;

/// Why an entry failed before it could be placed.
#[derive(Debug)]
struct Refused {
    kind: FindingKind,
    detail: String,
    hash: Hash,
}

/// The replay, once the trust list holds.
#[derive(Debug)]
struct Replay {
    ledger: Ledger,
    /// The ledger as it stood (regulator's log only) after each regulator entry that changed
    /// membership or rules, by that entry's seq; seq 0 is the trust list alone.
    snapshots: Vec<(u64, Arc<Ledger>)>,
    cursor: Option<Cursor>,
    buffer: Vec<SignedEntry>,
    /// A chunk whose signatures are checked, waiting to be placed while the next is checked.
    checked: Option<Vec<Checked>>,
    logs: Vec<LogSummary>,
    frozen_claims: Vec<String>,
    /// Where each log failed an integrity check: nothing from there on was replayed.
    broken_at: BTreeMap<String, u64>,
    accepted: Vec<Accepted>,
    positives: Vec<String>,
    totals: Totals,
}

/// Replays records pushed one by one (from a file or a node) and collects findings. Entries
/// are buffered and checked [`CHUNK`] at a time.
#[derive(Debug)]
pub struct Auditor {
    options: AuditOptions,
    network: String,
    replay: Option<Replay>,
    findings: Vec<Finding>,
    stopped: bool,
}

fn reason_name(code: i32) -> &'static str {
    pb::Reason::try_from(code).map_or("UNKNOWN_REASON", |r| r.as_str_name())
}

impl Auditor {
    /// An auditor that has seen nothing yet.
    pub fn new(options: AuditOptions) -> Self {
        Self {
            options,
            network: String::new(),
            replay: None,
            findings: Vec::new(),
            stopped: false,
        }
    }

    fn find(&mut self, kind: FindingKind, detail: String, entries: Vec<EntryRef>) {
        self.findings.push(Finding {
            kind,
            detail,
            entries,
        });
    }

    /// Records that the input is malformed at some point; nothing after it is read.
    pub fn malformed(&mut self, error: &ExportError) {
        self.end_log();
        self.find(FindingKind::ExportMalformed, error.to_string(), Vec::new());
        self.stopped = true;
    }

    /// Takes the next record of the ledger, in export order.
    pub fn record(&mut self, record: Record) {
        if self.stopped {
            return;
        }
        match record {
            Record::TrustList(signed) => self.trust_list(&signed),
            Record::Log(head) => self.begin_log(head),
            Record::Entry(signed) => {
                let Some(replay) = self.replay.as_mut() else {
                    return;
                };
                if replay.cursor.is_none() {
                    let e = ExportError::Order {
                        offset: 0,
                        message: "an entry outside any log".into(),
                    };
                    self.malformed(&e);
                    return;
                }
                replay.buffer.push(signed);
                if replay.buffer.len() >= CHUNK {
                    self.check_chunk(false);
                }
            }
            Record::Fork(evidence) => {
                self.end_log();
                self.fork(&evidence);
            }
        }
    }

    fn trust_list(&mut self, signed: &SignedTrustList) {
        match Membership::from_trust_list(signed, &self.options.regulator_key) {
            Ok(membership) => {
                self.network = membership.network().to_string();
                let ledger = Ledger::new(membership);
                self.replay = Some(Replay {
                    snapshots: vec![(0, Arc::new(ledger.clone()))],
                    ledger,
                    cursor: None,
                    buffer: Vec::new(),
                    checked: None,
                    logs: Vec::new(),
                    frozen_claims: Vec::new(),
                    broken_at: BTreeMap::new(),
                    accepted: Vec::new(),
                    positives: Vec::new(),
                    totals: Totals::default(),
                });
            }
            Err(e) => {
                let detail = format!(
                    "{e} (pinned regulator key {}); nothing can be checked without it",
                    huren_proto::keyfile::public_hex(&self.options.regulator_key)
                );
                self.find(FindingKind::TrustListRefused, detail, Vec::new());
                self.stopped = true;
            }
        }
    }

    fn begin_log(&mut self, head: Head) {
        self.end_log();
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        replay.cursor = Some(Cursor {
            summary: LogSummary {
                log: head.log.clone(),
                declared: head.seq,
                ..Default::default()
            },
            head,
            next: 1,
            last: None,
            broken: false,
        });
    }

    /// Checks what is buffered and closes the current log: its header must match what was
    /// replayed.
    fn end_log(&mut self) {
        self.check_chunk(true);
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        let Some(cursor) = replay.cursor.take() else {
            return;
        };
        let head = &cursor.head;
        let mut mismatch = None;
        if !cursor.broken {
            let last = cursor.last.map(|(_, _, h)| h);
            if cursor.summary.checked != head.seq {
                mismatch = Some(format!(
                    "log {}: the header declares {} entries, {} were found",
                    head.log, head.seq, cursor.summary.checked
                ));
            } else if head.seq > 0 && last.map(|h| h.to_vec()) != Some(head.hash.clone()) {
                mismatch = Some(format!(
                    "log {}: the header's head hash {} is not the hash of entry {}",
                    head.log,
                    crate::render::short_hash(&head.hash),
                    head.seq
                ));
            }
        }
        if head.frozen {
            replay.frozen_claims.push(head.log.clone());
        }
        let at = cursor.last.map(|(seq, _, hash)| EntryRef {
            log: head.log.clone(),
            seq,
            hash,
        });
        replay.logs.push(cursor.summary);
        if let Some(detail) = mismatch {
            self.find(FindingKind::HeadMismatch, detail, at.into_iter().collect());
        }
    }

    /// Checks the buffered entries' signatures on all cores while the chunk checked before
    /// them is placed (admitted and replayed in order) on the side: the two overlap, so both
    /// cores stay busy. With `flush`, everything is placed before it returns, as a log's end
    /// needs: the next log's keys may depend on the regulator entries placed here.
    fn check_chunk(&mut self, flush: bool) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        let chunk = std::mem::take(&mut replay.buffer);
        let ready = replay.checked.take();
        if chunk.is_empty() && ready.is_none() {
            return;
        }
        let membership = replay.ledger.membership().clone();
        let (checked, ()) = rayon::join(
            || {
                chunk
                    .into_par_iter()
                    .map(|signed| {
                        let copy = signed.clone();
                        ledger::preverify(&membership, signed)
                            .map_err(|e| refused(&membership, &copy, e))
                    })
                    .collect::<Vec<Checked>>()
            },
            || {
                for result in ready.into_iter().flatten() {
                    self.place(result);
                }
            },
        );
        if flush {
            for result in checked {
                self.place(result);
            }
        } else if let Some(replay) = self.replay.as_mut() {
            replay.checked = Some(checked);
        }
    }

    fn place(&mut self, result: Result<Preverified, Refused>) {
        let options = self.options;
        let replay = self
            .replay
            .as_mut()
            .expect("entries are checked during a replay");
        let cursor = replay.cursor.as_mut().expect("entries belong to a log");
        let log = cursor.head.log.clone();
        let expected = cursor.next;
        cursor.next += 1;
        if cursor.broken {
            cursor.summary.unchecked += 1;
            return;
        }
        let here = |hash| EntryRef {
            log: log.clone(),
            seq: expected,
            hash,
        };
        let checked = match result {
            Ok(c) => c,
            Err(r) => {
                cursor.broken = true;
                replay.broken_at.insert(log.clone(), expected);
                cursor.summary.unchecked += 1;
                let detail = format!("{log} #{expected}: {}", r.detail);
                let at = here(r.hash);
                self.find(r.kind, detail, vec![at]);
                return;
            }
        };
        let hash = checked.verified.hash;
        let (claimed_log, claimed_seq) = (
            checked.verified.entry.log.clone(),
            checked.verified.entry.seq,
        );
        let failure = if claimed_log != log || claimed_seq != expected {
            Some((
                FindingKind::WrongSeq,
                format!("{log} #{expected}: the entry here is {claimed_log} #{claimed_seq}"),
            ))
        } else {
            match replay.ledger.admit_preverified(checked, None) {
                Ok(Admission::Next(verified)) => {
                    let pred = cursor.last;
                    cursor.last = Some((expected, verified.entry.time_ms, hash));
                    cursor.summary.checked += 1;
                    cursor.summary.head = Some(hash);
                    *cursor
                        .summary
                        .kinds
                        .entry(
                            verified
                                .entry
                                .event
                                .as_ref()
                                .and_then(|e| e.kind.as_ref())
                                .map_or("none", Kind::name),
                        )
                        .or_insert(0) += 1;
                    self.apply(&verified, pred, &options);
                    return;
                }
                Ok(other) => Some((
                    FindingKind::WrongSeq,
                    format!("{log} #{expected}: not the next entry of the log ({other:?})"),
                )),
                Err(AdmitError::Format(FormatError::BrokenChain(m))) => {
                    Some((FindingKind::BrokenLink, m))
                }
                Err(AdmitError::Invalid(e)) => {
                    Some((FindingKind::InvalidEvent, format!("{log} #{expected}: {e}")))
                }
                Err(AdmitError::Misplaced(m)) => {
                    Some((FindingKind::InvalidEvent, format!("{log} #{expected}: {m}")))
                }
                Err(e) => Some((FindingKind::BadSignature, format!("{log} #{expected}: {e}"))),
            }
        };
        if let Some((kind, detail)) = failure {
            cursor.broken = true;
            replay.broken_at.insert(log.clone(), expected);
            cursor.summary.unchecked += 1;
            self.find(kind, detail, vec![here(hash)]);
        }
    }

    /// Replays an admitted entry: clocks, counts, the bookkeeping of the rules, the regulator's
    /// changes to membership, then the shared projection.
    fn apply(
        &mut self,
        verified: &VerifiedEntry,
        pred: Option<(u64, i64, Hash)>,
        options: &AuditOptions,
    ) {
        let entry = &verified.entry;
        let at = EntryRef {
            log: entry.log.clone(),
            seq: entry.seq,
            hash: verified.hash,
        };
        let mut found = Vec::new();
        if let Some((seq, time_ms, hash)) = pred {
            if entry.time_ms < time_ms.saturating_sub(options.clock_tolerance_ms) {
                found.push(Finding {
                    kind: FindingKind::ClockRegression,
                    detail: format!(
                        "{} #{} is signed at {}, {} min before its predecessor (allowed: {} min)",
                        entry.log,
                        entry.seq,
                        huren_proto::time::cst(entry.time_ms),
                        (time_ms - entry.time_ms) / MINUTE_MS,
                        options.clock_tolerance_ms / MINUTE_MS
                    ),
                    entries: vec![
                        EntryRef {
                            log: entry.log.clone(),
                            seq,
                            hash,
                        },
                        at.clone(),
                    ],
                });
            }
        }
        if entry.time_ms > options.now_ms.saturating_add(options.future_skew_ms) {
            found.push(Finding {
                kind: FindingKind::ClockFuture,
                detail: format!(
                    "{} #{} is signed at {}, after the audit's clock ({}) plus {} s",
                    entry.log,
                    entry.seq,
                    huren_proto::time::cst(entry.time_ms),
                    huren_proto::time::cst(options.now_ms),
                    options.future_skew_ms / 1000
                ),
                entries: vec![at.clone()],
            });
        }

        let replay = self.replay.as_mut().expect("replaying");
        let kind = entry.event.as_ref().and_then(|e| e.kind.as_ref());
        let t = &mut replay.totals;
        t.entries += 1;
        match kind {
            Some(Kind::ReportIssued(report)) => {
                t.reports += 1;
                if report.result == TestResult::Positive as i32 {
                    t.positives += 1;
                    replay.positives.push(ids::report_id(&entry.log, entry.seq));
                } else {
                    t.passes += 1;
                }
            }
            Some(Kind::ReportRevoked(_)) => t.revocations += 1,
            Some(Kind::IntakeAccepted(intake)) => {
                t.intakes_accepted += 1;
                replay.accepted.push(Accepted {
                    at: at.clone(),
                    time_ms: entry.time_ms,
                    intake: intake.clone(),
                });
            }
            Some(Kind::IntakeRejected(_)) => t.intakes_rejected += 1,
            Some(Kind::DisposalRecorded(_)) => t.disposals += 1,
            _ => {}
        }

        // The regulator's changes: an event with no effect is reported; one that takes effect
        // leaves a snapshot for judging intakes later.
        let changes_membership = matches!(
            kind,
            Some(Kind::MarketAdmitted(_) | Kind::KeyRotated(_) | Kind::MarketSuspended(_))
        );
        if changes_membership {
            if let Err(why) = replay.ledger.membership().clone().apply(entry) {
                found.push(Finding {
                    kind: FindingKind::RegulatorEventNoEffect,
                    detail: format!("{} #{}: {why}", entry.log, entry.seq),
                    entries: vec![at.clone()],
                });
            }
        }
        replay.ledger.apply(verified);
        if entry.log == REGULATOR_LOG
            && (changes_membership || matches!(kind, Some(Kind::RulesPublished(_))))
        {
            replay
                .snapshots
                .push((entry.seq, Arc::new(replay.ledger.clone())));
        }
        self.findings.extend(found);
    }

    fn fork(&mut self, evidence: &ForkEvidence) {
        let Some(replay) = self.replay.as_mut() else {
            return;
        };
        let side = |s: &Option<SignedEntry>| {
            let s = s.as_ref()?;
            let e = format::decode_entry(&s.body).ok();
            Some(EntryRef {
                log: e.as_ref().map_or(String::new(), |e| e.log.clone()),
                seq: e.as_ref().map_or(0, |e| e.seq),
                hash: format::entry_hash(&s.body),
            })
        };
        let entries: Vec<EntryRef> = [side(&evidence.first), side(&evidence.second)]
            .into_iter()
            .flatten()
            .collect();
        match replay.ledger.check_fork(evidence) {
            Ok((log, seq)) => {
                if !replay.ledger.record_fork(evidence.clone()) {
                    // The same evidence twice: the first copy was reported.
                    return;
                }
                replay.totals.forks += 1;
                let held = replay.ledger.hash_at(&log, seq);
                let which = match held {
                    Some(h) if entries.iter().any(|e| e.hash == h) => {
                        format!("the log here holds {}", crate::render::short_hash(&h))
                    }
                    Some(_) => "the log here holds a third entry at that seq".to_string(),
                    None => "the log here does not reach that seq".to_string(),
                };
                let detail = format!("{log} signed two different entries at seq {seq}; {which}");
                self.find(FindingKind::Fork, detail, entries);
            }
            Err(why) => {
                self.find(
                    FindingKind::BadForkEvidence,
                    format!("fork evidence does not hold: {why}"),
                    entries,
                );
            }
        }
    }

    /// Ends the replay and applies the rules that need every log: intakes, overdraws,
    /// disposals; then returns the report.
    pub fn finish(mut self) -> AuditReport {
        self.end_log();
        let options = self.options;
        let Some(mut replay) = self.replay.take() else {
            if self.findings.is_empty() {
                self.find(
                    FindingKind::ExportMalformed,
                    "no trust list was found".into(),
                    Vec::new(),
                );
            }
            return AuditReport {
                network: self.network,
                options,
                logs: Vec::new(),
                totals: Totals::default(),
                findings: self.findings,
            };
        };
        for log in &replay.frozen_claims {
            if replay.ledger.frozen_at(log).is_none() {
                self.findings.push(Finding {
                    kind: FindingKind::HeadMismatch,
                    detail: format!(
                        "log {log}'s header says it is frozen by a fork, but no valid fork \
                         evidence for it was found"
                    ),
                    entries: Vec::new(),
                });
            }
        }
        // The rules read every log; on a file that stopped being readable they would only
        // report what is missing.
        if !self.stopped {
            let intakes = intake_findings(&replay);
            self.findings.extend(intakes);
            let overdraws = overdraw_findings(&replay, options.now_ms);
            self.findings.extend(overdraws);
            let disposals = disposal_findings(&mut replay, &options);
            self.findings.extend(disposals);
        }
        AuditReport {
            network: self.network,
            options,
            logs: replay.logs,
            totals: replay.totals,
            findings: self.findings,
        }
    }
}

/// Classifies an entry that failed [`ledger::preverify`].
fn refused(membership: &Membership, signed: &SignedEntry, error: AdmitError) -> Refused {
    let hash = format::entry_hash(&signed.body);
    let (kind, detail) = match error {
        AdmitError::Format(FormatError::BadSignature(why)) => {
            // Signed by another key the market has held (before or after a rotation)?
            let claimed = format::decode_entry(&signed.body).ok();
            let other = claimed.as_ref().and_then(|e| {
                let current = membership.key_for(&e.log, e.seq).ok();
                let keys = membership.keys_of(&e.log);
                let n = keys.len();
                keys.into_iter()
                    .position(|k| {
                        Some(k) != current && format::verify_signature(&k, signed).is_ok()
                    })
                    .map(|i| (e, i + 1, n))
            });
            match other {
                Some((e, i, n)) => (
                    FindingKind::RotatedOutKey,
                    format!(
                        "signed with {}'s key {i} of {n}, which is not the key in force at seq {}",
                        e.log, e.seq
                    ),
                ),
                None => (FindingKind::BadSignature, why),
            }
        }
        AdmitError::Membership(MembershipError::UnknownAuthor(m)) => (
            FindingKind::NonMember,
            format!("signed as {m}, which is not a member of the network"),
        ),
        AdmitError::Membership(e @ MembershipError::Suspended { .. }) => {
            (FindingKind::SuspendedSigner, e.to_string())
        }
        AdmitError::Misplaced(m) => (FindingKind::Undecodable, m),
        e => (FindingKind::Undecodable, e.to_string()),
    };
    Refused { kind, detail, hash }
}

impl Replay {
    /// The ledger as it stood after regulator entry `seq` (membership and rules only).
    fn snapshot(&self, seq: u64) -> &Ledger {
        let i = self.snapshots.partition_point(|(s, _)| *s <= seq);
        &self.snapshots[i.saturating_sub(1)].1
    }

    fn entry_ref(&self, log: &str, seq: u64) -> EntryRef {
        EntryRef {
            log: log.to_string(),
            seq,
            hash: self.ledger.hash_at(log, seq).unwrap_or_default(),
        }
    }
}

/// Rules (a) and (d): every accepted intake, judged with what the receiving market had seen.
fn intake_findings(replay: &Replay) -> Vec<Finding> {
    let per_intake: Vec<Vec<Finding>> = replay
        .accepted
        .par_iter()
        .map(|a| judge_intake(replay, a))
        .collect();
    per_intake.into_iter().flatten().collect()
}

fn judge_intake(replay: &Replay, a: &Accepted) -> Vec<Finding> {
    let intake = &a.intake;
    let id = &intake.report_id;
    let Some((record, issued)) = replay
        .ledger
        .record(id)
        .and_then(|r| Some((r, r.issued.as_ref()?)))
    else {
        // A report in the part of its log after an integrity failure is unchecked, not
        // missing: that failure is the finding.
        let unchecked = ids::parse_report_id(id).is_ok_and(|(log, seq)| {
            replay
                .broken_at
                .get(&log)
                .is_some_and(|broken| *broken <= seq)
        });
        if unchecked {
            return Vec::new();
        }
        return vec![Finding {
            kind: FindingKind::InvalidIntake,
            detail: format!(
                "{} #{} accepted {id}, which is not a report in the ledger",
                a.at.log, a.at.seq
            ),
            entries: vec![a.at.clone()],
        }];
    };
    let report_at = replay.entry_ref(&issued.market, issued.seq);
    let mut out = Vec::new();

    // (a) The verdict with the membership and rules of the regulator's log as far as the
    // market had it; revocations and draws are rules (d) and (b).
    let view = replay.snapshot(intake.regulator_seq_seen);
    let lot = Lot {
        product: intake.product.clone(),
        category: None,
        quantity: intake.quantity.clone().unwrap_or_default(),
        at_ms: a.time_ms,
    };
    let verdict = view.verdict_on_issued(issued, &lot);
    let mut problems: Vec<String> = verdict
        .reasons
        .iter()
        .map(|r| format!("{} ({})", reason_name(r.code), r.detail))
        .collect();
    if intake.rules_version != view.rules().version {
        problems.push(format!(
            "it records rules version {}, but version {} was in force at regulator #{}",
            intake.rules_version,
            view.rules().version,
            intake.regulator_seq_seen
        ));
    }
    if intake.issuer_seq_seen < issued.seq {
        problems.push(format!(
            "it records having {}'s log up to #{} only, before the report (#{})",
            issued.market, intake.issuer_seq_seen, issued.seq
        ));
    }
    if !problems.is_empty() {
        out.push(Finding {
            kind: FindingKind::InvalidIntake,
            detail: format!(
                "{} #{} accepted {id} at {} although {}",
                a.at.log,
                a.at.seq,
                huren_proto::time::cst(a.time_ms),
                problems.join("; ")
            ),
            entries: vec![a.at.clone(), report_at.clone()],
        });
    }

    // (d) A revocation by the issuer or the regulator that the market had when it decided.
    let known = record.revocations.iter().find(|r| {
        (r.by == issued.market && r.seq <= intake.issuer_seq_seen)
            || (r.by == REGULATOR_LOG && r.seq <= intake.regulator_seq_seen)
    });
    if let Some(r) = known {
        out.push(Finding {
            kind: FindingKind::IntakeAfterRevocation,
            detail: format!(
                "{} #{} accepted {id} with {}'s log up to #{} in hand, which holds its \
                 revocation at #{} ({})",
                a.at.log,
                a.at.seq,
                r.by,
                if r.by == REGULATOR_LOG {
                    intake.regulator_seq_seen
                } else {
                    intake.issuer_seq_seen
                },
                r.seq,
                r.reason
            ),
            entries: vec![a.at.clone(), replay.entry_ref(&r.by, r.seq), report_at],
        });
    }
    out
}

/// Rule (b): reports whose accepted intakes together draw more than the lot.
fn overdraw_findings(replay: &Replay, now_ms: i64) -> Vec<Finding> {
    let ids: BTreeSet<&str> = replay
        .accepted
        .iter()
        .map(|a| a.intake.report_id.as_str())
        .collect();
    let mut out = Vec::new();
    for id in ids {
        let Some(state) = replay.ledger.state(id, now_ms) else {
            continue;
        };
        if !state.overdrawn {
            continue;
        }
        let record = replay.ledger.record(id).expect("a state has a record");
        let issued = record.issued.as_ref().expect("a state has a report");
        let unit = issued
            .report
            .quantity
            .as_ref()
            .map_or("", |q| q.unit.as_str());
        let show = |base| {
            huren_proto::quantity::format_in(base, unit).map_or(base.to_string(), |q| q.amount)
        };
        let mut entries = vec![replay.entry_ref(&issued.market, issued.seq)];
        entries.extend(
            record
                .intakes
                .iter()
                .filter(|i| i.accepted)
                .map(|i| replay.entry_ref(&i.market, i.seq)),
        );
        out.push(Finding {
            kind: FindingKind::Overdraw,
            detail: format!(
                "{id}: accepted intakes draw {} {unit} from a lot of {} {unit}",
                show(state.drawn),
                show(issued.lot.base)
            ),
            entries,
        });
    }
    out
}

/// Rule (c): positives without the issuer's disposal record within the deadline. A positive
/// revoked (by its issuer or the regulator) within the deadline needs none.
fn disposal_findings(replay: &mut Replay, options: &AuditOptions) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut pending = 0;
    for id in &replay.positives {
        let Some(record) = replay.ledger.record(id) else {
            continue;
        };
        let Some(issued) = record.issued.as_ref() else {
            continue;
        };
        let deadline = issued.time_ms.saturating_add(options.disposal_deadline_ms);
        let by_issuer: Vec<_> = record
            .disposals
            .iter()
            .filter(|d| d.by == issued.market)
            .collect();
        if by_issuer.iter().any(|d| d.time_ms <= deadline) {
            continue;
        }
        let revoked = record
            .revocations
            .iter()
            .any(|r| (r.by == issued.market || r.by == REGULATOR_LOG) && r.time_ms <= deadline);
        if revoked {
            continue;
        }
        if options.now_ms < deadline {
            pending += 1;
            continue;
        }
        let late = by_issuer
            .first()
            .map(|d| {
                format!(
                    "; it was recorded late, at {}",
                    huren_proto::time::cst(d.time_ms)
                )
            })
            .unwrap_or_default();
        let mut entries = vec![replay.entry_ref(&issued.market, issued.seq)];
        entries.extend(by_issuer.iter().map(|d| replay.entry_ref(&d.by, d.seq)));
        out.push(Finding {
            kind: FindingKind::PositiveNotDisposed,
            detail: format!(
                "{id} is positive and issued at {}; no disposal by {} was recorded by {} \
                 ({} h){late}",
                huren_proto::time::cst(issued.time_ms),
                issued.market,
                huren_proto::time::cst(deadline),
                options.disposal_deadline_ms / HOUR_MS
            ),
            entries,
        });
    }
    replay.totals.positives_pending = pending;
    out
}
