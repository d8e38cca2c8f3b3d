//! A few real nodes in this process for the event-sourcing and audit tests: each with its own
//! store in a temporary folder and its gRPC server on a port the OS picked, fully meshed, and
//! a seeded workload of the operations markets perform (issue, revoke, intake accepted and
//! rejected, dispose), with restarts in between.
#![allow(dead_code)] // Each test file uses a different part of the kit.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use huren_node::clock::{Clock, SystemClock};
use huren_node::config::{token_digest, Role, TokenEntry};
use huren_node::node::{Node, ReportRef};
use huren_node::replication::{Faults, Peer, Settings};
use huren_node::server::{launch, Launch, Running};
use huren_proto::ledger::Lot;
use huren_proto::pb::{self, event::Kind};
use huren_proto::trust::Membership;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Market ids of the test network.
pub const MARKETS: [&str; 3] = ["shanxi", "jiuzhou", "tunhui"];

/// The network: nodes that can be stopped and restarted on their ports, from their stores.
pub struct Net {
    /// Holds every store; removed on drop.
    pub dir: tempfile::TempDir,
    /// Each market's key.
    pub keys: Vec<SigningKey>,
    /// The regulator's key.
    pub regulator: SigningKey,
    /// The signed trust list.
    pub trust: pb::SignedTrustList,
    /// Each node's gRPC address, kept across restarts.
    pub addrs: Vec<SocketAddr>,
    nodes: Vec<Option<Running>>,
}

fn peer_token(market: &str) -> String {
    format!("peer-token-{market}")
}

