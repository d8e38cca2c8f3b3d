//! A generated ledger for the audit benchmark and its test: seven markets over one timeline,
//! issuing reports (a few positive, each disposed of within hours), taking goods in on each
//! other's passes (accepted within what is left of the lot, or rejected for a wrong product),
//! revoking now and then, and the regulator publishing rules and revoking a few reports. Every
//! entry is signed with the testkit's keys; chains are built in order, signatures in parallel.
//! Every decision follows the rules, so a correct auditor finds nothing.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

use huren_proto::format::{self, Hash, GENESIS_PREV_HASH};
use huren_proto::ids::{self, REGULATOR_LOG};
use huren_proto::pb::{
    event::Kind, DisposalMethod, DisposalRecorded, Entry, Event, IntakeAccepted, IntakeRejected,
    Reason, ReportIssued, ReportRevoked, SignedEntry, TestResult, VerdictReason,
};
use huren_proto::testkit::{Network, T0};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;

/// The seven markets.
pub const MARKETS: [&str; 7] = [
    "shanxi",
    "jiuzhou",
    "tunhui",
    "zhangzitou",
    "market5",
    "market6",
    "market7",
];

/// Milliseconds between two entries on the shared timeline (25 entries a second overall).
const STEP_MS: i64 = 40;
/// Reports an intake may draw on: the most recent this many.
const RECENT: usize = 20_000;
/// Entries signed together.
const BATCH: usize = 50_000;

/// The generated ledger: every log's entries, and the network that signed them.
pub struct Generated {
    /// Keys and trust list.
    pub net: Network,
    /// The regulator's log first, then the markets' by name.
    pub logs: Vec<(String, Vec<SignedEntry>)>,
    /// The timeline's last instant.
    pub end_ms: i64,
}

impl Generated {
    /// Entries in all.
    pub fn entry_count(&self) -> usize {
        self.logs.iter().map(|(_, e)| e.len()).sum()
    }

    /// The export file of this ledger.
    pub fn export<W: std::io::Write>(&self, out: W) -> std::io::Result<W> {
        let mut writer = huren_client::export::ExportWriter::new(out)?;
        writer.trust_list(&self.net.trust_list)?;
        for (log, entries) in &self.logs {
            writer.log(&huren_proto::pb::Head {
                log: log.clone(),
                seq: entries.len() as u64,
                hash: entries
                    .last()
                    .map(|e| format::entry_hash(&e.body).to_vec())
                    .unwrap_or_default(),
                frozen: false,
            })?;
            for e in entries {
                writer.entry(e)?;
            }
        }
        Ok(writer.finish()?.0)
    }
}

struct Live {
    id: String,
    issuer: usize,
    product: String,
    unit: String,
    left: u64,
    per_unit: u64,
}

struct Chain {
    seq: u64,
    prev: Hash,
}

