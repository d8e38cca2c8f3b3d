//! `huren-node devnet`: the whole network on one machine. On first start it creates, in one
//! folder, keys for the regulator and the seven markets, the signed trust list, one config
//! per market (the same files `huren-node run --config` takes) and the operator tokens, all
//! readable by their owner only; it then starts the seven nodes in this process, publishes
//! the recognition rules, and loads one realistic day of rapid tests once. A second start
//! reuses the folder and loads nothing twice: every loaded write carries a fixed request id,
//! and a marker records that the day was loaded.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use huren_proto::ledger::Lot;
use huren_proto::pb::{self, event::Kind};
use huren_proto::{ids, keyfile, rules};
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::config::{token_digest, Config, PeerConfig, ReplicationConfig, Role, TokenEntry};
use crate::error::NodeError;
use crate::node::{Node, ReportRef};
use crate::server::Running;

/// The seven markets: id, Chinese name, Latin name. The last three are not named in public
/// reporting and carry neutral ids until their real names are known.
pub const MARKETS: [(&str, &str, &str); 7] = [
    ("shanxi", "山西", "Shanxi"),
    ("jiuzhou", "九州", "Jiuzhou"),
    ("tunhui", "屯汇", "Tunhui"),
    ("zhangzitou", "丈子头", "Zhangzitou"),
    ("market5", "五号市场", "Market 5"),
    ("market6", "六号市场", "Market 6"),
    ("market7", "七号市场", "Market 7"),
];

/// Reports loaded per market on first start (7 × 32 = 224).
pub const REPORTS_PER_MARKET: usize = 32;

/// What the folder remembers between starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct State {
    base_port: u16,
    created_ms: i64,
    loaded: bool,
}

/// Where one market's files are.
#[derive(Debug, Clone)]
pub struct MarketFiles {
    /// Market id.
    pub id: String,
    /// Its config file.
    pub config: PathBuf,
    /// Issuer token file.
    pub issuer_token: PathBuf,
    /// Intake token file.
    pub intake_token: PathBuf,
}

/// The folder's layout.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The folder.
    pub dir: PathBuf,
    /// Every market's files, in [`MARKETS`] order.
    pub markets: Vec<MarketFiles>,
    /// Regulator's secret key.
    pub regulator_key: PathBuf,
    /// Regulator's token (role regulator on every node).
    pub regulator_token: PathBuf,
    /// Signed trust list.
    pub trust_list: PathBuf,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> NodeError + '_ {
    move |e| NodeError::Storage(format!("{}: {e}", path.display()))
}

/// Writes a file readable and writable by its owner only.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), NodeError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(contents).map_err(io(path))?;
    file.sync_all().map_err(io(path))
}

fn layout(dir: &Path) -> Layout {
    Layout {
        dir: dir.to_path_buf(),
        markets: MARKETS
            .iter()
            .map(|(id, ..)| MarketFiles {
                id: id.to_string(),
                config: dir.join(id).join("config.toml"),
                issuer_token: dir.join(id).join("issuer.token"),
                intake_token: dir.join(id).join("intake.token"),
            })
            .collect(),
        regulator_key: dir.join("regulator.key"),
        regulator_token: dir.join("regulator.token"),
        trust_list: dir.join("trust-list.pb"),
    }
}

