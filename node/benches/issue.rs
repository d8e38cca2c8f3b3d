//! Issue throughput (issue 2): one node started in this process, driven over real gRPC on
//! loopback by huren-client's load generator (the same code as `huren bench issue`), with the
//! raw sled and signing baselines measured in the same run on the entries the node returned.
//!
//! `cargo bench -p huren-node --bench issue -- [--clients 64] [--reports 200000]
//! [--seconds 20] [--no-baseline]`
//!
//! The load runs on its own tokio runtime (two worker threads), as a separate `huren` process
//! would; the node keeps its own runtime. Both share the machine's cores.

mod common;

use std::sync::Arc;
use std::time::Duration;

use huren_client::bench::{self, IssueLoad, IssueReport};

fn main() {
    let opts = common::Options::from_env();
    let clients = opts.num("clients", 64) as usize;
    let load = IssueLoad {
        clients,
        reports: opts.num("reports", 200_000),
        duration: Duration::from_secs(opts.num("seconds", 20)),
        ..IssueLoad::default()
    };
    println!(
        "{}",
        common::machine_line("bench issue: durable signed reports/s through gRPC, one node")
    );

    let net = common::Net::new(1);
    let node_rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("node runtime");
    let running = node_rt.block_on(async {
        let listener = common::loopback().await;
        net.launch(0, "node", listener, &[], common::default_settings())
            .await
    });
    let url = format!("http://{}", running.grpc_addr);

    // Group sizes: every commit the writer announces is one flush.
    let mut commits = running.node.subscribe();
    let groups = node_rt.spawn(async move {
        let mut sizes: Vec<usize> = Vec::new();
        let mut lagged = 0u64;
        loop {
            match commits.recv().await {
                Ok(c) => sizes.push(c.entries.len()),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => lagged += n,
                Err(_) => break,
            }
        }
        (sizes, lagged)
    });

    let load_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("load runtime");
    let token = common::token("issuer", &net.markets[0]);
    let report = load_rt.block_on(async {
        let connections = bench::connect_clients(&url, Some(&token), clients)
            .await
            .expect("clients connect");
        let reports = Arc::new(bench::sample_reports(&net.markets[0], 2, 10_000));
        let load_before = bench::load_average();
        let outcome = bench::issue_load(&connections, reports, &load).await;
        IssueReport {
            node: url.clone(),
            market: net.markets[0].clone(),
            clients,
            load_before,
            load_after: bench::load_average(),
            outcome,
            baseline: None,
        }
    });
    drop(load_rt);

    node_rt.block_on(running.stop());
    let (sizes, lagged) = node_rt.block_on(groups).unwrap_or_default();
    let mut report = report;
    if !opts.flag("no-baseline") {
        report.baseline =
            bench::issue_baseline(&report.outcome.entries, clients, Duration::from_secs(10)).ok();
    }
    print!("{}", report.text());
    let appends: usize = sizes.iter().sum();
    let flushes = sizes.len().max(1);
    let mut sorted = sizes.clone();
    sorted.sort_unstable();
    println!(
        "node group commit: {} flushes for {appends} entries, mean {:.1} entries per flush, \
         median {}, max {} (commits missed by the counter: {lagged})",
        sizes.len(),
        appends as f64 / flushes as f64,
        sorted.get(sorted.len() / 2).copied().unwrap_or(0),
        sorted.last().copied().unwrap_or(0),
    );
    if let Some(b) = &report.baseline {
        let rate = report.outcome.rate();
        let mut group = b.per_group.clone();
        println!(
            "per report at {rate:.0}/s: {:.0} µs wall; one sled flush of {} entries takes {} \
             (p50); signing one entry {:.0} µs on one thread",
            1e6 / rate.max(1.0),
            group.group,
            bench::ms(group.flushes.percentile(50.0)),
            1e6 / b.signing.max(1.0)
        );
    }
    println!("load average at the end {}", bench::load_average());
}
