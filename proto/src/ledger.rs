//! The ledger projection: the state that follows from every market's log (which reports
//! exist, whether they were revoked, what was drawn from each lot and where it went), and the
//! admission check that every entry passes before any node stores it or any auditor counts
//! it. The node keeps one live; `huren-node rebuild` and the auditor build one by replay;
//! because all three run this code, they cannot disagree.
//!
//! State never depends on the order in which different logs arrive: an intake that arrives
//! before the report it draws on is kept and counted once the report is known.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::format::{self, FormatError, Hash, VerifiedEntry};
use crate::ids::{self, REGULATOR_LOG};
use crate::pb::{
    event::Kind, DisposalRecorded, Entry, ForkEvidence, Quantity, ReportIssued, Rules, SignedEntry,
    VerdictReason,
};
use crate::quantity::{self, Amount};
use crate::trust::{Membership, MembershipError};
use crate::validate::{self, FieldError, TimeBounds};

/// Why an entry may not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// Signature, encoding, size or chain.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The author may not sign this entry.
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// The event is malformed.
    #[error("invalid event: {0}")]
    Invalid(#[from] FieldError),
    /// The event does not belong in this log (e.g. a report in the regulator's log).
    #[error("{0}")]
    Misplaced(String),
    /// The author's log is frozen by a fork at `seq`.
    #[error("log {log} is frozen by a fork at seq {seq}")]
    Frozen {
        /// The forked log.
        log: String,
        /// The forked sequence number.
        seq: u64,
    },
}

/// What admitting an entry found.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// The next entry of its log, verified: store it, then [`Ledger::apply`] it.
    Next(VerifiedEntry),
    /// The same entry is already held.
    Duplicate,
    /// A different, validly signed entry at a sequence number already held: a fork.
    Conflict {
        /// The entry already held has this hash.
        held: Hash,
        /// The newcomer.
        incoming: VerifiedEntry,
    },
    /// A validly signed entry beyond the next one; the entries between are missing.
    Gap {
        /// Our head of that log.
        head: u64,
        /// The entry's sequence number.
        seq: u64,
    },
}

#[derive(Debug, Clone, Default)]
struct LogState {
    hashes: Vec<Hash>,
    last_time_ms: i64,
    frozen_at: Option<u64>,
}

/// A report as issued, with where it sits.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    /// Issuing market.
    pub market: String,
    /// Its seq in the issuer's log.
    pub seq: u64,
    /// Issuer's clock at signing, UTC ms.
    pub time_ms: i64,
    /// The report.
    pub report: Arc<ReportIssued>,
    /// The lot in base units.
    pub lot: Amount,
}

/// A revocation entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The log it is in (issuer or regulator).
    pub by: String,
    /// Its seq there.
    pub seq: u64,
    /// Author's clock, UTC ms.
    pub time_ms: i64,
    /// Why.
    pub reason: String,
}

/// An intake decision about a report, from some market's log.
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeRecord {
    /// Receiving market.
    pub market: String,
    /// Seq in the receiving market's log.
    pub seq: u64,
    /// Receiving market's clock, UTC ms.
    pub time_ms: i64,
    /// Accepted or rejected.
    pub accepted: bool,
    /// As written in the entry.
    pub quantity: Option<Quantity>,
    /// Parsed; `None` if unparseable or absent.
    pub amount: Option<Amount>,
    /// Product claimed for the lot.
    pub product: String,
    /// Rules version the decision used.
    pub rules_version: u32,
    /// Reasons, for a rejection.
    pub reasons: Vec<VerdictReason>,
    /// Issuer head the market held when deciding.
    pub issuer_seq_seen: u64,
    /// Regulator head the market held when deciding.
    pub regulator_seq_seen: u64,
}

/// A disposal record.
#[derive(Debug, Clone, PartialEq)]
pub struct Disposal {
    /// The log it is in.
    pub by: String,
    /// Its seq there.
    pub seq: u64,
    /// Author's clock, UTC ms.
    pub time_ms: i64,
    /// The record.
    pub record: DisposalRecorded,
}

/// Everything the logs say about one report id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportRecord {
    /// The report itself, once its issuer's entry is held.
    pub issued: Option<Issued>,
    /// Revocations, in order of arrival (only those by the issuer or regulator count).
    pub revocations: Vec<Revocation>,
    /// Intake decisions at every market.
    pub intakes: Vec<IntakeRecord>,
    /// Disposal records.
    pub disposals: Vec<Disposal>,
}

/// Derived status of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A pass in its window with quantity left.
    Valid,
    /// A pass whose window closed.
    Expired,
    /// Withdrawn.
    Revoked,
    /// Positive, no disposal yet.
    PositivePendingDisposal,
    /// Positive, disposed of.
    PositiveDisposed,
    /// Fully drawn.
    Exhausted,
    /// Drawn beyond its lot.
    Overdrawn,
    /// The issuer's log is forked.
    Forked,
}