/// Creates the folder's keys, trust list, configs and tokens, unless it already has them.
///
/// # Errors
/// [`NodeError::Storage`] when a file cannot be written, [`NodeError::BadInput`] when the
/// folder holds a devnet made for other ports.
pub fn create(dir: &Path, base_port: u16) -> Result<Layout, NodeError> {
    let l = layout(dir);
    let state_path = dir.join("devnet.toml");
    if state_path.exists() {
        let state: State =
            toml::from_str(&std::fs::read_to_string(&state_path).map_err(io(&state_path))?)
                .map_err(|e| NodeError::Storage(format!("{}: {e}", state_path.display())))?;
        if state.base_port != base_port {
            return Err(NodeError::BadInput {
                field: "base_port".into(),
                message: format!(
                    "{} was made with --base-port {}",
                    dir.display(),
                    state.base_port
                ),
            });
        }
        return Ok(l);
    }
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let regulator = keyfile::generate();
    keyfile::write_secret(&l.regulator_key, &regulator)
        .map_err(|e| NodeError::Storage(e.to_string()))?;
    let regulator_token = crate::config::new_token();
    write_private(
        &l.regulator_token,
        format!("{regulator_token}\n").as_bytes(),
    )?;

    let grpc = |i: usize| SocketAddr::from((Ipv4Addr::LOCALHOST, base_port + 1 + i as u16));
    let http = |i: usize| SocketAddr::from((Ipv4Addr::LOCALHOST, base_port + 1001 + i as u16));
    let mut markets = Vec::new();
    let mut peer_tokens = Vec::new();
    for (i, (id, zh, latin)) in MARKETS.iter().enumerate() {
        let folder = dir.join(id);
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        let key = keyfile::generate();
        keyfile::write_secret(&folder.join("market.key"), &key)
            .map_err(|e| NodeError::Storage(e.to_string()))?;
        let peer_token = crate::config::new_token();
        write_private(
            &folder.join("peer.token"),
            format!("{peer_token}\n").as_bytes(),
        )?;
        peer_tokens.push(peer_token);
        markets.push(pb::Market {
            id: id.to_string(),
            name_zh: zh.to_string(),
            name_latin: latin.to_string(),
            public_key: key.verifying_key().to_bytes().to_vec(),
            grpc_addr: format!("http://{}", grpc(i)),
            http_addr: format!("http://{}", http(i)),
        });
    }
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let trust = huren_proto::trust::sign_trust_list(&regulator, "devnet", markets, now);
    write_private(&l.trust_list, &trust.encode_to_vec())?;

    for (i, files) in l.markets.iter().enumerate() {
        let issuer = crate::config::new_token();
        let intake = crate::config::new_token();
        write_private(&files.issuer_token, format!("{issuer}\n").as_bytes())?;
        write_private(&files.intake_token, format!("{intake}\n").as_bytes())?;
        let mut tokens = vec![
            TokenEntry {
                name: format!("{}-lab", files.id),
                role: Role::Issuer,
                sha256: token_digest(&issuer),
            },
            TokenEntry {
                name: format!("{}-gate", files.id),
                role: Role::Intake,
                sha256: token_digest(&intake),
            },
            TokenEntry {
                name: "regulator".into(),
                role: Role::Regulator,
                sha256: token_digest(&regulator_token),
            },
        ];
        let mut peers = Vec::new();
        for (j, other) in l.markets.iter().enumerate() {
            if i == j {
                continue;
            }
            tokens.push(TokenEntry {
                name: format!("peer-{}", other.id),
                role: Role::Peer,
                sha256: token_digest(&peer_tokens[j]),
            });
            peers.push(PeerConfig {
                market: other.id.clone(),
                url: format!("http://{}", grpc(j)),
                token_file: PathBuf::from("peer.token"),
            });
        }
        let config = Config {
            market: files.id.clone(),
            data_dir: PathBuf::from("data"),
            key_file: PathBuf::from("market.key"),
            trust_list: PathBuf::from("../trust-list.pb"),
            regulator_key: keyfile::public_hex(&regulator.verifying_key()),
            listen: grpc(i),
            http_listen: Some(http(i)),
            peers,
            tokens,
            replication: ReplicationConfig {
                pull_interval_ms: 500,
                ..ReplicationConfig::default()
            },
        };
        let text =
            toml::to_string_pretty(&config).map_err(|e| NodeError::Storage(e.to_string()))?;
        write_private(&files.config, text.as_bytes())?;
    }
    let state = State {
        base_port,
        created_ms: now,
        loaded: false,
    };
    write_private(
        &state_path,
        toml::to_string(&state)
            .expect("state serialises")
            .as_bytes(),
    )?;
    Ok(l)
}

/// Starts every market's node from its config file in this process.
///
/// # Errors
/// As [`crate::run::start`].
pub async fn start(l: &Layout) -> Result<Vec<Running>, NodeError> {
    let mut running = Vec::new();
    for files in &l.markets {
        let config = Config::load(&files.config).map_err(|e| NodeError::BadInput {
            field: "config".into(),
            message: e.to_string(),
        })?;
        match crate::run::start(&config).await {
            Ok(r) => running.push(r),
            Err(e) => {
                for r in running {
                    r.stop().await;
                }
                return Err(e);
            }
        }
    }
    Ok(running)
}

