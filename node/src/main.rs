//! `huren-node`: parse the command line, set up logging, and call the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// One market's node of the Huren ledger.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs one market's node from a config file.
    Run {
        /// The node's TOML config.
        #[arg(long)]
        config: PathBuf,
    },
    /// Runs seven markets on this machine with a day of rapid tests.
    Devnet {
        /// Folder for keys, configs, tokens and data (created if missing, reused if present).
        #[arg(long, default_value = "devnet-data")]
        dir: PathBuf,
        /// gRPC ports are P+1..P+7, HTTP ports P+1001..P+1007.
        #[arg(long, default_value_t = 7100)]
        base_port: u16,
        /// Only create the folder (keys, trust list, configs, tokens) and exit; deploy/ starts
        /// the seven nodes from it as separate processes.
        #[arg(long)]
        init_only: bool,
    },
    /// Rebuilds a stopped node's state by replaying its store, and prints a digest of it.
    Rebuild {
        /// The node's TOML config.
        #[arg(long)]
        config: PathBuf,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("huren-node: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("info,sled=warn,h2=warn,tower=warn")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run { config } => {
                let config = huren_node::config::Config::load(&config)?;
                let running = huren_node::run::start(&config).await?;
                huren_node::run::stop_signal().await;
                running.stop().await;
            }
            Command::Devnet {
                dir,
                base_port,
                init_only: true,
            } => {
                let layout = huren_node::devnet::create(&dir, base_port)?;
                for market in &layout.markets {
                    println!("{}", market.config.display());
                }
            }
            Command::Devnet {
                dir,
                base_port,
                init_only: false,
            } => {
                huren_node::devnet::run(&dir, base_port).await?;
            }
            Command::Rebuild { config } => {
                let config = huren_node::config::Config::load(&config)?;
                let digest = huren_node::rebuild::rebuild(&config)?;
                println!("{digest}");
            }
        }
        Ok(())
    })
}
