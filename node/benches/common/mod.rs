//! What the node's bench targets share: a network of up to seven markets with fixed keys and
//! a signed trust list, starting real nodes in this process on ports the OS picks and in
//! temporary folders (the small launch logic of huren-tests' `Testnet`, copied, because a
//! bench of huren-node cannot depend on huren-tests), command-line options, the machine line
//! every bench prints, and the pre-fill of a store with many signed entries.
//!
//! It never reaches beyond 127.0.0.1 and everything it starts is stopped by its caller.
#![allow(dead_code)] // Each bench target uses a different part of this module.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use huren_node::clock::SystemClock;
use huren_node::config::{token_digest, Role, TokenEntry};
use huren_node::replication::{Faults, Peer, Settings};
use huren_node::server::{launch, Launch, Running};
use huren_node::store::Store;
use huren_proto::format;
use huren_proto::pb::{self, event::Kind};
use huren_proto::trust::Membership;
use rayon::prelude::*;

/// Market ids, as the devnet names them.
pub const IDS: [&str; 7] = [
    "shanxi",
    "jiuzhou",
    "tunhui",
    "zhangzitou",
    "market5",
    "market6",
    "market7",
];

/// `--name value` options after `cargo bench ... --`; anything else is ignored (cargo passes
/// `--bench`).
pub struct Options(HashMap<String, String>);

impl Options {
    /// Reads the process's arguments.
    pub fn from_env() -> Self {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut map = HashMap::new();
        let mut i = 0;
        while i < args.len() {
            if let Some(name) = args[i].strip_prefix("--") {
                if let Some(value) = args.get(i + 1).filter(|v| !v.starts_with("--")) {
                    map.insert(name.to_string(), value.clone());
                    i += 2;
                    continue;
                }
                map.insert(name.to_string(), String::new());
            }
            i += 1;
        }
        Self(map)
    }

    /// A number option, or `default`.
    pub fn num(&self, name: &str, default: u64) -> u64 {
        self.0
            .get(name)
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or(default)
    }

    /// True when `--name` was given.
    pub fn flag(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }
}

/// The line every bench prints first: date, CPUs, memory, load.
pub fn machine_line(what: &str) -> String {
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1048576.0)
        });
    format!(
        "{what}\n{date}; {} CPUs; memory {mem}; load average {}",
        huren_client::bench::cpus(),
        huren_client::bench::load_average()
    )
}

/// Token of a role at a market.
pub fn token(role: &str, market: &str) -> String {
    format!("bench-{role}-{market}")
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    huren_node::clock::Clock::now_ms(&SystemClock)
}

/// Keys and the signed trust list of `n` markets.
pub struct Net {
    /// Holds every store; removed when dropped.
    pub dir: tempfile::TempDir,
    /// Market ids.
    pub markets: Vec<String>,
    /// Market keys.
    pub keys: Vec<SigningKey>,
    /// Regulator key.
    pub regulator: SigningKey,
    /// Signed trust list (no addresses: peers are given to each node directly).
    pub trust: pb::SignedTrustList,
}

impl Net {
    /// `n` markets (at most seven) with fixed keys.
    pub fn new(n: usize) -> Self {
        let markets: Vec<String> = IDS[..n].iter().map(|s| s.to_string()).collect();
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let regulator = SigningKey::from_bytes(&[0xEE; 32]);
        let records = (0..n)
            .map(|i| pb::Market {
                id: markets[i].clone(),
                name_zh: format!("市场{i}"),
                name_latin: markets[i].clone(),
                public_key: keys[i].verifying_key().to_bytes().to_vec(),
                grpc_addr: String::new(),
                http_addr: String::new(),
            })
            .collect();
        let trust = huren_proto::trust::sign_trust_list(&regulator, "bench", records, 1);
        Self {
            dir: tempfile::tempdir().expect("a temporary folder"),
            markets,
            keys,
            regulator,
            trust,
        }
    }

    /// Membership from the trust list.
    pub fn membership(&self) -> Membership {
        Membership::from_trust_list(&self.trust, &self.regulator.verifying_key())
            .expect("the bench trust list verifies")
    }