/// Builds a ledger of about `entries` entries (at least that many), deterministically from
/// `seed`.
pub fn generate(entries: usize, seed: u64) -> Generated {
    let net = Network::with_markets(&MARKETS);
    let mut rng = StdRng::seed_from_u64(seed);
    let templates: Vec<Vec<ReportIssued>> = MARKETS
        .iter()
        .map(|m| huren_client::sample::day(m, seed, 1500, T0))
        .collect();
    let mut chains: HashMap<String, Chain> = std::iter::once(REGULATOR_LOG)
        .chain(MARKETS)
        .map(|l| {
            (
                l.to_string(),
                Chain {
                    seq: 0,
                    prev: GENESIS_PREV_HASH,
                },
            )
        })
        .collect();
    let mut logs: HashMap<String, Vec<SignedEntry>> = HashMap::new();
    let mut pending: Vec<Entry> = Vec::with_capacity(BATCH);
    let mut recent: VecDeque<Live> = VecDeque::new();
    let mut positives: BinaryHeap<Reverse<(i64, usize, String)>> = BinaryHeap::new();
    let mut made = 0usize;
    let mut t = T0;

    let head = |chains: &HashMap<String, Chain>, log: &str| chains[log].seq;

    let rules = huren_client::regulator::rules_published(huren_client::regulator::default_rules(1));
    append_to(
        &mut chains,
        REGULATOR_LOG,
        rules,
        T0 - 3_600_000,
        &mut pending,
    );
    made += 1;

    while made < entries {
        t += STEP_MS;
        let m = rng.gen_range(0..MARKETS.len());
        let market = MARKETS[m];
        let roll = rng.gen_range(0..1000);
        let due = positives.peek().is_some_and(|Reverse((at, _, _))| *at <= t);
        if due {
            let Reverse((_, issuer, id)) = positives.pop().expect("checked");
            let disposal = Kind::DisposalRecorded(DisposalRecorded {
                report_id: id,
                method: DisposalMethod::Destroyed as i32,
                by: "检测中心".into(),
                disposed_at_ms: t - 60_000,
                reported_to_regulator: true,
                note: String::new(),
            });
            append_to(&mut chains, MARKETS[issuer], disposal, t, &mut pending);
        } else if roll < 2 && !recent.is_empty() {
            // The regulator withdraws a report (a failed supervisory sample).
            let live = recent
                .remove(rng.gen_range(0..recent.len()))
                .expect("in range");
            let kind = Kind::ReportRevoked(ReportRevoked {
                report_id: live.id,
                reason: "监督抽检不合格".into(),
            });
            append_to(&mut chains, REGULATOR_LOG, kind, t, &mut pending);
        } else if roll < 12 {
            // A market withdraws one of its own recent passes.
            if let Some(at) = recent.iter().position(|l| l.issuer == m) {
                let live = recent.remove(at).expect("found");
                let kind = Kind::ReportRevoked(ReportRevoked {
                    report_id: live.id,
                    reason: "实验室记录错误".into(),
                });
                append_to(&mut chains, market, kind, t, &mut pending);
            } else {
                continue;
            }
        } else if roll < 500 || recent.len() < 50 {
            let template = &templates[m][rng.gen_range(0..templates[m].len())];
            let mut report = template.clone();
            report.sampled_at_ms = t - 30 * 60_000;
            report.tested_at_ms = t - 10 * 60_000;
            let seq = append_to(
                &mut chains,
                market,
                Kind::ReportIssued(report.clone()),
                t,
                &mut pending,
            );
            let id = ids::report_id(market, seq);
            if report.result == TestResult::Positive as i32 {
                let delay = rng.gen_range(600_000..6 * 3_600_000);
                positives.push(Reverse((t + delay, m, id)));
            } else {
                let quantity = report.quantity.as_ref().expect("valid report");
                let lot = huren_proto::quantity::parse(quantity).expect("valid quantity");
                let unit = huren_proto::quantity::unit(&quantity.unit).expect("known unit");
                recent.push_back(Live {
                    id,
                    issuer: m,
                    product: report.product.clone(),
                    unit: unit.name.to_string(),
                    left: lot.base,
                    per_unit: unit.base_per_unit,
                });
                if recent.len() > RECENT {
                    recent.pop_front();
                }
            }
        } else {
            // Goods arrive at `market` on another market's pass.
            let at = rng.gen_range(0..recent.len());
            if recent[at].issuer == m {
                continue;
            }
            let live = &recent[at];
            let issuer_seen = head(&chains, MARKETS[live.issuer]);
            let regulator_seen = head(&chains, REGULATOR_LOG);
            let units = rng.gen_range(1..=20u64);
            let quantity = huren_proto::testkit::qty(&units.to_string(), &live.unit);
            let kind = if roll < 900 && units * live.per_unit <= live.left {
                recent[at].left -= units * recent[at].per_unit;
                Kind::IntakeAccepted(IntakeAccepted {
                    report_id: recent[at].id.clone(),
                    quantity: Some(quantity),
                    product: recent[at].product.clone(),
                    rules_version: 1,
                    issuer_seq_seen: issuer_seen,
                    regulator_seq_seen: regulator_seen,
                })
            } else {
                Kind::IntakeRejected(IntakeRejected {
                    report_id: live.id.clone(),
                    quantity: Some(quantity),
                    product: "别的东西".into(),
                    rules_version: 1,
                    reasons: vec![VerdictReason {
                        code: Reason::ProductMismatch as i32,
                        detail: format!("goods are 别的东西, the report covers {}", live.product),
                    }],
                    issuer_seq_seen: issuer_seen,
                    regulator_seq_seen: regulator_seen,
                })
            };
            append_to(&mut chains, market, kind, t, &mut pending);
        }
        made += 1;
        if pending.len() >= BATCH {
            sign(&net, &mut pending, &mut logs);
        }
    }
    // Positives still waiting are disposed of now, so the ledger ends clean.
    while let Some(Reverse((_, issuer, id))) = positives.pop() {
        t += STEP_MS;
        let disposal = Kind::DisposalRecorded(DisposalRecorded {
            report_id: id,
            method: DisposalMethod::MadeHarmless as i32,
            by: "检测中心".into(),
            disposed_at_ms: t,
            reported_to_regulator: true,
            note: String::new(),
        });
        append_to(&mut chains, MARKETS[issuer], disposal, t, &mut pending);
    }
    sign(&net, &mut pending, &mut logs);
    let mut logs: Vec<(String, Vec<SignedEntry>)> = logs.into_iter().collect();
    logs.sort_by(|a, b| (a.0 != REGULATOR_LOG, &a.0).cmp(&(b.0 != REGULATOR_LOG, &b.0)));
    Generated {
        net,
        logs,
        end_ms: t,
    }
}

/// Appends an event to a log's chain; signing waits for the batch.
fn append_to(
    chains: &mut HashMap<String, Chain>,
    log: &str,
    kind: Kind,
    time_ms: i64,
    pending: &mut Vec<Entry>,
) -> u64 {
    let chain = chains.get_mut(log).expect("known log");
    chain.seq += 1;
    let entry = Entry {
        format: format::FORMAT_VERSION,
        log: log.to_string(),
        seq: chain.seq,
        prev_hash: chain.prev.to_vec(),
        time_ms,
        request_id: String::new(),
        event: Some(Event { kind: Some(kind) }),
    };
    chain.prev = format::entry_hash(&prost::Message::encode_to_vec(&entry));
    pending.push(entry);
    chain.seq
}

/// Signs a batch of chained entries in parallel and files them under their logs, in order.
fn sign(net: &Network, pending: &mut Vec<Entry>, logs: &mut HashMap<String, Vec<SignedEntry>>) {
    let batch = std::mem::take(pending);
    let signed: Vec<SignedEntry> = batch
        .par_iter()
        .map(|e| {
            let key = if e.log == REGULATOR_LOG {
                &net.regulator
            } else {
                net.key(&e.log)
            };
            format::sign_entry(key, e)
        })
        .collect();
    for (entry, s) in batch.iter().zip(signed) {
        logs.entry(entry.log.clone()).or_default().push(s);
    }
}