async fn wait_for<F: Fn() -> bool>(what: &str, check: F) -> Result<(), NodeError> {
    for _ in 0..600 {
        if check() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(NodeError::Unavailable(format!(
        "timed out waiting for {what}"
    )))
}

/// Loads one day of rapid tests: rules, reports at every market, a few intakes of goods
/// that moved between markets, a revocation and the disposal of positive lots. Idempotent.
///
/// # Errors
/// [`NodeError`] from any write.
pub async fn load_day(l: &Layout, nodes: &[Arc<Node>]) -> Result<LoadSummary, NodeError> {
    let mut summary = LoadSummary::default();
    let regulator =
        keyfile::read_secret(&l.regulator_key).map_err(|e| NodeError::Storage(e.to_string()))?;
    let first = &nodes[0];
    let now = first.clock().now_ms();

    // The regulator publishes the default rules as version 1.
    if first.ledger().rules().version == 0 {
        let mut published = rules::defaults();
        published.version = 1;
        let (seq, hash) = first.ledger().head(ids::REGULATOR_LOG);
        let head = huren_client::regulator::Head { seq, hash };
        let publication = Kind::RulesPublished(pb::RulesPublished {
            rules: Some(published),
        });
        let (entries, _) = huren_client::regulator::sign_chain(
            &regulator,
            &head,
            now,
            "devnet-rules-1",
            vec![publication],
        )
        .map_err(|e| NodeError::BadInput {
            field: "rules".into(),
            message: e.to_string(),
        })?;
        first.ingest(entries, Vec::new(), true).await?;
    }
    for node in nodes {
        wait_for("the rules to reach every market", || {
            node.ledger().rules().version >= 1
        })
        .await?;
    }

    // Reports: the day so far, in each market's lab.
    let start = now - 13 * 3_600_000;
    let mut passes: Vec<(usize, String, pb::ReportIssued)> = Vec::new();
    let mut positives: Vec<(usize, String)> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let reports = huren_client::sample::day(
            node.market(),
            20_261_204 + i as u64,
            REPORTS_PER_MARKET,
            start,
        );
        for (n, report) in reports.into_iter().enumerate() {
            let request_id = format!("devnet-{}-report-{n}", node.market());
            let event = pb::Event {
                kind: Some(Kind::ReportIssued(report.clone())),
            };
            let done = node.append(request_id, event).await?;
            let id = ids::report_id(node.market(), done.entry.entry.seq);
            summary.reports += 1;
            if report.result == pb::TestResult::Positive as i32 {
                positives.push((i, id));
            } else {
                passes.push((i, id, report));
            }
        }
    }

    // Goods move: about one pass in four is taken in at another market, part of its lot.
    for (k, (i, id, report)) in passes.iter().enumerate().filter(|(k, _)| k % 4 == 1) {
        let to = &nodes[(i + 1 + k % 6) % nodes.len()];
        wait_for("a report to reach the receiving market", || {
            to.ledger().record(id).is_some_and(|r| r.issued.is_some())
        })
        .await?;
        let quantity = report
            .quantity
            .clone()
            .expect("sample reports carry a quantity");
        let half = half_of(&quantity);
        let lot = Lot {
            product: report.product.clone(),
            category: Some(report.category.clone()),
            quantity: half,
            at_ms: to.clock().now_ms(),
        };
        let (verdict, _) = to
            .intake(
                format!("devnet-{}-intake-{id}", to.market()),
                ReportRef::Id(id.clone()),
                lot,
            )
            .await?;
        if verdict.valid {
            summary.intakes_accepted += 1;
        } else {
            summary.intakes_rejected += 1;
        }
    }

    // Positive lots are destroyed, and the regulator is told.
    for (i, id) in &positives {
        let node = &nodes[*i];
        let disposal = pb::DisposalRecorded {
            report_id: id.clone(),
            method: pb::DisposalMethod::Destroyed as i32,
            by: format!("{} 检测室", node.market()),
            disposed_at_ms: node.clock().now_ms() - 60_000,
            reported_to_regulator: true,
            note: "当场销毁 / destroyed on site".into(),
        };
        let event = pb::Event {
            kind: Some(Kind::DisposalRecorded(disposal)),
        };
        match node
            .append(format!("devnet-{}-dispose-{id}", node.market()), event)
            .await
        {
            Ok(_) => summary.disposals += 1,
            Err(NodeError::Precondition(_)) => {}
            Err(e) => return Err(e),
        }
    }

    // One pass turns out to be a lab error and is withdrawn by its issuer.
    if let Some((i, id, _)) = passes.first() {
        let node = &nodes[*i];
        let event = pb::Event {
            kind: Some(Kind::ReportRevoked(pb::ReportRevoked {
                report_id: id.clone(),
                reason: "实验室操作失误，试剂批次过期 / lab error: expired reagent lot".into(),
            })),
        };
        match node
            .append(format!("devnet-{}-revoke-{id}", node.market()), event)
            .await
        {
            Ok(_) => summary.revocations += 1,
            Err(NodeError::Precondition(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(summary)
}

fn half_of(q: &pb::Quantity) -> pb::Quantity {
    let unit = huren_proto::quantity::unit(&q.unit).expect("sample units are known");
    let base = huren_proto::quantity::parse(q)
        .expect("sample quantities are valid")
        .base;
    let half = (base / 2 / unit.base_per_unit).max(1) * unit.base_per_unit;
    huren_proto::quantity::format_in(half, &q.unit).expect("unit is known")
}

/// What [`load_day`] wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LoadSummary {
    /// Reports issued.
    pub reports: u32,
    /// Intakes accepted.
    pub intakes_accepted: u32,
    /// Intakes rejected.
    pub intakes_rejected: u32,
    /// Disposals recorded.
    pub disposals: u32,
    /// Revocations.
    pub revocations: u32,
}

/// Creates or reuses the folder, starts the seven nodes, loads the day once, prints where
/// everything is, and runs until Ctrl-C.
///
/// # Errors
/// [`NodeError`] from creating, starting or loading.
pub async fn run(dir: &Path, base_port: u16) -> Result<(), NodeError> {
    let l = create(dir, base_port)?;
    let running = start(&l).await?;
    let nodes: Vec<Arc<Node>> = running.iter().map(|r| Arc::clone(&r.node)).collect();
    let state_path = dir.join("devnet.toml");
    let mut state: State =
        toml::from_str(&std::fs::read_to_string(&state_path).map_err(io(&state_path))?)
            .map_err(|e| NodeError::Storage(e.to_string()))?;
    if !state.loaded {
        println!("loading a day of rapid tests …");
        let s = load_day(&l, &nodes).await?;
        println!(
            "loaded {} reports, {} intakes accepted, {} rejected, {} disposals, {} revocation",
            s.reports, s.intakes_accepted, s.intakes_rejected, s.disposals, s.revocations
        );
        state.loaded = true;
        write_private(
            &state_path,
            toml::to_string(&state)
                .expect("state serialises")
                .as_bytes(),
        )?;
    } else {
        println!("reusing {} (day already loaded)", dir.display());
    }
    println!(
        "\nHuren devnet: seven markets on 127.0.0.1 ({})",
        dir.display()
    );
    for (r, files) in running.iter().zip(&l.markets) {
        let zh = MARKETS.iter().find(|m| m.0 == files.id).map_or("", |m| m.1);
        println!(
            "  {:<11} {}\tgRPC http://{}\tboard http://{}/board\ttokens {} {}",
            files.id,
            zh,
            r.grpc_addr,
            r.http_addr.map(|a| a.to_string()).unwrap_or_default(),
            files.issuer_token.display(),
            files.intake_token.display()
        );
    }
    let regulator_public = keyfile::read_secret(&l.regulator_key)
        .map(|k| keyfile::public_hex(&k.verifying_key()))
        .map_err(|e| NodeError::Storage(e.to_string()))?;
    println!(
        "  regulator public key {regulator_public} (for huren verify and huren audit)\n  \
         regulator token {}\n  trust list {}",
        l.regulator_token.display(),
        l.trust_list.display()
    );
    println!(
        "\ntry: huren --node http://{} reports",
        running[0].grpc_addr
    );
    println!("Ctrl-C stops all seven nodes.");
    crate::run::stop_signal().await;
    println!("stopping …");
    for r in running {
        r.stop().await;
    }
    Ok(())
}
