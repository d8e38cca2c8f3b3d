//! `huren`: the command line for market labs, intake clerks, the regulator and auditors.
//!
//! It parses arguments, calls huren-client's library, prints text or `--json`, and maps every
//! failure to one line on stderr and an exit code, in `main` only. It holds no logic worth a
//! test of its own, and it never prints a secret key or the bearer token.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use prost::Message as _;
use serde_json::{json, Value};

use huren_client::connect::{Client, ClientError, DEFAULT_NODE};
use huren_client::offline::{self, OfflineVerifier};
use huren_client::regulator::{self, RegulatorError};
use huren_client::{json_view, qr, render, report_json};
use huren_proto::ledger::Lot;
use huren_proto::pb;

const EXIT_CODES: &str = "\
Exit codes:
  0  done (for intake: the lot was ACCEPTED and recorded; for verify: VALID)
  1  failed; the one-line reason is on stderr
  2  the command line is wrong
  3  a negative verdict: intake REJECTED (and the rejection recorded), or verify NOT VALID
  4  the node could not be reached, is unavailable, or did not answer (the connection broke,
     or the call timed out): a write may or may not have been applied; retry later with the
     same --request-id so it is applied once
  5  audit: an integrity check failed (a signature, link, sequence number, member, fork
     evidence, or the export file itself); the ledger is not what its authors signed
  6  audit: every integrity check passed, but a rule was broken (an invalid or revoked
     intake, an overdraw, a positive not disposed of, a fork, a clock out of bounds)";

