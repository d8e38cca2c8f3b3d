//! A test network: N real nodes in this process, each with its own store in a temporary
//! folder and its own gRPC server on a port the OS picked, replicating over real gRPC through
//! injectable link faults. Tests talk to the nodes over gRPC only, as users do.
#![deny(missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use huren_node::clock::SystemClock;
use huren_node::config::{token_digest, Role, TokenEntry};
use huren_node::replication::{Faults, Peer, Settings};
use huren_node::server::{launch, Launch, Running};
use huren_proto::pb::{self, ledger_client::LedgerClient, replication_client::ReplicationClient};
use huren_proto::trust::Membership;
use tonic::transport::Channel;

/// Market ids of a test network.
pub const IDS: [&str; 7] = [
    "shanxi",
    "jiuzhou",
    "tunhui",
    "zhangzitou",
    "market5",
    "market6",
    "market7",
];

/// How a test network's nodes are started.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Each node also serves HTTP (JSON API, board, report pages) on a port the OS picked;
    /// the trust list advertises it as the market's `http_addr`.
    pub http: bool,
    /// Most entries per replication batch; 0 means 500.
    pub batch_entries: u32,
}

/// A running test network.
pub struct Testnet {
    /// Holds every store; removed when the network is dropped.
    pub dir: tempfile::TempDir,
    /// Market ids, by index.
    pub markets: Vec<String>,
    /// Each market's key.
    pub keys: Vec<SigningKey>,
    /// The regulator's key.
    pub regulator: SigningKey,
    /// Signed trust list.
    pub trust: pb::SignedTrustList,
    /// Link faults between nodes.
    pub faults: Arc<Faults>,
    /// Each node's gRPC address (kept across restarts).
    pub addrs: Vec<SocketAddr>,
    /// Each node's HTTP address when started with [`Options::http`] (kept across restarts).
    pub http_addrs: Vec<Option<SocketAddr>>,
    nodes: Vec<Option<Running>>,
    settings: Settings,
}

/// Token of a role at a market: fixed per test network, so tests can present them.
pub fn token(role: &str, market: &str) -> String {
    format!("test-{role}-{market}")
}

impl Testnet {
    /// Starts `n` nodes (at most seven), fully meshed, pulling every `pull_ms`.
    pub async fn start(n: usize, pull_ms: u64) -> Self {
        Self::start_with(n, pull_ms, Options::default()).await
    }

    /// As [`Testnet::start`], with `options`.
    pub async fn start_with(n: usize, pull_ms: u64, options: Options) -> Self {
        assert!(n <= IDS.len());
        let markets: Vec<String> = IDS[..n].iter().map(|s| s.to_string()).collect();
        let keys: Vec<SigningKey> = (0..n)
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let regulator = SigningKey::from_bytes(&[0xEE; 32]);
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(
                tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback"),
            );
        }
        let addrs: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        let mut http_listeners = Vec::new();
        for _ in 0..n {
            http_listeners.push(if options.http {
                Some(
                    tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind loopback"),
                )
            } else {
                None
            });
        }
        let http_addrs: Vec<Option<SocketAddr>> = http_listeners
            .iter()
            .map(|l| l.as_ref().map(|l| l.local_addr().unwrap()))
            .collect();
        let market_records = (0..n)
            .map(|i| pb::Market {
                id: markets[i].clone(),
                name_zh: format!("市场{i}"),
                name_latin: markets[i].clone(),
                public_key: keys[i].verifying_key().to_bytes().to_vec(),
                grpc_addr: format!("http://{}", addrs[i]),
                http_addr: http_addrs[i]
                    .map(|a| format!("http://{a}"))
                    .unwrap_or_default(),
            })
            .collect();
        let trust = huren_proto::trust::sign_trust_list(&regulator, "test", market_records, 1);
        let mut net = Self {
            dir: tempfile::tempdir().expect("temporary folder"),
            markets,
            keys,
            regulator,
            trust,
            faults: Arc::new(Faults::seeded(7)),
            addrs,
            http_addrs,
            nodes: (0..n).map(|_| None).collect(),
            settings: Settings {
                pull_interval: Duration::from_millis(pull_ms),
                batch_entries: if options.batch_entries == 0 {
                    500
                } else {
                    options.batch_entries
                },
            },
        };
        for (i, (listener, http)) in listeners.into_iter().zip(http_listeners).enumerate() {
            net.launch(i, listener, http).await;
        }
        net
    }

    fn membership(&self) -> Membership {
        Membership::from_trust_list(&self.trust, &self.regulator.verifying_key())
            .expect("test trust list verifies")
    }

    async fn launch(
        &mut self,
        i: usize,
        grpc: tokio::net::TcpListener,
        http: Option<tokio::net::TcpListener>,
    ) {
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
            TokenEntry {
                name: "regulator".into(),
                role: Role::Regulator,
                sha256: token_digest(&token("regulator", "all")),
            },
        ];
        for other in &self.markets {
            tokens.push(TokenEntry {
                name: format!("peer-{other}"),
                role: Role::Peer,
                sha256: token_digest(&token("peer", other)),
            });
        }
        let peers = self
            .markets
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(j, m)| Peer {
                market: m.clone(),
                url: format!("http://{}", self.addrs[j]),
                token: token("peer", me),
            })
            .collect();
        let running = launch(Launch {
            market: me.clone(),
            key: self.keys[i].clone(),
            data_dir: self.dir.path().join(me),
            membership: self.membership(),
            clock: Arc::new(SystemClock),
            tokens,
            grpc,
            http,
            peers,
            settings: self.settings,
            faults: Arc::clone(&self.faults),
        })
        .await
        .expect("node starts");
        self.nodes[i] = Some(running);
    }

    /// The running node `i`.
    pub fn node(&self, i: usize) -> &Running {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// Stops node `i`; its store stays.
    pub async fn stop(&mut self, i: usize) {
        if let Some(r) = self.nodes[i].take() {
            r.stop().await;
        }
    }

    /// Restarts node `i` on its old port (and its old HTTP port), from its store.
    pub async fn restart(&mut self, i: usize) {
        let listener = rebind(self.addrs[i]).await;
        let http = match self.http_addrs[i] {
            Some(addr) => Some(rebind(addr).await),
            None => None,
        };
        self.launch(i, listener, http).await;
    }

    /// Node `i`'s HTTP base URL, e.g. `http://127.0.0.1:40123`.
    ///
    /// # Panics
    /// If the network was started without [`Options::http`].
    pub fn http_url(&self, i: usize) -> String {
        let addr = self.http_addrs[i].expect("the network was started with Options { http: true }");
        format!("http://{addr}")
    }

    /// A gRPC client of node `i`.
    pub async fn client(&self, i: usize) -> LedgerClient<Channel> {
        LedgerClient::connect(format!("http://{}", self.addrs[i]))
            .await
            .expect("connect to node")
    }

    /// A replication client of node `i`.
    pub async fn replication(&self, i: usize) -> ReplicationClient<Channel> {
        ReplicationClient::connect(format!("http://{}", self.addrs[i]))
            .await
            .expect("connect to node")
    }

    /// The folder of node `i`'s store.
    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(&self.markets[i])
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            self.stop(i).await;
        }
    }
}