    /// The store folder of a node named `name`.
    pub fn data_dir(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Starts market `i`'s node with its store in `data` (a folder name under the network's
    /// folder), on `listener`, replicating with `peers` (market index, gRPC address).
    pub async fn launch(
        &self,
        i: usize,
        data: &str,
        listener: tokio::net::TcpListener,
        peers: &[(usize, std::net::SocketAddr)],
        settings: Settings,
    ) -> Running {
        let me = &self.markets[i];
        let mut tokens = vec![
            TokenEntry {
                name: "lab".into(),
                role: Role::Issuer,
                sha256: token_digest(&token("issuer", me)),
            },
            TokenEntry {
                name: "gate".into(),
                role: Role::Intake,
                sha256: token_digest(&token("intake", me)),
            },
        ];
        for other in &self.markets {
            tokens.push(TokenEntry {
                name: format!("peer-{other}"),
                role: Role::Peer,
                sha256: token_digest(&token("peer", other)),
            });
        }
        let peers = peers
            .iter()
            .map(|(j, addr)| Peer {
                market: self.markets[*j].clone(),
                url: format!("http://{addr}"),
                token: token("peer", me),
            })
            .collect();
        launch(Launch {
            market: me.clone(),
            key: self.keys[i].clone(),
            data_dir: self.data_dir(data),
            membership: self.membership(),
            clock: Arc::new(SystemClock),
            tokens,
            grpc: listener,
            http: None,
            peers,
            settings,
            faults: Arc::new(Faults::default()),
        })
        .await
        .expect("the node starts")
    }
}

/// A listener on 127.0.0.1 with a port the OS picks.
pub async fn loopback() -> tokio::net::TcpListener {
    tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0")
}

/// The node's shipped replication settings (config defaults).
pub fn default_settings() -> Settings {
    huren_node::config::ReplicationConfig::default().into()
}

/// Signed entries for a store, per market log, with what the benches need to ask about them.
pub struct Prefill {
    /// Entries of each market's log, in seq order.
    pub logs: Vec<Vec<pb::SignedEntry>>,
    /// Up to 10,000 reports spread over the logs: (id, product, unit).
    pub samples: Vec<(String, String, String)>,
    /// Reports that every market took some of in: their ids.
    pub traced: Vec<String>,
    /// Time spent generating and signing.
    pub elapsed: Duration,
}

impl Prefill {
    /// Entries in all logs.
    pub fn len(&self) -> usize {
        self.logs.iter().map(Vec::len).sum()
    }
}

/// Generates `reports` report-issued entries spread evenly over the markets' logs, and, when
/// `traced` is above zero, that many reports (issued in kg) that every market then takes one
/// kilogram of, with an intake-accepted entry in its own log. Bodies are chained in order per
/// log (each names its predecessor's hash); signing runs on every core.
pub fn prefill(net: &Net, reports: usize, traced: usize) -> Prefill {
    let started = Instant::now();
    let n = net.markets.len();
    let now = now_ms();
    let day_start = now - 13 * 3_600_000;
    let base_ms = now - 15 * 60_000;
    // The traced reports: report k is issued by market k % n, at seq 1 + k / n.
    let per_log = reports.div_ceil(n);
    let traced_ids: Vec<(usize, u64)> = (0..traced).map(|k| (k % n, 1 + (k / n) as u64)).collect();
    let kg_pool: Vec<pb::ReportIssued> = huren_client::sample::day("shanxi", 99, 400, day_start)
        .into_iter()
        .filter(|r| {
            r.quantity.as_ref().is_some_and(|q| q.unit == "kg")
                && r.result == pb::TestResult::Negative as i32
        })
        .collect();

    let mut logs = Vec::with_capacity(n);
    let mut samples = Vec::new();
    let mut traced_reports: HashMap<String, pb::ReportIssued> = HashMap::new();
    for (i, market) in net.markets.iter().enumerate() {
        let count = reports.saturating_sub(i * per_log).min(per_log);
        let mut entries: Vec<pb::Entry> = Vec::with_capacity(count + traced);
        let mut prev = format::GENESIS_PREV_HASH;
        let mut push = |entries: &mut Vec<pb::Entry>, kind: Kind| {
            let seq = entries.len() as u64 + 1;
            let entry = pb::Entry {
                format: format::FORMAT_VERSION,
                log: market.clone(),
                seq,
                prev_hash: prev.to_vec(),
                time_ms: base_ms + seq as i64,
                request_id: format!("prefill-{seq}"),
                event: Some(pb::Event { kind: Some(kind) }),
            };
            prev = format::entry_hash(&prost::Message::encode_to_vec(&entry));
            entries.push(entry);
        };
        let code = huren_client::sample::market_code(market);
        let mut chunk = 0u64;
        let mut next_sample = 1u64;
        while entries.len() < count {
            let want = (count - entries.len()).min(10_000);
            let day = huren_client::sample::day(market, 1000 + chunk, want, day_start);
            chunk += 1;
            for mut report in day {
                let seq = entries.len() as u64 + 1;
                let id = huren_proto::ids::report_id(market, seq);
                if let Some(k) = traced_ids.iter().position(|t| *t == (i, seq)) {
                    report = kg_pool[k % kg_pool.len()].clone();
                    traced_reports.insert(id.clone(), report.clone());
                }
                report.lot_id = format!("L-{code}-{seq:07}");
                report.bag_code = format!("BAG-{code}-{seq:07}");
                if seq >= next_sample && samples.len() < 10_000 {
                    next_sample += per_log as u64 / 1500 + 1;
                    let unit = report.quantity.as_ref().map_or("kg", |q| q.unit.as_str());
                    samples.push((id, report.product.clone(), unit.to_string()));
                }
                push(&mut entries, Kind::ReportIssued(report));
            }
        }
        logs.push(entries);
    }
    // Every market takes one kilogram of each traced report in.
    let traced_list: Vec<String> = traced_ids
        .iter()
        .map(|(i, seq)| huren_proto::ids::report_id(&net.markets[*i], *seq))
        .filter(|id| traced_reports.contains_key(id))
        .collect();
    for (i, entries) in logs.iter_mut().enumerate() {
        let market = &net.markets[i];
        let mut prev = entries
            .last()
            .map(|e| format::entry_hash(&prost::Message::encode_to_vec(e)))
            .unwrap_or(format::GENESIS_PREV_HASH);
        for id in &traced_list {
            let report = &traced_reports[id];
            let seq = entries.len() as u64 + 1;
            let entry = pb::Entry {
                format: format::FORMAT_VERSION,
                log: market.clone(),
                seq,
                prev_hash: prev.to_vec(),
                time_ms: base_ms + seq as i64,
                request_id: format!("prefill-{seq}"),
                event: Some(pb::Event {
                    kind: Some(Kind::IntakeAccepted(pb::IntakeAccepted {
                        report_id: id.clone(),
                        quantity: Some(pb::Quantity {
                            amount: "1".into(),
                            unit: "kg".into(),
                        }),
                        product: report.product.clone(),
                        rules_version: 0,
                        issuer_seq_seen: 0,
                        regulator_seq_seen: 0,
                    })),
                }),
            };
            prev = format::entry_hash(&prost::Message::encode_to_vec(&entry));
            entries.push(entry);
        }
    }
    let signed: Vec<Vec<pb::SignedEntry>> = logs
        .into_iter()
        .enumerate()
        .map(|(i, entries)| {
            let key = &net.keys[i];
            entries
                .into_par_iter()
                .map(|e| format::sign_entry(key, &e))
                .collect()
        })
        .collect();
    Prefill {
        logs: signed,
        samples,
        traced: traced_list,
        elapsed: started.elapsed(),
    }
}

/// Writes every entry of `logs` straight into a store at `dir`, through the store's own
/// batch API and key format, in batches of 10,000, with one flush at the end. No check runs
/// here: the node checks every entry when it opens the store.
pub async fn write_store(dir: &Path, logs: &[Vec<pb::SignedEntry>], markets: &[String]) {
    let store = Store::open(dir).expect("the store opens");
    for (log, entries) in markets.iter().zip(logs) {
        for (c, chunk) in entries.chunks(10_000).enumerate() {
            let mut batch = sled::Batch::default();
            for (k, signed) in chunk.iter().enumerate() {
                Store::stage(&mut batch, log, (c * 10_000 + k + 1) as u64, signed);
            }
            store.commit(batch).expect("the batch applies");
        }
    }
    store.flush().await.expect("the store flushes");
}

/// Strict signature checks of every entry of `logs` under its market's key, on every core;
/// returns (entries checked, time).
pub fn verify_all(net: &Net, logs: &[Vec<pb::SignedEntry>]) -> (usize, Duration) {
    let started = Instant::now();
    let mut n = 0;
    for (i, entries) in logs.iter().enumerate() {
        let key = net.keys[i].verifying_key();
        let ok = entries
            .par_iter()
            .filter(|s| format::verify_signature(&key, s).is_ok())
            .count();
        assert_eq!(ok, entries.len(), "generated entries verify");
        n += ok;
    }
    (n, started.elapsed())
}