/// The command line for Huren, the rapid-test report ledger of seven wholesale markets.
// No Debug: it would print the bearer token.
#[derive(Parser)]
#[command(name = "huren", version, after_help = EXIT_CODES)]
struct Cli {
    /// The node to talk to.
    #[arg(long, global = true, env = "HUREN_NODE", default_value = DEFAULT_NODE)]
    node: String,
    /// Bearer token for writes (issuer, intake or regulator role); never printed.
    #[arg(long, global = true, env = "HUREN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an Ed25519 key file (owner-only) and print its public key.
    Keygen {
        /// Where to write the secret key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Create the network's signed trust list from a markets file (regulator).
    Genesis {
        /// The regulator's secret (root) key file, as `huren keygen` writes it.
        // `--regulator-key` was this flag's old name; everywhere else it is the public key.
        #[arg(long, alias = "regulator-key", env = "HUREN_REGULATOR_KEY_FILE")]
        key: PathBuf,
        /// TOML with `[[market]]` tables: id, name_zh, name_latin, public_key (hex),
        /// grpc_addr, http_addr.
        #[arg(long)]
        markets: PathBuf,
        /// Where to write the signed trust list.
        #[arg(long)]
        out: PathBuf,
        /// The network's name.
        #[arg(long, default_value = "taiyuan")]
        network: String,
        /// Replace an existing output file.
        #[arg(long)]
        force: bool,
    },
    /// Show or fetch trust lists.
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Issue a rapid-test report at the node's market (role: issuer).
    Issue(IssueArgs),
    /// Show a report with its status, intakes, revocation and disposal.
    Show {
        /// Report id (e.g. shanxi-17) or a portable token.
        id: String,
    },
    /// Withdraw one of this market's reports (role: issuer).
    Revoke {
        /// Report id.
        id: String,
        /// Why (lab error, failed supervisory sample, fraud, ...).
        #[arg(long)]
        reason: String,
        /// Idempotency key; default: a fresh random id.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Show a range of one log as the node holds it.
    Log {
        /// Market id, or "regulator".
        market: String,
        /// First sequence number.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// At most this many entries (0: the node's default).
        #[arg(long, default_value_t = 0)]
        limit: u32,
    },
    /// The node's identity, heads and health.
    Status,
    /// Every log's head as the node sees it.
    Heads,
    /// Fork evidence the node holds.
    Forks,
    /// Reports the node holds, newest first.
    Reports {
        /// Only reports issued by this market.
        #[arg(long)]
        market: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Take goods in on a report: verify, and record ACCEPTED or REJECTED (role: intake).
    #[command(
        after_help = "Exit code 0: ACCEPTED and recorded. Exit code 3: REJECTED, and the \
rejection with its reasons recorded in this market's log. Any other non-zero code: nothing \
was decided."
    )]
    Intake {
        /// Report id or portable token (a scanned link works too).
        report: String,
        /// How much of the lot these goods are, e.g. "30 kg".
        #[arg(long)]
        quantity: String,
        /// The product on the goods, as on the report.
        #[arg(long)]
        product: String,
        /// The category, if the clerk states one.
        #[arg(long)]
        category: Option<String>,
        /// Idempotency key; default: a fresh random id.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Record that a positive lot was destroyed or made harmless (role: issuer).
    Dispose {
        /// Report id.
        id: String,
        /// How.
        #[arg(long, value_enum)]
        method: DisposalArg,
        /// Who carried it out (a person or team).
        #[arg(long)]
        by: String,
        /// When: a date and time, 2026-12-04T09:30 (CST) or with an offset or Z; default: now.
        #[arg(long)]
        at: Option<String>,
        /// The disposal has been reported to the regulator.
        #[arg(long)]
        reported: bool,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
        /// Idempotency key; default: a fresh random id.
        #[arg(long)]
        request_id: Option<String>,
    },
    /// Where a report's goods went, and which markets must recall them.
    Trace {
        /// Report id.
        id: String,
    },
    /// Print a report's portable token and write its QR code.
    Token {
        /// Report id.
        id: String,
        /// Write the QR code as PNG here.
        #[arg(long)]
        png: Option<PathBuf>,
        /// Write the QR code as SVG here.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// HTTP address of the lookup page for the QR link; default: the issuing market's
        /// from the node's trust list.
        #[arg(long)]
        http: Option<String>,
        /// Put the bare token in the QR code, without a link.
        #[arg(long, conflicts_with = "http")]
        bare: bool,
    },
    /// Check a report for a lot without recording anything.
    #[command(
        after_help = "Where the check happens: with --trust-list it is OFFLINE (the token, \
the trust list file and --regulator-key only; no node is asked, and revocations, suspensions, \
new rules and other markets' draws are not known). Without --trust-list the node's Verify is \
asked (--node). Without --product and --quantity the report's own product is used and the \
check asks only that some of the lot is left. Exit code 0: VALID; 3: NOT VALID."
    )]
    Verify {
        /// Report id or portable token (offline: a token).
        report: String,
        /// The product on the goods; default: the report's.
        #[arg(long)]
        product: Option<String>,
        /// The category, if stated.
        #[arg(long)]
        category: Option<String>,
        /// How much of the lot, e.g. "30 kg"; default: the smallest amount.
        #[arg(long)]
        quantity: Option<String>,
        /// The instant to judge at: a date and time, 2026-12-04T09:30 (CST) or with an offset
        /// or Z; default: now.
        #[arg(long)]
        at: Option<String>,
        /// Verify offline against this trust list file.
        #[arg(long)]
        trust_list: Option<PathBuf>,
        /// The regulator's public key (64 hex digits), pinned for offline checks.
        #[arg(long, env = "HUREN_REGULATOR_KEY")]
        regulator_key: Option<String>,
    },
    /// Sign and submit regulator-log entries with the root key (role: regulator).
    #[command(subcommand)]
    Regulator(RegulatorCommand),
    /// Write the node's whole ledger (trust list, every signed entry, fork evidence) to one
    /// file that `huren audit --file` and docs/FORMAT.md can check.
    Export {
        /// The export file; written under a temporary name and renamed when complete.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Replay and check the whole ledger of a node (--node) or an export file (--file).
    #[command(after_help = concat!(
        "Exit code 0: clean. 5: an integrity check failed. 6: the ledger verifies but a rule ",
        "was broken. 1 or 4: the audit could not be carried out. See docs/FORMAT.md, ",
        "\"Export file\", for every check."
    ))]
    Audit(AuditArgs),
    /// Measure a node under load (see BENCHMARKS.md).
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Durable signed reports per second from concurrent clients (role: issuer), beside raw
    /// sled insert-and-flush of the same bytes.
    Issue {
        /// Concurrent clients, each on its own connection with one report in flight.
        #[arg(long, default_value_t = 64)]
        clients: usize,
        /// Reports to send at most.
        #[arg(long, default_value_t = 100_000)]
        reports: u64,
        /// Seconds to send for at most.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Skip the sled and signing baselines.
        #[arg(long)]
        no_baseline: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TrustCommand {
    /// Show a trust list file and check its signature.
    Show {
        /// The signed trust list file.
        file: PathBuf,
        /// The regulator's public key (64 hex digits) to check the signature against.
        #[arg(long, env = "HUREN_REGULATOR_KEY")]
        regulator_key: Option<String>,
    },
    /// Save the node's trust list to a file, for offline verification.
    Fetch {
        /// Where to write it.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
struct RegulatorOpts {
    /// The regulator's secret (root) key file, as `huren keygen` writes it.
    #[arg(long, env = "HUREN_REGULATOR_KEY_FILE")]
    key: PathBuf,
    /// The entry's request id; default: a fresh random id.
    #[arg(long)]
    request_id: Option<String>,
    /// The entry's time: a date and time, 2026-12-04T09:30 (CST) or with an offset or Z;
    /// default: now. Repeat a failed submission with the same --request-id and --time to sign
    /// the very same entry again.
    #[arg(long)]
    time: Option<String>,
}

#[derive(Debug, Subcommand)]
enum RegulatorCommand {
    /// Publish recognition rules.
    PublishRules {
        /// Publish the built-in defaults under --version.
        #[arg(long, requires = "version", conflicts_with = "file")]
        defaults: bool,
        /// The version for --defaults.
        #[arg(long)]
        version: Option<u32>,
        /// A JSON rules file: {"version", "clock_skew_seconds", "categories": [{"category",
        /// "name_zh", "validity_hours", "required_items"}]}.
        #[arg(long, required_unless_present = "defaults")]
        file: Option<PathBuf>,
        #[command(flatten)]
        opts: RegulatorOpts,
    },
    /// Suspend a market: its entries from --from-seq on are refused.
    Suspend {
        /// Market id.
        market: String,
        /// First refused seq; default: the node's head of that market + 1.
        #[arg(long)]
        from_seq: Option<u64>,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        opts: RegulatorOpts,
    },
    /// Rotate a market's key.
    RotateKey {
        /// Market id.
        market: String,
        /// The new public key, 64 hex digits.
        #[arg(long)]
        new_public_key: String,
        /// First seq signed by the new key; default: the node's head of that market + 1.
        #[arg(long)]
        effective_seq: Option<u64>,
        #[command(flatten)]
        opts: RegulatorOpts,
    },
    /// Admit a new market to the network.
    Admit {
        /// Market id.
        market: String,
        /// Name in Chinese.
        #[arg(long)]
        name_zh: String,
        /// Name in Latin letters.
        #[arg(long)]
        name_latin: String,
        /// Its public key, 64 hex digits.
        #[arg(long)]
        public_key: String,
        /// Its gRPC address.
        #[arg(long, default_value = "")]
        grpc_addr: String,
        /// Its HTTP address.
        #[arg(long, default_value = "")]
        http_addr: String,
        #[command(flatten)]
        opts: RegulatorOpts,
    },
    /// Revoke any market's report as the regulator.
    Revoke {
        /// Report id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        opts: RegulatorOpts,
    },
}

#[derive(Debug, Args)]
struct AuditArgs {
    /// Audit this export file instead of the node.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The regulator's public key (64 hex digits); a trust list not signed by it is refused.
    #[arg(long, env = "HUREN_REGULATOR_KEY")]
    regulator_key: String,
    /// How far an entry's clock may be behind its predecessor's, in minutes.
    #[arg(long, default_value_t = 10)]
    clock_tolerance_minutes: u32,
    /// How far an entry's clock may be ahead of this machine's, in seconds.
    #[arg(long, default_value_t = 300)]
    future_skew_seconds: u32,
    /// Hours a positive report's issuer has to record the lot's disposal.
    #[arg(long, default_value_t = 24)]
    disposal_hours: u32,
}

async fn audit_command(
    cli: &Cli,
    args: &AuditArgs,
) -> anyhow::Result<huren_client::audit::AuditReport> {
    use huren_client::audit::{self, AuditOptions};
    let key = huren_proto::keyfile::parse_public_hex(&args.regulator_key)
        .map_err(|e| anyhow!("--regulator-key: {e}"))?;
    let options = AuditOptions {
        clock_tolerance_ms: i64::from(args.clock_tolerance_minutes) * 60_000,
        future_skew_ms: i64::from(args.future_skew_seconds) * 1000,
        disposal_deadline_ms: i64::from(args.disposal_hours) * 3_600_000,
        ..AuditOptions::new(key, now_ms())
    };
    let progress = audit::progress_for_terminal("audit");
    Ok(match &args.file {
        Some(path) => audit::audit_file(path, options, progress.as_ref())?,
        None => audit::audit_node(&connect(cli).await?, options, progress.as_ref()).await?,
    })
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DisposalArg {
    Destroyed,
    MadeHarmless,
}

#[derive(Debug, Args)]
struct IssueArgs {
    /// The report as a JSON file (see docs/report.example.json); excludes the flags below.
    #[arg(long, conflicts_with_all = ["stall", "product", "category", "origin", "lot", "quantity",
        "amount", "unit", "bag", "sampled_at", "tested_at", "tester", "item"])]
    file: Option<PathBuf>,
    /// The stall's code, e.g. SX-A017 (never a name or phone number).
    #[arg(long, required_unless_present = "file")]
    stall: Option<String>,
    /// Product name, e.g. 菜豆.
    #[arg(long, required_unless_present = "file")]
    product: Option<String>,
    /// Category code: leafy_vegetable, vegetable, fruit, meat, edible_oil, liquor,
    /// bean_sprout.
    #[arg(long, required_unless_present = "file")]
    category: Option<String>,
    /// Where the goods come from.
    #[arg(long)]
    origin: Option<String>,
    /// The lot id.
    #[arg(long, required_unless_present = "file")]
    lot: Option<String>,
    /// Lot size, e.g. "12.5 kg", "300 jin", "20 piece".
    #[arg(long, conflicts_with_all = ["amount", "unit"])]
    quantity: Option<String>,
    /// Lot size amount (with --unit).
    #[arg(long, requires = "unit")]
    amount: Option<String>,
    /// Lot size unit: kg, g, jin, t, piece.
    #[arg(long, requires = "amount")]
    unit: Option<String>,
    /// The sealed sample bag's code.
    #[arg(long, required_unless_present = "file")]
    bag: Option<String>,
    /// When the sample was taken: a date and time, 2026-12-04T09:30 (CST) or with an offset
    /// or Z, e.g. 2026-12-04T09:30:00+08:00.
    #[arg(long, required_unless_present = "file")]
    sampled_at: Option<String>,
    /// When it was tested, in the same forms; default: now.
    #[arg(long)]
    tested_at: Option<String>,
    /// Who tested it (a staff code).
    #[arg(long, required_unless_present = "file")]
    tester: Option<String>,
    /// A test item, repeated: "code=op-carbamate,value=12.3,result=negative" (name, method,
    /// unit and limit default for known codes; keys: code,name,method,value,unit,limit,result).
    #[arg(long, required_unless_present = "file")]
    item: Vec<String>,
    /// Idempotency key; default: a fresh random id, printed so a failed call can be retried.
    #[arg(long)]
    request_id: Option<String>,
}

/// What a command printed, and whether its verdict was negative.
enum Outcome {
    Done,
    /// An exit code decided by the command (audit).
    Code(u8),
    Negative,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("huren: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Negative) => ExitCode::from(3),
        Ok(Outcome::Code(code)) => ExitCode::from(code),
        Err(e) => {
            let text = format!("{e:#}");
            eprintln!(
                "huren: {}",
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
            ExitCode::from(exit_code(&e))
        }
    }
}

/// The one place failures become exit codes (see EXIT_CODES).
fn exit_code(e: &anyhow::Error) -> u8 {
    let retryable = e.chain().any(|cause| {
        cause
            .downcast_ref::<ClientError>()
            .is_some_and(ClientError::is_retryable)
            || matches!(
                cause.downcast_ref::<RegulatorError>(),
                Some(RegulatorError::Node(c)) if c.is_retryable()
            )
    });
    if retryable {
        4
    } else {
        1
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn fresh_request_id() -> String {
    format!("huren-{:032x}", rand::random::<u128>())
}

fn time_arg(name: &str, text: Option<&str>) -> anyhow::Result<i64> {
    match text {
        None => Ok(now_ms()),
        Some(t) => report_json::parse_time(t).map_err(|e| anyhow!("--{name}: {e}")),
    }
}

/// Prints text or JSON; a closed stdout (as in `| head`) is not an error worth reporting.
fn emit(json_mode: bool, text: &str, value: Value) {
    let mut out = std::io::stdout().lock();
    let _ = if json_mode {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        )
    } else {
        write!(out, "{text}")
    };
}

async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    Ok(Client::connect(&cli.node, cli.token.as_deref()).await?)
}

/// Adds the request id to a failure that may or may not have been applied (no answer, or
/// unavailable), so the user can retry it safely; a refusal needs no such hint.
fn hint_retry<T>(result: Result<T, ClientError>, request_id: &str) -> anyhow::Result<T> {
    result.map_err(|e| {
        let retryable = e.is_retryable();
        let e = anyhow::Error::new(e);
        if retryable {
            e.context(format!(
                "request id {request_id} (retry with --request-id {request_id} to apply it once)"
            ))
        } else {
            e
        }
    })
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    let json_mode = cli.json;
    match &cli.command {
        Command::Keygen { out } => {
            let key = huren_proto::keyfile::generate();
            huren_proto::keyfile::write_secret(out, &key)?;
            let public = huren_proto::keyfile::public_hex(&key.verifying_key());
            emit(
                json_mode,
                &format!("{public}\n"),
                json!({"public_key": public, "file": out.display().to_string()}),
            );
        }
        Command::Genesis {
            key,
            markets,
            out,
            network,
            force,
        } => {
            let key = huren_proto::keyfile::read_secret(key)?;
            let text = read_text(markets)?;
            let markets = regulator::markets_from_toml(&text)
                .with_context(|| markets.display().to_string())?;
            let signed = regulator::genesis(&key, network, markets, now_ms())?;
            write_new(out, &signed.encode_to_vec(), *force)?;
            let list = pb::TrustList::decode(signed.body.as_slice())?;
            let note = format!("valid, signed just now; written to {}", out.display());
            emit(
                json_mode,
                &render::trust_list(&list, &note),
                json_view::trust_list(&list, &note),
            );
        }
        Command::Trust(TrustCommand::Show {
            file,
            regulator_key,
        }) => {
            let signed = offline::read_trust_list(file)?;
            let list = pb::TrustList::decode(signed.body.as_slice())
                .with_context(|| format!("{}: trust list body", file.display()))?;
            let signature = check_trust_list(&signed, regulator_key.as_deref())?;
            emit(
                json_mode,
                &render::trust_list(&list, &signature),
                json_view::trust_list(&list, &signature),
            );
        }
        Command::Trust(TrustCommand::Fetch { out }) => {
            let client = connect(&cli).await?;
            let signed = client.trust_list().await?;
            write_new(out, &signed.encode_to_vec(), true)?;
            let list = pb::TrustList::decode(signed.body.as_slice())?;
            let note = format!(
                "saved to {}; not checked (run `huren trust show` with --regulator-key)",
                out.display()
            );
            emit(
                json_mode,
                &render::trust_list(&list, &note),
                json_view::trust_list(&list, &note),
            );
        }
        Command::Issue(args) => {
            let report = issue_report(args)?;
            huren_proto::validate::report(&report, None)?;
            let request_id = args.request_id.clone().unwrap_or_else(fresh_request_id);
            let client = connect(&cli).await?;
            let reply = hint_retry(client.issue_report(&request_id, report).await, &request_id)?;
            let mut value = json_view::append(&reply);
            value["request_id"] = json!(request_id);
            let text = format!("{}request {request_id}\n", render::append(&reply));
            emit(json_mode, &text, value);
        }
        Command::Show { id } => {
            let id = report_id_of(id)?;
            let view = connect(&cli).await?.get_report(&id).await?;
            emit(
                json_mode,
                &render::report(&view),
                json_view::report_view(&view),
            );
        }
        Command::Revoke {
            id,
            reason,
            request_id,
        } => {
            let request_id = request_id.clone().unwrap_or_else(fresh_request_id);
            let reply = hint_retry(
                connect(&cli)
                    .await?
                    .revoke_report(&request_id, id, reason)
                    .await,
                &request_id,
            )?;
            emit(
                json_mode,
                &format!("revoked\n{}", render::append(&reply)),
                json_view::append(&reply),
            );
        }
        Command::Log {
            market,
            from,
            limit,
        } => {
            let client = connect(&cli).await?;
            let reply = client.read_log(market, *from, *limit).await?;
            if reply.entries.is_empty() {
                require_log(&client, market, true).await?;
            }
            emit(
                json_mode,
                &render::log_entries(market, &reply),
                json_view::log(&reply),
            );
        }
        Command::Status => {
            let status = connect(&cli).await?.status().await?;
            emit(
                json_mode,
                &render::status(&status),
                json_view::status(&status),
            );
        }
        Command::Heads => {
            let heads = connect(&cli).await?.heads().await?;
            emit(json_mode, &render::heads(&heads), json_view::heads(&heads));
        }
        Command::Forks => {
            let forks = connect(&cli).await?.forks().await?;
            emit(json_mode, &render::forks(&forks), json_view::forks(&forks));
        }
        Command::Reports { market, limit } => {
            let client = connect(&cli).await?;
            let reports = client.list_reports(market.as_deref(), *limit).await?;
            if let (true, Some(market)) = (reports.is_empty(), market) {
                require_log(&client, market, false).await?;
            }
            emit(
                json_mode,
                &render::reports(&reports),
                reports.iter().map(json_view::report_view).collect(),
            );
        }
        Command::Intake {
            report,
            quantity,
            product,
            category,
            request_id,
        } => {
            let quantity = report_json::parse_quantity(quantity).map_err(|e| anyhow!(e))?;
            let request_id = request_id.clone().unwrap_or_else(fresh_request_id);
            let mut lot = lot_query(report)?;
            lot.product = product.clone();
            lot.category = category.clone().unwrap_or_default();
            lot.quantity = Some(quantity);
            let reply = hint_retry(
                connect(&cli).await?.intake(&request_id, lot).await,
                &request_id,
            )?;
            let accepted = reply.verdict.as_ref().is_some_and(|v| v.valid);
            let mut value = json_view::intake(&reply);
            value["request_id"] = json!(request_id);
            emit(
                json_mode,
                &format!("{}request {request_id}\n", render::intake(&reply)),
                value,
            );
            if !accepted {
                return Ok(Outcome::Negative);
            }
        }
        Command::Dispose {
            id,
            method,
            by,
            at,
            reported,
            note,
            request_id,
        } => {
            let disposal = pb::DisposalRecorded {
                report_id: id.clone(),
                method: match method {
                    DisposalArg::Destroyed => pb::DisposalMethod::Destroyed,
                    DisposalArg::MadeHarmless => pb::DisposalMethod::MadeHarmless,
                } as i32,
                by: by.clone(),
                disposed_at_ms: time_arg("at", at.as_deref())?,
                reported_to_regulator: *reported,
                note: note.clone(),
            };
            let request_id = request_id.clone().unwrap_or_else(fresh_request_id);
            let reply = hint_retry(
                connect(&cli)
                    .await?
                    .record_disposal(&request_id, disposal)
                    .await,
                &request_id,
            )?;
            emit(
                json_mode,
                &format!("disposal recorded\n{}", render::append(&reply)),
                json_view::append(&reply),
            );
        }
        Command::Trace { id } => {
            let trace = connect(&cli).await?.trace(&report_id_of(id)?).await?;
            emit(json_mode, &render::trace(&trace), json_view::trace(&trace));
        }
        Command::Token {
            id,
            png,
            svg,
            http,
            bare,
        } => {
            let client = connect(&cli).await?;
            let view = client.get_report(&report_id_of(id)?).await?;
            let entry = view
                .entry
                .as_ref()
                .ok_or_else(|| anyhow!("the node's reply for {id} holds no signed entry"))?;
            let token = huren_proto::token::encode(entry);
            let http_addr = match (bare, http) {
                (true, _) => None,
                (false, Some(addr)) => Some(addr.clone()),
                (false, None) => issuer_http_addr(&client, &view.report_id).await,
            };
            let content = qr::content(&token, http_addr.as_deref());
            let mut text = format!("{token}\n");
            if let Some(path) = png {
                qr::write_png(path, &content)?;
                text.push_str(&format!("QR code (PNG) written to {}\n", path.display()));
            }
            if let Some(path) = svg {
                qr::write_svg(path, &content)?;
                text.push_str(&format!("QR code (SVG) written to {}\n", path.display()));
            }
            if png.is_some() || svg.is_some() {
                text.push_str(&format!("QR content: {}\n", render::fit(&content, 72)));
            }
            emit(
                json_mode,
                &text,
                json!({"report_id": view.report_id, "token": token, "qr_content": content,
                       "png": png, "svg": svg}),
            );
        }
        Command::Verify {
            report,
            product,
            category,
            quantity,
            at,
            trust_list,
            regulator_key,
        } => {
            let quantity = quantity
                .as_deref()
                .map(report_json::parse_quantity)
                .transpose()
                .map_err(|e| anyhow!(e))?;
            let verdict = match trust_list {
                Some(path) => {
                    let key = regulator_key.as_deref().ok_or_else(|| {
                        anyhow!("offline verification needs --regulator-key (64 hex digits)")
                    })?;
                    let verifier = OfflineVerifier::from_files(path, key)?;
                    let at_ms = time_arg("at", at.as_deref())?;
                    verify_offline(&verifier, report, product, category, quantity, at_ms)?
                }
                None => {
                    let at_ms = match at {
                        Some(t) => time_arg("at", Some(t))?,
                        None => 0,
                    };
                    let client = connect(&cli).await?;
                    verify_online(&client, report, product, category, quantity, at_ms).await?
                }
            };
            let mut text = render::verdict(&verdict);
            if trust_list.is_some() {
                text.push_str(&format!("({})\n", offline::LIMITS));
            }
            let mut value = json_view::verdict(&verdict);
            value["offline"] = json!(trust_list.is_some());
            emit(json_mode, &text, value);
            if !verdict.valid {
                return Ok(Outcome::Negative);
            }
        }
        Command::Regulator(command) => return regulator_command(&cli, command).await,
        Command::Export { out, force } => {
            let client = connect(&cli).await?;
            let progress = huren_client::audit::progress_for_terminal("export");
            let summary =
                huren_client::export::export_node(&client, out, *force, progress.as_ref()).await?;
            emit(json_mode, &summary.text(), summary.json());
        }
        Command::Audit(args) => {
            let report = audit_command(&cli, args).await?;
            emit(json_mode, &report.text(), report.json());
            return Ok(Outcome::Code(report.exit_code()));
        }
        Command::Bench(BenchCommand::Issue {
            clients,
            reports,
            duration,
            no_baseline,
        }) => {
            let load = huren_client::bench::IssueLoad {
                clients: (*clients).max(1),
                reports: *reports,
                duration: std::time::Duration::from_secs(*duration),
                ..Default::default()
            };
            let token = cli.token.as_deref();
            let report =
                huren_client::bench::issue_command(&cli.node, token, load, !no_baseline).await?;
            emit(json_mode, &report.text(), report.json());
        }
    }
    Ok(Outcome::Done)
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| path.display().to_string())
}

/// Writes a file, refusing to replace one unless `replace`.
fn write_new(path: &Path, bytes: &[u8], replace: bool) -> anyhow::Result<()> {
    if !replace && path.exists() {
        bail!(
            "{} already exists; use --force to replace it",
            path.display()
        );
    }
    std::fs::write(path, bytes).with_context(|| path.display().to_string())
}

/// What is known of a trust list's signature, in words; an error if it does not hold.
fn check_trust_list(signed: &pb::SignedTrustList, pinned: Option<&str>) -> anyhow::Result<String> {
    match pinned {
        Some(hex) => {
            let key = huren_proto::keyfile::parse_public_hex(hex)
                .map_err(|e| anyhow!("--regulator-key: {e}"))?;
            huren_proto::trust::Membership::from_trust_list(signed, &key)?;
            Ok("valid, by the pinned regulator key".into())
        }
        None => {
            let claimed = huren_proto::trust::claimed_regulator_key(signed)?;
            huren_proto::format::verify_trust_list_signature(&claimed, signed)
                .context("the trust list is not signed by the regulator key it names")?;
            Ok("signed by the key it names; give --regulator-key to check that key".into())
        }
    }
}

fn issue_report(args: &IssueArgs) -> anyhow::Result<pb::ReportIssued> {
    if let Some(path) = &args.file {
        let text = read_text(path)?;
        return report_json::parse(&text).with_context(|| path.display().to_string());
    }
    let required = |value: &Option<String>, flag: &str| {
        value
            .clone()
            .ok_or_else(|| anyhow!("--{flag} is required without --file"))
    };
    let quantity = match (&args.quantity, &args.amount, &args.unit) {
        (Some(q), _, _) => report_json::parse_quantity(q).map_err(|e| anyhow!(e))?,
        (None, Some(amount), Some(unit)) => {
            report_json::parse_quantity(&format!("{amount} {unit}")).map_err(|e| anyhow!(e))?
        }
        _ => bail!("give the lot size with --quantity \"12.5 kg\" or --amount and --unit"),
    };
    let items = args
        .item
        .iter()
        .map(|i| report_json::parse_item(i).map_err(|e| anyhow!("--item: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let result = huren_proto::validate::overall_result(&items);
    Ok(pb::ReportIssued {
        stall_code: required(&args.stall, "stall")?,
        product: required(&args.product, "product")?,
        category: required(&args.category, "category")?,
        origin: args.origin.clone().unwrap_or_default(),
        lot_id: required(&args.lot, "lot")?,
        quantity: Some(quantity),
        bag_code: required(&args.bag, "bag")?,
        sampled_at_ms: report_json::parse_time(&required(&args.sampled_at, "sampled-at")?)
            .map_err(|e| anyhow!("--sampled-at: {e}"))?,
        tested_at_ms: time_arg("tested-at", args.tested_at.as_deref())?,
        tester: required(&args.tester, "tester")?,
        items,
        result: result as i32,
    })
}

/// A report id from an id or a token (whose claimed id is read without checking it).
fn report_id_of(text: &str) -> anyhow::Result<String> {
    if huren_proto::token::looks_like_token(text) {
        let signed = huren_proto::token::decode(text)?;
        let (id, _) =
            offline::peek_report(&signed).ok_or_else(|| anyhow!("the token holds no report"))?;
        return Ok(id);
    }
    huren_proto::ids::parse_report_id(text).map_err(|e| anyhow!(e))?;
    Ok(text.to_string())
}

/// A lot query naming the report by id or by token.
fn lot_query(report: &str) -> anyhow::Result<pb::LotQuery> {
    let mut lot = pb::LotQuery::default();
    if huren_proto::token::looks_like_token(report) {
        huren_proto::token::decode(report)?;
        lot.token = report.trim().to_string();
    } else {
        huren_proto::ids::parse_report_id(report).map_err(|e| anyhow!(e))?;
        lot.report_id = report.to_string();
    }
    Ok(lot)
}

/// Fails unless `log` is one of the node's logs (a member market's, or the regulator's when
/// `regulator_too`), so that a mistyped id is not mistaken for an empty log.
async fn require_log(client: &Client, log: &str, regulator_too: bool) -> anyhow::Result<()> {
    let known = client.heads().await?.iter().any(|h| h.log == log)
        && (regulator_too || log != huren_proto::ids::REGULATOR_LOG);
    if !known {
        bail!("{log} is not a market of this network");
    }
    Ok(())
}

/// The HTTP address of the market that issued `report_id`, from the node's trust list.
async fn issuer_http_addr(client: &Client, report_id: &str) -> Option<String> {
    let (market, _) = huren_proto::ids::parse_report_id(report_id).ok()?;
    let signed = client.trust_list().await.ok()?;
    let list = pb::TrustList::decode(signed.body.as_slice()).ok()?;
    list.markets
        .into_iter()
        .find(|m| m.id == market)
        .map(|m| m.http_addr)
        .filter(|a| !a.is_empty())
}

fn verify_offline(
    verifier: &OfflineVerifier,
    report: &str,
    product: &Option<String>,
    category: &Option<String>,
    quantity: Option<pb::Quantity>,
    at_ms: i64,
) -> anyhow::Result<pb::Verdict> {
    if !huren_proto::token::looks_like_token(report) {
        bail!(
            "offline verification needs a portable token, not {report:?}; get one with \
             `huren token ID`"
        );
    }
    let signed = huren_proto::token::decode(report)?;
    // The unchecked copy only fills in what the clerk did not say; the verdict checks all.
    let peeked = offline::peek_report(&signed).map(|(_, r)| r);
    let unit = peeked
        .as_ref()
        .and_then(|r| r.quantity.as_ref())
        .map_or("kg".to_string(), |q| q.unit.clone());
    let lot = Lot {
        product: product
            .clone()
            .or_else(|| peeked.as_ref().map(|r| r.product.clone()))
            .unwrap_or_default(),
        category: category.clone(),
        quantity: quantity.unwrap_or_else(|| report_json::smallest_quantity(&unit)),
        at_ms,
    };
    let (id, verdict) = verifier.verify_entry(&signed, &lot);
    Ok(offline::verdict_to_pb(&id, &verdict, &unit, at_ms))
}

async fn verify_online(
    client: &Client,
    report: &str,
    product: &Option<String>,
    category: &Option<String>,
    quantity: Option<pb::Quantity>,
    at_ms: i64,
) -> anyhow::Result<pb::Verdict> {
    let mut lot = lot_query(report)?;
    // Defaults come from the report itself: from the token, or from the node.
    let known = if product.is_some() && quantity.is_some() {
        None
    } else if !lot.token.is_empty() {
        offline::peek_report(&huren_proto::token::decode(&lot.token)?).map(|(_, r)| r)
    } else {
        client.get_report(&lot.report_id).await?.report
    };
    let unit = known
        .as_ref()
        .and_then(|r| r.quantity.as_ref())
        .map_or("kg".to_string(), |q| q.unit.clone());
    lot.product = product
        .clone()
        .or_else(|| known.as_ref().map(|r| r.product.clone()))
        .unwrap_or_default();
    lot.category = category.clone().unwrap_or_default();
    lot.quantity = Some(quantity.unwrap_or_else(|| report_json::smallest_quantity(&unit)));
    lot.at_ms = at_ms;
    Ok(client.verify(lot).await?)
}

async fn regulator_command(cli: &Cli, command: &RegulatorCommand) -> anyhow::Result<Outcome> {
    let opts = match command {
        RegulatorCommand::PublishRules { opts, .. }
        | RegulatorCommand::Suspend { opts, .. }
        | RegulatorCommand::RotateKey { opts, .. }
        | RegulatorCommand::Admit { opts, .. }
        | RegulatorCommand::Revoke { opts, .. } => opts,
    };
    let key = huren_proto::keyfile::read_secret(&opts.key)?;
    let time_ms = time_arg("time", opts.time.as_deref())?;
    let request_id = opts.request_id.clone().unwrap_or_else(fresh_request_id);
    let client = connect(cli).await?;

    let next_seq_of = |market: &str| {
        let client = client.clone();
        let market = market.to_string();
        async move { client.head(&market).await.map(|h| h.seq + 1) }
    };
    let event = match command {
        RegulatorCommand::PublishRules {
            defaults,
            version,
            file,
            ..
        } => {
            let rules = match (defaults, version, file) {
                (true, Some(v), _) => regulator::default_rules(*v),
                (_, _, Some(path)) => regulator::parse_rules(&read_text(path)?)
                    .with_context(|| path.display().to_string())?,
                _ => bail!("give --defaults --version N, or --file rules.json"),
            };
            regulator::rules_published(rules)
        }
        RegulatorCommand::Suspend {
            market,
            from_seq,
            reason,
            ..
        } => {
            let from = match from_seq {
                Some(seq) => *seq,
                None => next_seq_of(market).await?,
            };
            regulator::market_suspended(market, from, reason)
        }
        RegulatorCommand::RotateKey {
            market,
            new_public_key,
            effective_seq,
            ..
        } => {
            let new_key = huren_proto::keyfile::parse_public_hex(new_public_key)
                .map_err(|e| anyhow!("--new-public-key: {e}"))?;
            let effective = match effective_seq {
                Some(seq) => *seq,
                None => next_seq_of(market).await?,
            };
            regulator::key_rotated(market, &new_key.to_bytes(), effective)
        }
        RegulatorCommand::Admit {
            market,
            name_zh,
            name_latin,
            public_key,
            grpc_addr,
            http_addr,
            ..
        } => {
            let key = huren_proto::keyfile::parse_public_hex(public_key)
                .map_err(|e| anyhow!("--public-key: {e}"))?;
            regulator::market_admitted(pb::Market {
                id: market.clone(),
                name_zh: name_zh.clone(),
                name_latin: name_latin.clone(),
                public_key: key.to_bytes().to_vec(),
                grpc_addr: grpc_addr.clone(),
                http_addr: http_addr.clone(),
            })
        }
        RegulatorCommand::Revoke { id, reason, .. } => regulator::report_revoked(id, reason),
    };
    let submitted = regulator::submit(&client, &key, time_ms, &request_id, vec![event]).await;
    let (signed, reply) = submitted.map_err(|e| {
        let unconfirmed = matches!(&e, RegulatorError::Node(c) if c.is_retryable());
        let e = anyhow::Error::new(e);
        if unconfirmed {
            e.context(format!(
                "regulator entry not confirmed; to retry without risking a second, different \
                 entry, repeat on the same node with --request-id {request_id} --time {}",
                report_json::format_time(time_ms)
            ))
        } else {
            e
        }
    })?;
    let entries: Vec<Value> = signed.iter().map(json_view::entry).collect();
    let mut text = String::new();
    for s in &signed {
        if let Ok(e) = huren_proto::format::decode_entry(&s.body) {
            text.push_str(&format!(
                "signed regulator #{}  {}\n",
                e.seq,
                render::event_summary(e.event.as_ref())
            ));
        }
    }
    let head = reply.head.clone().unwrap_or_default();
    text.push_str(&format!(
        "node stored {} new; regulator head #{} {}\n",
        reply.stored,
        head.seq,
        render::short_hash(&head.hash)
    ));
    emit(
        cli.json,
        &text,
        json!({"entries": entries, "stored": reply.stored, "head": json_view::head(&head),
               "request_id": request_id}),
    );
    Ok(Outcome::Done)
}
