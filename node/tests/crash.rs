//! Durability against a real crash: a `huren-node run` process is killed with SIGKILL in the
//! middle of a stream of acknowledged appends, restarted from the same folder, and must hold
//! every acknowledged entry in a chain that verifies, and answer a retried request without
//! appending.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use huren_node::config::{token_digest, Config, ReplicationConfig, Role, TokenEntry};
use huren_proto::pb::{self, ledger_client::LedgerClient};
use huren_proto::{format, keyfile};
use prost::Message;
use tonic::transport::Channel;

const TOKEN: &str = "crash-test-issuer-token";

/// Acknowledged appends: request number → (seq, entry hash) as the node answered.
type Acked = Arc<Mutex<BTreeMap<usize, (u64, Vec<u8>)>>>;

/// Kills the node process when dropped, so a failing test leaves nothing running.
struct NodeProcess(Child);

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().unwrap().port()
}

fn write_network(dir: &Path) -> (std::path::PathBuf, std::net::SocketAddr) {
    let regulator = keyfile::generate();
    let market = keyfile::generate();
    keyfile::write_secret(&dir.join("market.key"), &market).unwrap();
    let grpc: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let http: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let record = pb::Market {
        id: "shanxi".into(),
        name_zh: "山西".into(),
        name_latin: "Shanxi".into(),
        public_key: market.verifying_key().to_bytes().to_vec(),
        grpc_addr: format!("http://{grpc}"),
        http_addr: format!("http://{http}"),
    };
    let trust = huren_proto::trust::sign_trust_list(&regulator, "crash", vec![record], 1);
    std::fs::write(dir.join("trust-list.pb"), trust.encode_to_vec()).unwrap();
    let config = Config {
        market: "shanxi".into(),
        data_dir: "data".into(),
        key_file: "market.key".into(),
        trust_list: "trust-list.pb".into(),
        regulator_key: keyfile::public_hex(&regulator.verifying_key()),
        listen: grpc,
        http_listen: Some(http),
        peers: Vec::new(),
        tokens: vec![TokenEntry {
            name: "lab".into(),
            role: Role::Issuer,
            sha256: token_digest(TOKEN),
        }],
        replication: ReplicationConfig::default(),
    };
    let path = dir.join("config.toml");
    std::fs::write(&path, toml::to_string(&config).unwrap()).unwrap();
    (path, grpc)
}

fn start(config: &Path, log: &Path) -> NodeProcess {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_huren-node"))
        .args(["run", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("huren-node starts");
    NodeProcess(child)
}

async fn connect(addr: std::net::SocketAddr) -> LedgerClient<Channel> {
    for _ in 0..400 {
        if let Ok(mut client) = LedgerClient::connect(format!("http://{addr}")).await {
            if client.status(pb::StatusRequest {}).await.is_ok() {
                return client;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("node at {addr} did not come up");
}

/// The `n`th request of the stream: the same request id always carries the same report.
fn request(n: usize, day_start_ms: i64) -> pb::IssueReportRequest {
    let report = huren_client::sample::day("shanxi", n as u64, 1, day_start_ms).remove(0);
    pb::IssueReportRequest {
        request_id: format!("crash-{n}"),
        report: Some(report),
    }
}

fn authed<T>(message: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    r
}

/// Reads the whole log and checks every signature and link with the format rules.
async fn verify_chain(
    client: &mut LedgerClient<Channel>,
    key: &ed25519_dalek::VerifyingKey,
) -> Vec<format::Hash> {
    let mut hashes = Vec::new();
    let mut head = (0u64, format::GENESIS_PREV_HASH);
    loop {
        let request = pb::ReadLogRequest {
            log: "shanxi".into(),
            from: head.0 + 1,
            limit: 1000,
        };
        let reply = client.read_log(request).await.unwrap().into_inner();
        if reply.entries.is_empty() {
            break;
        }
        for signed in reply.entries {
            let verified =
                format::VerifiedEntry::verify(key, signed).expect("every stored entry verifies");
            format::check_link(head.0, &head.1, &verified.entry).expect("every link holds");
            head = (verified.entry.seq, verified.hash);
            hashes.push(verified.hash);
        }
    }
    hashes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_stream_restarts_with_every_acknowledged_entry_in_a_verifying_chain() {
    let dir = tempfile::tempdir().unwrap();
    let (config, addr) = write_network(dir.path());
    let key = keyfile::read_secret(&dir.path().join("market.key"))
        .unwrap()
        .verifying_key();
    let log = dir.path().join("node.log");
    let acked: Acked = Arc::default();
    let mut next = 0usize;
    let now = huren_node::clock::Clock::now_ms(&huren_node::clock::SystemClock);
    let day_start = now - 13 * 3_600_000;

    for round in 0..3 {
        let mut node = start(&config, &log);
        let client = connect(addr).await;
        // Eight writers stream appends; the node is killed while they are in flight.
        let mut writers = Vec::new();
        for w in 0..8 {
            let mut client = client.clone();
            let acked = Arc::clone(&acked);
            let base = next + w * 10_000;
            writers.push(tokio::spawn(async move {
                for n in base..base + 10_000 {
                    match client.issue_report(authed(request(n, day_start))).await {
                        Ok(reply) => {
                            let reply = reply.into_inner();
                            acked.lock().unwrap().insert(n, (reply.seq, reply.hash));
                        }
                        Err(_) => return,
                    }
                }
            }));
        }
        next += 80_000;
        let started = acked.lock().unwrap().len();
        for _ in 0..1000 {
            if acked.lock().unwrap().len() >= started + 150 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        node.0.kill().expect("SIGKILL the node");
        node.0.wait().unwrap();
        for w in writers {
            let _ = w.await;
        }
        let now = acked.lock().unwrap().len();
        assert!(
            now > started,
            "round {round}: appends were acknowledged before the kill"
        );
    }

    let _node = start(&config, &log);
    let mut client = connect(addr).await;
    let hashes = verify_chain(&mut client, &key).await;
    let acked = acked.lock().unwrap().clone();
    for (n, (seq, hash)) in &acked {
        let held = hashes
            .get(*seq as usize - 1)
            .unwrap_or_else(|| panic!("acknowledged request {n} (seq {seq}) is missing"));
        assert_eq!(
            held.as_slice(),
            hash.as_slice(),
            "request {n}: seq {seq} holds what was acked"
        );
    }
    // A retry of an acknowledged request after the crash appends nothing.
    let (n, (seq, hash)) = acked.iter().next().map(|(n, v)| (*n, v.clone())).unwrap();
    let retry = client
        .issue_report(authed(request(n, day_start)))
        .await
        .unwrap()
        .into_inner();
    assert!(retry.replayed);
    assert_eq!((retry.seq, retry.hash), (seq, hash));
    assert_eq!(verify_chain(&mut client, &key).await.len(), hashes.len());
}