/// A report's derived state at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportState {
    /// The status.
    pub status: Status,
    /// Valid until (exclusive), UTC ms; `None` for an unknown category.
    pub valid_until_ms: Option<i64>,
    /// Base units drawn by accepted intakes.
    pub drawn: u64,
    /// Base units left (0 when overdrawn).
    pub remaining: u64,
    /// Accepted intakes draw more than the lot.
    pub overdrawn: bool,
    /// The revocation that counts, if any.
    pub revoked: Option<Revocation>,
}

/// What a verdict is asked about: a lot of goods at an instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Lot {
    /// Product name on the goods.
    pub product: String,
    /// Category code, if the clerk states one.
    pub category: Option<String>,
    /// How much of the report's lot this intake draws.
    pub quantity: Quantity,
    /// The instant to judge at, UTC ms.
    pub at_ms: i64,
}

/// A verdict: valid, or every reason it is not.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// True when there are no reasons.
    pub valid: bool,
    /// Every reason, in a fixed order.
    pub reasons: Vec<VerdictReason>,
    /// Rules version used.
    pub rules_version: u32,
    /// Valid until (exclusive), UTC ms, when known.
    pub valid_until_ms: Option<i64>,
    /// What is left of the lot before this intake, base units, when known.
    pub remaining: Option<u64>,
}

/// An entry whose signature holds under the key membership assigned when it was checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Preverified {
    /// The verified entry.
    pub verified: VerifiedEntry,
    key: [u8; 32],
}

/// How the verdict knows the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knowledge {
    /// Everything this ledger holds: revocations, intakes, forks.
    Ledger,
    /// Only a portable token and the trust list (offline): revocation and other markets'
    /// draws are unknown and not judged.
    TokenOnly,
}

/// The projection of all logs, with the admission check.
#[derive(Debug, Clone)]
pub struct Ledger {
    membership: Membership,
    rules: Rules,
    logs: BTreeMap<String, LogState>,
    reports: HashMap<String, ReportRecord>,
    newest: BTreeSet<(i64, String)>,
    requests: HashMap<(String, String), u64>,
    forks: Vec<ForkEvidence>,
    by_lot: HashMap<String, Vec<String>>,
    by_bag: HashMap<String, Vec<String>>,
}

impl Ledger {
    /// An empty ledger over a membership, with the built-in rules.
    pub fn new(membership: Membership) -> Self {
        Self {
            membership,
            rules: crate::rules::defaults(),
            logs: BTreeMap::new(),
            reports: HashMap::new(),
            newest: BTreeSet::new(),
            requests: HashMap::new(),
            forks: Vec::new(),
            by_lot: HashMap::new(),
            by_bag: HashMap::new(),
        }
    }

    /// Current membership.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Rules in force.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Head of a log: (seq, hash); (0, zeros) for an empty or unknown log.
    pub fn head(&self, log: &str) -> (u64, Hash) {
        match self.logs.get(log) {
            Some(state) if !state.hashes.is_empty() => (
                state.hashes.len() as u64,
                *state.hashes.last().expect("checked non-empty"),
            ),
            _ => (0, format::GENESIS_PREV_HASH),
        }
    }