impl Net {
    /// Starts one node per market of [`MARKETS`], pulling from each other every 100 ms.
    pub async fn start() -> Self {
        let keys: Vec<SigningKey> = (0..MARKETS.len())
            .map(|i| SigningKey::from_bytes(&[0x60 + i as u8; 32]))
            .collect();
        let regulator = SigningKey::from_bytes(&[0x6F; 32]);
        let mut listeners = Vec::new();
        for _ in MARKETS {
            listeners.push(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback"),
            );
        }
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.local_addr().expect("bound address"))
            .collect();
        let markets = MARKETS
            .iter()
            .enumerate()
            .map(|(i, id)| pb::Market {
                id: id.to_string(),
                name_zh: format!("市场{i}"),
                name_latin: id.to_string(),
                public_key: keys[i].verifying_key().to_bytes().to_vec(),
                grpc_addr: format!("http://{}", addrs[i]),
                http_addr: String::new(),
            })
            .collect();
        let trust = huren_proto::trust::sign_trust_list(&regulator, "rebuild-test", markets, 1);
        let mut net = Self {
            dir: tempfile::tempdir().expect("temporary folder"),
            keys,
            regulator,
            trust,
            addrs,
            nodes: MARKETS.iter().map(|_| None).collect(),
        };
        for (i, listener) in listeners.into_iter().enumerate() {
            net.launch(i, listener).await;
        }
        net
    }

    /// Membership from the trust list.
    pub fn membership(&self) -> Membership {
        Membership::from_trust_list(&self.trust, &self.regulator.verifying_key())
            .expect("test trust list verifies")
    }

    /// Node `i`'s data folder.
    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(MARKETS[i])
    }

    async fn launch(&mut self, i: usize, grpc: tokio::net::TcpListener) {
        let tokens = MARKETS
            .iter()
            .map(|m| TokenEntry {
                name: format!("peer-{m}"),
                role: Role::Peer,
                sha256: token_digest(&peer_token(m)),
            })
            .collect();
        let peers = MARKETS
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, m)| Peer {
                market: m.to_string(),
                url: format!("http://{}", self.addrs[j]),
                token: peer_token(MARKETS[i]),
            })
            .collect();
        let running = launch(Launch {
            market: MARKETS[i].into(),
            key: self.keys[i].clone(),
            data_dir: self.data_dir(i),
            membership: self.membership(),
            clock: Arc::new(SystemClock),
            tokens,
            grpc,
            http: None,
            peers,
            settings: Settings {
                pull_interval: Duration::from_millis(100),
                batch_entries: 500,
            },
            faults: Arc::new(Faults::default()),
        })
        .await
        .expect("node starts");
        self.nodes[i] = Some(running);
    }

    /// Node `i`, if running.
    pub fn node(&self, i: usize) -> Option<&Arc<Node>> {
        self.nodes[i].as_ref().map(|r| &r.node)
    }

    /// Node `i`'s gRPC URL.
    pub fn url(&self, i: usize) -> String {
        format!("http://{}", self.addrs[i])
    }

    /// Stops node `i`; its store stays.
    pub async fn stop(&mut self, i: usize) {
        if let Some(running) = self.nodes[i].take() {
            running.stop().await;
        }
    }

    /// Restarts node `i` on its old port, from its store.
    pub async fn restart(&mut self, i: usize) {
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addrs[i]).await {
                Ok(l) => break l,
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("port {} did not come free: {e}", self.addrs[i]),
            }
        };
        self.launch(i, listener).await;
    }

    /// Waits until every running node holds the same heads of every log; false after
    /// `timeout`.
    pub async fn converged(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let heads: BTreeSet<Vec<(String, u64)>> = self
                .nodes
                .iter()
                .flatten()
                .map(|r| {
                    r.node
                        .ledger()
                        .heads()
                        .into_iter()
                        .map(|(log, seq, _, _)| (log, seq))
                        .collect()
                })
                .collect();
            if heads.len() == 1 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

/// What a workload did, by operation.
#[derive(Debug, Default, Clone)]
pub struct Done {
    /// Operations that were applied, by name.
    pub ops: HashMap<&'static str, u32>,
    /// Node restarts.
    pub restarts: u32,
}

fn positive_day(market: &str, now: i64) -> Vec<pb::ReportIssued> {
    (1..40)
        .flat_map(|seed| huren_client::sample::day(market, seed, 30, now - 13 * 3_600_000))
        .filter(|r| r.result == pb::TestResult::Positive as i32)
        .take(3)
        .collect()
}

/// Runs `steps` seeded operations on the network: issue a report (a few positives among
/// them), revoke one of a market's own reports, take goods in on a known report (accepted, or
/// rejected for a wrong product or an overdrawn lot), record a positive's disposal; and every
/// `restart_every` steps, stop a node and start it again from its store.
pub async fn workload(net: &mut Net, seed: u64, steps: usize, restart_every: usize) -> Done {
    let mut rng = StdRng::seed_from_u64(seed);
    let now = SystemClock.now_ms();
    let mut pool: Vec<Vec<pb::ReportIssued>> = MARKETS
        .iter()
        .map(|m| {
            let mut day = huren_client::sample::day(m, seed, 40, now - 13 * 3_600_000);
            day.retain(|r| r.result == pb::TestResult::Negative as i32);
            day.extend(positive_day(m, now));
            day
        })
        .collect();
    // Report ids by issuer, with the report, and what became of them.
    let mut issued: Vec<Vec<(String, pb::ReportIssued)>> =
        MARKETS.iter().map(|_| Vec::new()).collect();
    let mut revoked = BTreeSet::new();
    let mut disposed = BTreeSet::new();
    let mut done = Done::default();
    for step in 0..steps {
        if restart_every > 0 && step > 0 && step % restart_every == 0 {
            let i = rng.gen_range(0..MARKETS.len());
            net.stop(i).await;
            net.restart(i).await;
            done.restarts += 1;
        }
        let i = rng.gen_range(0..MARKETS.len());
        let Some(node) = net.node(i).cloned() else {
            continue;
        };
        let request_id = format!("w{seed}-{step}");
        let roll = rng.gen_range(0..100);
        let op = if roll < 35 || issued.iter().all(Vec::is_empty) {
            let pick = rng.gen_range(0..pool[i].len());
            let report = pool[i].swap_remove(pick);
            let event = pb::Event {
                kind: Some(Kind::ReportIssued(report.clone())),
            };
            let appended = node.append(request_id, event).await.expect("issue");
            let id = huren_proto::ids::report_id(MARKETS[i], appended.entry.entry.seq);
            issued[i].push((id, report));
            "issue"
        } else if roll < 42 {
            let candidates: Vec<&String> = issued[i]
                .iter()
                .map(|(id, _)| id)
                .filter(|id| !revoked.contains(*id))
                .collect();
            let Some(id) = candidates
                .get(rng.gen_range(0..candidates.len().max(1)))
                .cloned()
            else {
                continue;
            };
            let event = pb::Event {
                kind: Some(Kind::ReportRevoked(pb::ReportRevoked {
                    report_id: id.clone(),
                    reason: "实验室记录错误".into(),
                })),
            };
            node.append(request_id, event).await.expect("revoke");
            revoked.insert(id.clone());
            "revoke"
        } else if roll < 48 {
            let candidates: Vec<&String> = issued[i]
                .iter()
                .filter(|(id, r)| {
                    r.result == pb::TestResult::Positive as i32 && !disposed.contains(id)
                })
                .map(|(id, _)| id)
                .collect();
            let Some(id) = candidates.first().cloned().cloned() else {
                continue;
            };
            let event = pb::Event {
                kind: Some(Kind::DisposalRecorded(pb::DisposalRecorded {
                    report_id: id.clone(),
                    method: pb::DisposalMethod::Destroyed as i32,
                    by: "检测中心".into(),
                    disposed_at_ms: SystemClock.now_ms(),
                    reported_to_regulator: true,
                    note: String::new(),
                })),
            };
            node.append(request_id, event).await.expect("dispose");
            disposed.insert(id);
            "dispose"
        } else {
            let issuer = rng.gen_range(0..MARKETS.len());
            if issued[issuer].is_empty() {
                continue;
            }
            let (id, report) = issued[issuer][rng.gen_range(0..issued[issuer].len())].clone();
            let product = if rng.gen_bool(0.1) {
                "别的东西".to_string()
            } else {
                report.product.clone()
            };
            let quantity = huren_client::sample::draw(&report, rng.gen());
            let lot = Lot {
                product,
                category: None,
                quantity,
                at_ms: SystemClock.now_ms(),
            };
            let (verdict, _) = node
                .intake(request_id, ReportRef::Id(id), lot)
                .await
                .expect("intake recorded");
            if verdict.valid {
                "intake_accepted"
            } else {
                "intake_rejected"
            }
        };
        *done.ops.entry(op).or_insert(0) += 1;
    }
    done
}
