//! Crafted ledgers for the audit tests: a small, clean market day as a plan of entries that a
//! test can change (an amount, a clock, a missing disposal, a wrong key) before it is signed
//! with the testkit's fixed keys and written into an export file.
#![allow(dead_code)] // Each test file uses a different part of the kit.

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;
use huren_client::audit::{self, AuditOptions, AuditReport, FindingKind};
use huren_client::export::ExportWriter;
use huren_proto::format;
use huren_proto::ids::REGULATOR_LOG;
use huren_proto::pb::{
    event::Kind, DisposalMethod, DisposalRecorded, Entry, ForkEvidence, Head, IntakeAccepted,
    IntakeRejected, Reason, ReportIssued, SignedEntry, TestResult, VerdictReason,
};
use huren_proto::testkit::{self, Author, Network, HOUR_MS, T0};

/// One minute in ms.
pub const MINUTE_MS: i64 = 60_000;
/// The audit's clock in these tests: two days after T0.
pub const NOW: i64 = T0 + 48 * HOUR_MS;

/// Changes an entry before it is signed; sees the entries signed so far.
pub type Tweak = Box<dyn Fn(&mut Entry, &Book)>;

/// One planned entry.
pub struct Item {
    /// Its log.
    pub log: String,
    /// Its event.
    pub kind: Kind,
    /// Its author's clock.
    pub time_ms: i64,
    /// A change to the entry before signing.
    pub tweak: Option<Tweak>,
    /// Sign with this key instead of the log's own.
    pub key: Option<SigningKey>,
}

/// A plan of entries, signed in order.
pub struct Plan {
    /// The entries, in signing order (each log's in its own order).
    pub items: Vec<Item>,
}

/// The signed ledger, ready to export.
pub struct Book {
    /// The test network (shanxi, jiuzhou, tunhui).
    pub net: Network,
    /// Every log's entries.
    pub logs: BTreeMap<String, Vec<SignedEntry>>,
    /// Fork evidence to export.
    pub forks: Vec<ForkEvidence>,
    /// Logs whose header says frozen.
    pub frozen: BTreeSet<String>,
}

/// An item with no tweak.
pub fn item(log: &str, kind: Kind, time_ms: i64) -> Item {
    Item {
        log: log.into(),
        kind,
        time_ms,
        tweak: None,
        key: None,
    }
}

/// A positive report (organophosphorus residue over the limit) tested at `tested_at_ms`.
pub fn positive_report(tested_at_ms: i64) -> ReportIssued {
    let mut report = testkit::sample_report(tested_at_ms);
    report.lot_id = "L20261204-009".into();
    report.items[0].value = "63.0".into();
    report.items[0].result = TestResult::Positive as i32;
    report.result = TestResult::Positive as i32;
    report
}

/// An accepted intake of `amount` kg of 菜豆 on `report_id` under rules version 1, with the
/// heads the market had.
pub fn accept(report_id: &str, amount: &str, issuer_seen: u64, regulator_seen: u64) -> Kind {
    Kind::IntakeAccepted(IntakeAccepted {
        report_id: report_id.into(),
        quantity: Some(testkit::qty(amount, "kg")),
        product: "菜豆".into(),
        rules_version: 1,
        issuer_seq_seen: issuer_seen,
        regulator_seq_seen: regulator_seen,
    })
}

/// A rejected intake of 10 kg on `report_id`, for `reason`.
pub fn reject(report_id: &str, reason: Reason, issuer_seen: u64) -> Kind {
    Kind::IntakeRejected(IntakeRejected {
        report_id: report_id.into(),
        quantity: Some(testkit::qty("10", "kg")),
        product: "菜豆".into(),
        rules_version: 1,
        reasons: vec![VerdictReason {
            code: reason as i32,
            detail: "as the verdict said".into(),
        }],
        issuer_seq_seen: issuer_seen,
        regulator_seq_seen: 1,
    })
}

/// The issuer's disposal record of `report_id`, destroyed at `at_ms`.
pub fn dispose(report_id: &str, at_ms: i64) -> Kind {
    Kind::DisposalRecorded(DisposalRecorded {
        report_id: report_id.into(),
        method: DisposalMethod::Destroyed as i32,
        by: "市场检测中心".into(),
        disposed_at_ms: at_ms,
        reported_to_regulator: true,
        note: String::new(),
    })
}