    /// Hash of entry `seq` of `log`, if held.
    pub fn hash_at(&self, log: &str, seq: u64) -> Option<Hash> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.logs.get(log)?.hashes.get(index).copied()
    }

    /// Every log that has entries or is a member's, with its head and frozen mark.
    pub fn heads(&self) -> Vec<(String, u64, Hash, Option<u64>)> {
        let mut names: BTreeSet<String> = self.membership.logs().into_iter().collect();
        names.extend(self.logs.keys().cloned());
        names
            .into_iter()
            .map(|log| {
                let (seq, hash) = self.head(&log);
                let frozen = self.logs.get(&log).and_then(|s| s.frozen_at);
                (log, seq, hash, frozen)
            })
            .collect()
    }

    /// The seq at which `log` is frozen by a fork, if it is.
    pub fn frozen_at(&self, log: &str) -> Option<u64> {
        self.logs.get(log).and_then(|s| s.frozen_at)
    }

    /// Recorded fork evidence.
    pub fn forks(&self) -> &[ForkEvidence] {
        &self.forks
    }

    /// The seq an earlier write with this request id produced in `log`, if any.
    pub fn request(&self, log: &str, request_id: &str) -> Option<u64> {
        self.requests
            .get(&(log.to_string(), request_id.to_string()))
            .copied()
    }

    /// Number of reports whose issuing entry is held.
    pub fn report_count(&self) -> usize {
        self.newest.len()
    }

    /// Report ids, newest first by issuer clock, optionally of one market.
    pub fn newest_reports<'a>(
        &'a self,
        market: Option<&'a str>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.newest
            .iter()
            .rev()
            .map(|(_, id)| id.as_str())
            .filter(move |id| {
                market.is_none_or(|m| id.rsplit_once('-').is_some_and(|(l, _)| l == m))
            })
    }

    /// Reports issued for a lot id, in any market, in the order they arrived.
    pub fn reports_for_lot(&self, lot_id: &str) -> &[String] {
        self.by_lot.get(lot_id).map_or(&[], Vec::as_slice)
    }

    /// Reports issued for a sealed sample bag, in any market, in the order they arrived.
    pub fn reports_for_bag(&self, bag_code: &str) -> &[String] {
        self.by_bag.get(bag_code).map_or(&[], Vec::as_slice)
    }

    /// Everything known about a report id.
    pub fn record(&self, id: &str) -> Option<&ReportRecord> {
        self.reports.get(id)
    }

    /// Checks an entry for storage: the author's key at that seq, the strict signature, the
    /// format, the event's fields and place, and its position relative to the log's head.
    /// `bounds`, when given, refuses entries whose clock is beyond now plus skew.
    ///
    /// # Errors
    /// [`AdmitError`] for anything that must not be stored.
    pub fn admit(
        &self,
        signed: SignedEntry,
        bounds: Option<TimeBounds>,
    ) -> Result<Admission, AdmitError> {
        let checked = self.preverify(signed)?;
        self.admit_preverified(checked, bounds)
    }

    /// The expensive half of [`Ledger::admit`], safe to run on many entries in parallel under
    /// a shared borrow: finds the key membership assigns to the entry's claimed author and
    /// seq, and checks the signature strictly under it.
    ///
    /// # Errors
    /// [`AdmitError::Format`], [`AdmitError::Membership`] or [`AdmitError::Misplaced`].
    pub fn preverify(&self, signed: SignedEntry) -> Result<Preverified, AdmitError> {
        preverify(&self.membership, signed)
    }

    /// The cheap half of [`Ledger::admit`]: re-checks that membership still assigns the key
    /// the signature was checked under, then places the entry relative to its log's head and
    /// checks its event.
    ///
    /// # Errors
    /// As [`Ledger::admit`].
    pub fn admit_preverified(
        &self,
        checked: Preverified,
        bounds: Option<TimeBounds>,
    ) -> Result<Admission, AdmitError> {
        let Preverified { verified, key } = checked;
        let current = self
            .membership
            .key_for(&verified.entry.log, verified.entry.seq)?;
        if current.to_bytes() != key {
            return Err(
                FormatError::BadSignature("signed by a key no longer in force".into()).into(),
            );
        }
        let entry = &verified.entry;

        let (head, head_hash) = self.head(&entry.log);
        if entry.seq <= head {
            let held = self
                .hash_at(&entry.log, entry.seq)
                .expect("seq is within the held range");
            return Ok(if held == verified.hash {
                Admission::Duplicate
            } else {
                Admission::Conflict {
                    held,
                    incoming: verified,
                }
            });
        }
        if let Some(seq) = self.frozen_at(&entry.log) {
            return Err(AdmitError::Frozen {
                log: entry.log.clone(),
                seq,
            });
        }
        if entry.seq > head + 1 {
            return Ok(Admission::Gap {
                head,
                seq: entry.seq,
            });
        }
        format::check_link(head, &head_hash, entry)?;
        self.check_event(entry, bounds)?;
        Ok(Admission::Next(verified))
    }

    /// Checks the signature of an entry this node stored earlier, under the key in force at
    /// its seq (a later suspension does not undo an entry accepted before it arrived). Safe to
    /// run in parallel; pair with [`Ledger::restore`].
    ///
    /// # Errors
    /// [`AdmitError::Format`] or [`AdmitError::Membership`] for an unknown author.
    pub fn restore_preverify(&self, signed: SignedEntry) -> Result<Preverified, AdmitError> {
        let claimed = format::decode_entry(&signed.body)?;
        let key = self.membership.key_at(&claimed.log, claimed.seq)?;
        match VerifiedEntry::verify(&key, signed.clone()) {
            Ok(verified) => Ok(Preverified {
                verified,
                key: key.to_bytes(),
            }),
            Err(first) => {
                // A node that had not yet received a key rotation accepted entries under the
                // market's earlier key; they stay what they were when stored (the auditor
                // reports them), rather than making the store unreadable.
                for earlier in self.membership.keys_of(&claimed.log) {
                    if let Ok(verified) = VerifiedEntry::verify(&earlier, signed.clone()) {
                        return Ok(Preverified {
                            verified,
                            key: earlier.to_bytes(),
                        });
                    }
                }
                Err(first.into())
            }
        }
    }

    /// Replays a stored entry whose signature [`Ledger::restore_preverify`] checked: it must
    /// be the next entry of its log. Returns the applied entry.
    ///
    /// # Errors
    /// [`AdmitError::Format`] with a broken chain, or a key the market never held.
    pub fn restore(&mut self, checked: Preverified) -> Result<VerifiedEntry, AdmitError> {
        let Preverified { verified, key } = checked;
        let known = self
            .membership
            .keys_of(&verified.entry.log)
            .iter()
            .any(|k| k.to_bytes() == key);
        if !known {
            return Err(
                FormatError::BadSignature("signed by a key the market never held".into()).into(),
            );
        }
        let (head, head_hash) = self.head(&verified.entry.log);
        format::check_link(head, &head_hash, &verified.entry)?;
        self.apply(&verified);
        Ok(verified)
    }

    /// Checks an event's fields and that it belongs in its log; shared by admission and by a
    /// node before it signs.
    ///
    /// # Errors
    /// [`AdmitError::Invalid`] or [`AdmitError::Misplaced`].
    pub fn check_event(&self, entry: &Entry, bounds: Option<TimeBounds>) -> Result<(), AdmitError> {
        if let Some(b) = bounds {
            if entry.time_ms > b.now_ms.saturating_add(b.skew_ms) {
                return Err(FieldError {
                    field: "time".into(),
                    message: "entry clock is in the future beyond the allowed skew".into(),
                }
                .into());
            }
        }
        validate::request_id(&entry.request_id)?;
        let event = entry.event.as_ref().ok_or_else(|| FieldError {
            field: "event".into(),
            message: "must be set".into(),
        })?;
        if entry.time_ms <= 0 {
            return Err(FieldError {
                field: "time".into(),
                message: "entry clock must be set".into(),
            }
            .into());
        }
        // Times inside the event (sampling, testing, disposal) may not be later than the entry
        // that records them, beyond the allowed skew.
        let own_clock = TimeBounds {
            now_ms: entry.time_ms,
            skew_ms: self.rules.clock_skew_ms,
        };
        validate::event(event, Some(own_clock))?;
        let kind = event
            .kind
            .as_ref()
            .expect("validate::event checked kind is set");
        let regulator = entry.log == REGULATOR_LOG;
        let allowed = match kind {
            Kind::ReportIssued(_)
            | Kind::IntakeAccepted(_)
            | Kind::IntakeRejected(_)
            | Kind::DisposalRecorded(_) => !regulator,
            Kind::ReportRevoked(_) => true,
            Kind::MarketAdmitted(_)
            | Kind::KeyRotated(_)
            | Kind::MarketSuspended(_)
            | Kind::RulesPublished(_) => regulator,
        };
        if !allowed {
            return Err(AdmitError::Misplaced(format!(
                "this event does not belong in log {}",
                entry.log
            )));
        }
        match kind {
            Kind::ReportRevoked(r) if !regulator => {
                let (issuer, _) =
                    ids::parse_report_id(&r.report_id).map_err(AdmitError::Misplaced)?;
                if issuer != entry.log {
                    return Err(AdmitError::Misplaced(format!(
                        "{} may revoke only its own reports, not {}",
                        entry.log, r.report_id
                    )));
                }
            }
            Kind::RulesPublished(p) => {
                let version = p.rules.as_ref().map_or(0, |r| r.version);
                if version <= self.rules.version {
                    return Err(AdmitError::Misplaced(format!(
                        "rules version {version} is not after the version in force ({})",
                        self.rules.version
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Folds an admitted entry into the projection. Call it exactly once per entry, in log
    /// order, after [`Ledger::admit`] returned [`Admission::Next`] for it.
    pub fn apply(&mut self, verified: &VerifiedEntry) {
        let entry = &verified.entry;
        let state = self.logs.entry(entry.log.clone()).or_default();
        debug_assert_eq!(
            state.hashes.len() as u64 + 1,
            entry.seq,
            "apply out of order"
        );
        state.hashes.push(verified.hash);
        state.last_time_ms = entry.time_ms;
        if !entry.request_id.is_empty() {
            self.requests
                .insert((entry.log.clone(), entry.request_id.clone()), entry.seq);
        }
        // A membership event with no effect (say, admitting a market twice) is harmless; the
        // auditor reports it from its own replay.
        let _ = self.membership.apply(entry);
        let Some(kind) = entry.event.as_ref().and_then(|e| e.kind.as_ref()) else {
            return;
        };
        match kind {
            Kind::RulesPublished(p) => {
                if let Some(rules) = &p.rules {
                    self.rules = rules.clone();
                }
            }
            Kind::ReportIssued(report) => {
                let id = ids::report_id(&entry.log, entry.seq);
                let lot = report
                    .quantity
                    .as_ref()
                    .and_then(|q| quantity::parse(q).ok())
                    .expect("admission validated the report's quantity");
                self.newest.insert((entry.time_ms, id.clone()));
                self.by_lot
                    .entry(report.lot_id.clone())
                    .or_default()
                    .push(id.clone());
                self.by_bag
                    .entry(report.bag_code.clone())
                    .or_default()
                    .push(id.clone());
                self.reports.entry(id).or_default().issued = Some(Issued {
                    market: entry.log.clone(),
                    seq: entry.seq,
                    time_ms: entry.time_ms,
                    report: Arc::new(report.clone()),
                    lot,
                });
            }
            Kind::ReportRevoked(r) => {
                self.reports
                    .entry(r.report_id.clone())
                    .or_default()
                    .revocations
                    .push(Revocation {
                        by: entry.log.clone(),
                        seq: entry.seq,
                        time_ms: entry.time_ms,
                        reason: r.reason.clone(),
                    });
            }
            Kind::IntakeAccepted(i) => {
                self.reports
                    .entry(i.report_id.clone())
                    .or_default()
                    .intakes
                    .push(IntakeRecord {
                        market: entry.log.clone(),
                        seq: entry.seq,
                        time_ms: entry.time_ms,
                        accepted: true,
                        amount: i.quantity.as_ref().and_then(|q| quantity::parse(q).ok()),
                        quantity: i.quantity.clone(),
                        product: i.product.clone(),
                        rules_version: i.rules_version,
                        reasons: Vec::new(),
                        issuer_seq_seen: i.issuer_seq_seen,
                        regulator_seq_seen: i.regulator_seq_seen,
                    });
            }
            Kind::IntakeRejected(i) => {
                self.reports
                    .entry(i.report_id.clone())
                    .or_default()
                    .intakes
                    .push(IntakeRecord {
                        market: entry.log.clone(),
                        seq: entry.seq,
                        time_ms: entry.time_ms,
                        accepted: false,
                        amount: i.quantity.as_ref().and_then(|q| quantity::parse(q).ok()),
                        quantity: i.quantity.clone(),
                        product: i.product.clone(),
                        rules_version: i.rules_version,
                        reasons: i.reasons.clone(),
                        issuer_seq_seen: i.issuer_seq_seen,
                        regulator_seq_seen: i.regulator_seq_seen,
                    });
            }
            Kind::DisposalRecorded(d) => {
                self.reports
                    .entry(d.report_id.clone())
                    .or_default()
                    .disposals
                    .push(Disposal {
                        by: entry.log.clone(),
                        seq: entry.seq,
                        time_ms: entry.time_ms,
                        record: d.clone(),
                    });
            }
            Kind::MarketAdmitted(_) | Kind::KeyRotated(_) | Kind::MarketSuspended(_) => {}
        }
    }

    /// Records fork evidence (both entries validly signed by one author at one seq) and
    /// freezes that log at the fork. Returns false if this fork was already recorded or the
    /// evidence does not hold.
    pub fn record_fork(&mut self, evidence: ForkEvidence) -> bool {
        let Ok((log, seq)) = self.check_fork(&evidence) else {
            return false;
        };
        let duplicate = self.forks.iter().any(|f| same_fork(f, &evidence));
        let state = self.logs.entry(log).or_default();
        state.frozen_at = Some(state.frozen_at.map_or(seq, |s| s.min(seq)));
        if duplicate {
            return false;
        }
        self.forks.push(evidence);
        true
    }

    /// Checks fork evidence: two different bodies, one author and seq, both validly signed
    /// under the key membership assigns to that seq.
    ///
    /// # Errors
    /// A sentence saying why the evidence does not hold.
    pub fn check_fork(&self, evidence: &ForkEvidence) -> Result<(String, u64), String> {
        let (Some(a), Some(b)) = (&evidence.first, &evidence.second) else {
            return Err("fork evidence needs two entries".into());
        };
        if a.body == b.body {
            return Err("the two entries are the same".into());
        }
        let ea = format::decode_entry(&a.body).map_err(|e| e.to_string())?;
        let eb = format::decode_entry(&b.body).map_err(|e| e.to_string())?;
        if ea.log != eb.log || ea.seq != eb.seq {
            return Err("the two entries are not at the same place".into());
        }
        let key = self
            .membership
            .key_for(&ea.log, ea.seq)
            .map_err(|e| e.to_string())?;
        format::verify_signature(&key, a).map_err(|e| e.to_string())?;
        format::verify_signature(&key, b).map_err(|e| e.to_string())?;
        Ok((ea.log, ea.seq))
    }

    /// A report's derived state at `at_ms`, if its issuing entry is held.
    pub fn state(&self, id: &str, at_ms: i64) -> Option<ReportState> {
        let record = self.reports.get(id)?;
        let issued = record.issued.as_ref()?;
        let rule = crate::rules::category(&self.rules, &issued.report.category);
        let valid_until_ms = rule.map(|r| issued.report.tested_at_ms.saturating_add(r.validity_ms));
        let drawn = drawn(record, issued);
        let overdrawn = drawn > issued.lot.base;
        let revoked = effective_revocation(record, issued);
        let positive = issued.report.result == crate::pb::TestResult::Positive as i32;
        let status = if self.frozen_at(&issued.market).is_some() {
            Status::Forked
        } else if revoked.is_some() {
            Status::Revoked
        } else if positive && record.disposals.iter().any(|d| valid_disposal(d, issued)) {
            Status::PositiveDisposed
        } else if positive {
            Status::PositivePendingDisposal
        } else if overdrawn {
            Status::Overdrawn
        } else if drawn == issued.lot.base {
            Status::Exhausted
        } else if valid_until_ms.is_some_and(|until| at_ms >= until) {
            Status::Expired
        } else {
            Status::Valid
        };
        Some(ReportState {
            status,
            valid_until_ms,
            drawn,
            remaining: issued.lot.base.saturating_sub(drawn),
            overdrawn,
            revoked,
        })
    }

    /// The verdict on report `id` for `lot`, from everything this ledger holds. This is the
    /// one verdict function: the node, the CLI and the auditor all call it.
    pub fn verdict(&self, id: &str, lot: &Lot) -> Verdict {
        let mut reasons = Vec::new();
        let Some(issued) = self.reports.get(id).and_then(|r| r.issued.as_ref()) else {
            let why = match ids::parse_report_id(id) {
                Ok((market, _)) if self.membership.market(&market).is_none() => reason(
                    crate::pb::Reason::UnknownIssuer,
                    format!("{market} is not a member market"),
                ),
                Ok(_) => reason(
                    crate::pb::Reason::NotSeenHere,
                    format!("report {id} has not reached this node"),
                ),
                Err(message) => reason(crate::pb::Reason::NotSeenHere, message),
            };
            reasons.push(why);
            return self.finish(reasons, None, None);
        };
        self.judge(id, issued, Knowledge::Ledger, lot, reasons)
    }

    /// The verdict on a portable token's signed entry. The token's signature is checked
    /// against membership; with [`Knowledge::Ledger`] the ledger's copy of the report, its
    /// revocations and draws count too, and a token the ledger does not hold gets
    /// [`crate::pb::Reason::NotSeenHere`].
    pub fn verdict_for_entry(
        &self,
        signed: &SignedEntry,
        knowledge: Knowledge,
        lot: &Lot,
    ) -> (String, Verdict) {
        let bad = |detail: String, code: crate::pb::Reason| {
            (
                String::new(),
                self.finish(vec![reason(code, detail)], None, None),
            )
        };
        let Ok(claimed) = format::decode_entry(&signed.body) else {
            return bad(
                "the token does not hold a log entry".into(),
                crate::pb::Reason::BadSignature,
            );
        };
        let id = ids::report_id(&claimed.log, claimed.seq);
        let key = match self.membership.key_for(&claimed.log, claimed.seq) {
            Ok(key) => key,
            Err(MembershipError::Suspended { market, from_seq }) => {
                let detail = format!("{market} is suspended from seq {from_seq}");
                return (
                    id,
                    self.finish(
                        vec![reason(crate::pb::Reason::IssuerSuspended, detail)],
                        None,
                        None,
                    ),
                );
            }
            Err(e) => {
                return (
                    id,
                    self.finish(
                        vec![reason(crate::pb::Reason::UnknownIssuer, e.to_string())],
                        None,
                        None,
                    ),
                )
            }
        };
        let Ok(verified) = VerifiedEntry::verify(&key, signed.clone()) else {
            let detail = "the signature does not verify under the issuer's key".to_string();
            return (
                id,
                self.finish(
                    vec![reason(crate::pb::Reason::BadSignature, detail)],
                    None,
                    None,
                ),
            );
        };
        let Some(Kind::ReportIssued(report)) =
            verified.entry.event.as_ref().and_then(|e| e.kind.as_ref())
        else {
            let detail = "the token's entry is not a report".to_string();
            return (
                id,
                self.finish(
                    vec![reason(crate::pb::Reason::NotSeenHere, detail)],
                    None,
                    None,
                ),
            );
        };
        let Some(lot_amount) = report
            .quantity
            .as_ref()
            .and_then(|q| quantity::parse(q).ok())
        else {
            let detail = "the report's quantity is malformed".to_string();
            return (
                id,
                self.finish(
                    vec![reason(crate::pb::Reason::BadSignature, detail)],
                    None,
                    None,
                ),
            );
        };
        let mut reasons = Vec::new();
        if knowledge == Knowledge::Ledger {
            match self.hash_at(&claimed.log, claimed.seq) {
                Some(held) if held == verified.hash => {
                    let issued = self
                        .reports
                        .get(&id)
                        .and_then(|r| r.issued.as_ref())
                        .expect("held report");
                    return (id.clone(), self.judge(&id, issued, knowledge, lot, reasons));
                }
                Some(_) => reasons.push(reason(
                    crate::pb::Reason::IssuerLogForked,
                    format!("the token differs from the entry {id} this node holds"),
                )),
                None => reasons.push(reason(
                    crate::pb::Reason::NotSeenHere,
                    format!("report {id} has not reached this node"),
                )),
            }
        }
        let issued = Issued {
            market: claimed.log.clone(),
            seq: claimed.seq,
            time_ms: claimed.time_ms,
            report: Arc::new(report.clone()),
            lot: lot_amount,
        };
        (
            id.clone(),
            self.judge(&id, &issued, Knowledge::TokenOnly, lot, reasons),
        )
    }

    /// The verdict on a report as [`Knowledge::TokenOnly`] judges it (from the report itself
    /// and this ledger's membership and rules; no revocations, draws or forks), for a report
    /// this ledger need not hold. `issued` must come from an entry whose signature was checked
    /// (for example another ledger's [`ReportRecord::issued`]); it is not checked again. The
    /// auditor uses it to judge an intake with the membership and rules the receiving market
    /// had when it decided.
    pub fn verdict_on_issued(&self, issued: &Issued, lot: &Lot) -> Verdict {
        let id = ids::report_id(&issued.market, issued.seq);
        self.judge(&id, issued, Knowledge::TokenOnly, lot, Vec::new())
    }

    fn judge(
        &self,
        id: &str,
        issued: &Issued,
        knowledge: Knowledge,
        lot: &Lot,
        mut reasons: Vec<VerdictReason>,
    ) -> Verdict {
        use crate::pb::Reason as R;
        let report = &issued.report;
        let empty = ReportRecord::default();
        let record = match knowledge {
            Knowledge::Ledger => self.reports.get(id).unwrap_or(&empty),
            Knowledge::TokenOnly => &empty,
        };

        // Who issued it, and may they still.
        match self.membership.key_for(&issued.market, issued.seq) {
            Err(MembershipError::UnknownAuthor(m)) => reasons.push(reason(
                R::UnknownIssuer,
                format!("{m} is not a member market"),
            )),
            Err(MembershipError::Suspended { market, from_seq }) => reasons.push(reason(
                R::IssuerSuspended,
                format!(
                    "{market} is suspended from seq {from_seq}; this report is seq {}",
                    issued.seq
                ),
            )),
            _ => {}
        }
        if let Some(seq) = self.frozen_at(&issued.market) {
            reasons.push(reason(
                R::IssuerLogForked,
                format!("{}'s log is forked at seq {seq}", issued.market),
            ));
        }
        if let Some(r) = effective_revocation(record, issued) {
            reasons.push(reason(
                R::Revoked,
                format!("revoked by {}: {}", r.by, r.reason),
            ));
        }

        // The validity window: [tested_at - skew, tested_at + validity).
        let rule = crate::rules::category(&self.rules, &report.category);
        let valid_until_ms = rule.map(|r| report.tested_at_ms.saturating_add(r.validity_ms));
        match rule {
            None => reasons.push(reason(
                R::UnknownCategory,
                format!(
                    "category {} is not in rules version {}",
                    report.category, self.rules.version
                ),
            )),
            Some(rule) => {
                let until = report.tested_at_ms.saturating_add(rule.validity_ms);
                if lot.at_ms >= until {
                    reasons.push(reason(
                        R::Expired,
                        format!("valid until {} (exclusive)", crate::time::cst(until)),
                    ));
                }
                if lot.at_ms < report.tested_at_ms.saturating_sub(self.rules.clock_skew_ms) {
                    reasons.push(reason(
                        R::NotYetValid,
                        format!(
                            "tested at {}, later than now by more than the allowed {} s of clock skew",
                            crate::time::cst(report.tested_at_ms),
                            self.rules.clock_skew_ms / 1000
                        ),
                    ));
                }
                for item in &rule.required_items {
                    if !report.items.iter().any(|i| &i.code == item) {
                        reasons.push(reason(
                            R::RequiredItemMissing,
                            format!("{} requires test item {item}", rule.category),
                        ));
                    }
                }
            }
        }
        if report.result == crate::pb::TestResult::Positive as i32 {
            let items: Vec<&str> = report
                .items
                .iter()
                .filter(|i| i.result == crate::pb::TestResult::Positive as i32)
                .map(|i| i.name.as_str())
                .collect();
            reasons.push(reason(
                R::PositiveResult,
                format!("positive for {}", items.join(", ")),
            ));
        }

        // Does the report cover these goods.
        if lot.product.trim() != report.product.trim() {
            reasons.push(reason(
                R::ProductMismatch,
                format!(
                    "goods are {:?}, the report covers {:?}",
                    lot.product, report.product
                ),
            ));
        }
        if let Some(category) = &lot.category {
            if !category.is_empty() && category != &report.category {
                reasons.push(reason(
                    R::CategoryMismatch,
                    format!(
                        "goods are {category}, the report covers {}",
                        report.category
                    ),
                ));
            }
        }
        let remaining = issued.lot.base.saturating_sub(drawn(record, issued));
        match quantity::parse(&lot.quantity) {
            Ok(amount) if amount.dimension != issued.lot.dimension => reasons.push(reason(
                R::InsufficientQuantity,
                format!(
                    "{} cannot be drawn from a lot counted in {}",
                    lot.quantity.unit,
                    unit_of(report)
                ),
            )),
            Ok(amount) if amount.base > remaining => reasons.push(reason(
                R::InsufficientQuantity,
                format!(
                    "{} {} asked, {} {} left",
                    lot.quantity.amount,
                    lot.quantity.unit,
                    quantity::format_in(remaining, unit_of(report))
                        .map(|q| q.amount)
                        .unwrap_or_default(),
                    unit_of(report)
                ),
            )),
            Ok(_) => {}
            Err(e) => reasons.push(reason(R::InsufficientQuantity, format!("quantity: {e}"))),
        }
        self.finish(reasons, valid_until_ms, Some(remaining))
    }

    fn finish(
        &self,
        reasons: Vec<VerdictReason>,
        valid_until_ms: Option<i64>,
        remaining: Option<u64>,
    ) -> Verdict {
        Verdict {
            valid: reasons.is_empty(),
            reasons,
            rules_version: self.rules.version,
            valid_until_ms,
            remaining,
        }
    }
}

/// [`Ledger::preverify`] against a membership snapshot, so that many entries can be checked
/// in parallel without holding the ledger.
///
/// # Errors
/// [`AdmitError::Format`], [`AdmitError::Membership`] or [`AdmitError::Misplaced`].
pub fn preverify(membership: &Membership, signed: SignedEntry) -> Result<Preverified, AdmitError> {
    if signed.body.len() > format::MAX_BODY_LEN {
        return Err(FormatError::TooLarge(signed.body.len()).into());
    }
    // Which key to check against depends on who claims to have written it; the claim is only
    // trusted once the signature under that key holds.
    let claimed = format::decode_entry(&signed.body)?;
    if !ids::valid_log_name(&claimed.log) {
        return Err(AdmitError::Misplaced(format!(
            "{:?} is not a log name",
            claimed.log
        )));
    }
    let key = membership.key_for(&claimed.log, claimed.seq)?;
    let verified = VerifiedEntry::verify(&key, signed)?;
    Ok(Preverified {
        verified,
        key: key.to_bytes(),
    })
}

fn unit_of(report: &ReportIssued) -> &str {
    report.quantity.as_ref().map_or("", |q| q.unit.as_str())
}

fn reason(code: crate::pb::Reason, detail: String) -> VerdictReason {
    VerdictReason {
        code: code as i32,
        detail,
    }
}

fn same_fork(a: &ForkEvidence, b: &ForkEvidence) -> bool {
    let bodies = |f: &ForkEvidence| {
        let mut v = [
            f.first.as_ref().map(|e| e.body.clone()),
            f.second.as_ref().map(|e| e.body.clone()),
        ];
        v.sort();
        v
    };
    bodies(a) == bodies(b)
}

/// Base units drawn from a report's lot by accepted intakes in the same dimension.
fn drawn(record: &ReportRecord, issued: &Issued) -> u64 {
    record
        .intakes
        .iter()
        .filter(|i| i.accepted)
        .filter_map(|i| i.amount)
        .filter(|a| a.dimension == issued.lot.dimension)
        .fold(0u64, |sum, a| sum.saturating_add(a.base))
}

/// The first revocation by the issuer or the regulator; others do not count.
fn effective_revocation(record: &ReportRecord, issued: &Issued) -> Option<Revocation> {
    record
        .revocations
        .iter()
        .filter(|r| r.by == issued.market || r.by == REGULATOR_LOG)
        .min_by_key(|r| (r.time_ms, r.by.clone(), r.seq))
        .cloned()
}

fn valid_disposal(d: &Disposal, issued: &Issued) -> bool {
    d.by == issued.market || d.by == REGULATOR_LOG
}

impl Ledger {
    /// A canonical text of the whole derived state at `at_ms`: every log's head and frozen
    /// mark, the rules version, and for every report its status, draws, remainder,
    /// revocation, intakes and disposals, sorted. Two ledgers hold the same state exactly when
    /// their snapshots are equal; a live node and a replay of its store are compared this way.
    pub fn snapshot(&self, at_ms: i64) -> Vec<String> {
        let mut lines = vec![format!("rules {}", self.rules.version)];
        for (log, seq, hash, frozen) in self.heads() {
            lines.push(format!("head {log} {seq} {} {frozen:?}", hex::encode(hash)));
        }
        let mut ids: Vec<&String> = self.reports.keys().collect();
        ids.sort();
        for id in ids {
            let record = &self.reports[id];
            let state = self.state(id, at_ms);
            let mut intakes: Vec<String> = record
                .intakes
                .iter()
                .map(|i| {
                    format!(
                        "{}:{}:{}:{:?}",
                        i.market,
                        i.seq,
                        i.accepted,
                        i.amount.map(|a| a.base)
                    )
                })
                .collect();
            intakes.sort();
            let mut disposals: Vec<String> = record
                .disposals
                .iter()
                .map(|d| format!("{}:{}", d.by, d.seq))
                .collect();
            disposals.sort();
            lines.push(format!(
                "report {id} issued={} state={:?} intakes=[{}] disposals=[{}] revocations={}",
                record.issued.is_some(),
                state,
                intakes.join(","),
                disposals.join(","),
                record.revocations.len()
            ));
        }
        lines.push(format!("forks {}", self.forks.len()));
        lines
    }
}