/// Binds `addr` again once a stopped node has let go of it (up to five seconds).
async fn rebind(addr: SocketAddr) -> tokio::net::TcpListener {
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return l,
            Err(_) if tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("port {addr} did not come free: {e}"),
        }
    }
}

/// Attaches a bearer token to a request.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("token is ASCII"),
    );
    request
}

/// Polls `check` every 20 ms until it holds or `timeout` passes; returns whether it held.
pub async fn eventually<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A valid, negative (pass) sample report for `market`; `n` picks which one.
pub fn sample_report(market: &str, n: usize) -> pb::ReportIssued {
    let now = huren_node::clock::Clock::now_ms(&SystemClock);
    huren_client::sample::day(market, n as u64, 30, now - 13 * 3_600_000)
        .into_iter()
        .find(|r| r.result == pb::TestResult::Negative as i32)
        .expect("a sample day holds passes")
}

/// Issues a report at node `i` over gRPC and returns the node's answer.
pub async fn issue(
    net: &Testnet,
    i: usize,
    report: pb::ReportIssued,
    request_id: &str,
) -> pb::AppendResponse {
    let mut client = net.client(i).await;
    let request = pb::IssueReportRequest {
        request_id: request_id.into(),
        report: Some(report),
    };
    client
        .issue_report(authed(request, &token("issuer", &net.markets[i])))
        .await
        .expect("issue succeeds")
        .into_inner()
}

/// Node `i`'s head of `log` over gRPC.
pub async fn head(net: &Testnet, i: usize, log: &str) -> u64 {
    let mut client = net.client(i).await;
    let heads = client
        .heads(pb::HeadsRequest {})
        .await
        .expect("heads")
        .into_inner()
        .heads;
    heads.iter().find(|h| h.log == log).map_or(0, |h| h.seq)
}

/// Signs the entry after `head` of the regulator's log with the network's regulator key, as
/// the regulator's CLI does (`huren_client::regulator`).
pub fn regulator_entry(
    net: &Testnet,
    head: (u64, [u8; 32]),
    time_ms: i64,
    request_id: &str,
    kind: pb::event::Kind,
) -> pb::SignedEntry {
    let head = huren_client::regulator::Head {
        seq: head.0,
        hash: head.1,
    };
    let entry = huren_client::regulator::next_entry(&head, time_ms, request_id, kind)
        .expect("tests build well-formed regulator events");
    huren_proto::format::sign_entry(&net.regulator, &entry)
}