impl Plan {
    /// A clean day: the regulator publishes rules version 1; shanxi issues a pass on 100 kg
    /// (shanxi-1), a positive (shanxi-2) that it disposes of within two hours, and a second
    /// pass (shanxi-4); jiuzhou accepts 30 kg of shanxi-1 and rejects shanxi-2; tunhui accepts
    /// 50 kg of shanxi-1.
    pub fn clean() -> Self {
        let rules =
            huren_client::regulator::rules_published(huren_client::regulator::default_rules(1));
        Self {
            items: vec![
                item(REGULATOR_LOG, rules, T0 - HOUR_MS),
                item(
                    "shanxi",
                    testkit::issue(testkit::sample_report(T0)),
                    T0 + MINUTE_MS,
                ),
                item(
                    "shanxi",
                    testkit::issue(positive_report(T0 + 5 * MINUTE_MS)),
                    T0 + 6 * MINUTE_MS,
                ),
                item("jiuzhou", accept("shanxi-1", "30", 1, 1), T0 + HOUR_MS),
                item(
                    "jiuzhou",
                    reject("shanxi-2", Reason::PositiveResult, 2),
                    T0 + HOUR_MS + 5 * MINUTE_MS,
                ),
                item(
                    "shanxi",
                    dispose("shanxi-2", T0 + 2 * HOUR_MS - 10 * MINUTE_MS),
                    T0 + 2 * HOUR_MS,
                ),
                item("tunhui", accept("shanxi-1", "50", 3, 1), T0 + 3 * HOUR_MS),
                item(
                    "shanxi",
                    testkit::issue(testkit::sample_report(T0 + 4 * HOUR_MS)),
                    T0 + 4 * HOUR_MS + MINUTE_MS,
                ),
            ],
        }
    }

    /// Adds an entry at the end.
    pub fn push(&mut self, item: Item) -> &mut Self {
        self.items.push(item);
        self
    }

    /// The planned item that is entry `seq` of `log`.
    pub fn at(&mut self, log: &str, seq: u64) -> &mut Item {
        self.items
            .iter_mut()
            .filter(|i| i.log == log)
            .nth(seq as usize - 1)
            .expect("planned entry")
    }

    /// Removes entry `seq` of `log` from the plan (later entries of that log move up).
    pub fn remove(&mut self, log: &str, seq: u64) -> &mut Self {
        let index = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, i)| i.log == log)
            .nth(seq as usize - 1)
            .map(|(n, _)| n)
            .expect("planned entry");
        self.items.remove(index);
        self
    }

    /// Signs every item in order, each log chained by its author.
    pub fn sign(self) -> Book {
        let net = Network::new();
        let mut book = Book {
            logs: BTreeMap::new(),
            forks: Vec::new(),
            frozen: BTreeSet::new(),
            net,
        };
        book.logs.insert(REGULATOR_LOG.into(), Vec::new());
        for id in testkit::MARKETS {
            book.logs.insert(id.into(), Vec::new());
        }
        let mut authors: BTreeMap<String, Author> = BTreeMap::new();
        for item in self.items {
            let author = authors.entry(item.log.clone()).or_insert_with(|| {
                if book.net.keys.contains_key(&item.log) || item.log == REGULATOR_LOG {
                    book.net.author(&item.log)
                } else {
                    Author::new(&item.log, testkit::key(&item.log))
                }
            });
            let mut entry = author.entry(item.kind, item.time_ms);
            if let Some(tweak) = &item.tweak {
                tweak(&mut entry, &book);
            }
            let signed = match item.key {
                Some(key) => {
                    let mut other = author.clone();
                    other.set_key(key);
                    let signed = other.sign(&entry);
                    author.sign(&entry);
                    signed
                }
                None => author.sign(&entry),
            };
            book.logs.entry(item.log).or_default().push(signed);
        }
        book
    }
}

impl Book {
    /// Entry `seq` of `log`.
    pub fn entry(&self, log: &str, seq: u64) -> &SignedEntry {
        &self.logs[log][seq as usize - 1]
    }

    /// The hash of entry `seq` of `log`.
    pub fn hash(&self, log: &str, seq: u64) -> Vec<u8> {
        format::entry_hash(&self.entry(log, seq).body).to_vec()
    }

    /// The export file of this ledger: the regulator's log first, then markets by name.
    pub fn export(&self) -> Vec<u8> {
        let mut writer = ExportWriter::new(Vec::new()).expect("writing to memory");
        writer.trust_list(&self.net.trust_list).expect("in order");
        let order = std::iter::once(REGULATOR_LOG.to_string())
            .chain(self.logs.keys().filter(|l| *l != REGULATOR_LOG).cloned());
        for log in order {
            let entries = &self.logs[&log];
            writer
                .log(&Head {
                    log: log.clone(),
                    seq: entries.len() as u64,
                    hash: entries
                        .last()
                        .map(|e| format::entry_hash(&e.body).to_vec())
                        .unwrap_or_default(),
                    frozen: self.frozen.contains(&log),
                })
                .expect("in order");
            for e in entries {
                writer.entry(e).expect("in order");
            }
        }
        for f in &self.forks {
            writer.fork(f).expect("in order");
        }
        writer.finish().expect("writing to memory").0
    }

    /// Audits this ledger's export at [`NOW`].
    pub fn audit(&self) -> AuditReport {
        audit_bytes(&self.export(), NOW)
    }
}

/// Audits export bytes at `now_ms`, with the testkit's regulator key pinned.
pub fn audit_bytes(bytes: &[u8], now_ms: i64) -> AuditReport {
    let key = testkit::regulator_key().verifying_key();
    audit::audit_reader(bytes, AuditOptions::new(key, now_ms), &audit::Silent)
        .expect("reading from memory")
}

/// Asserts that the report found exactly `kinds` (each at least once) and nothing else.
pub fn assert_found(report: &AuditReport, kinds: &[FindingKind]) {
    let want: BTreeSet<FindingKind> = kinds.iter().copied().collect();
    assert_eq!(report.kinds(), want, "{}", report.text());
}
