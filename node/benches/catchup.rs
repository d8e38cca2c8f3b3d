//! Catch-up (issue 3): a source node whose store holds many signed entries across the seven
//! market logs, and an empty node that pulls them all from it over real gRPC on loopback with
//! the shipped replication settings. Measured: entries per second until the empty node's
//! durable heads equal the source's. Baseline in the same run: strict signature verification
//! of the same entries on every core, which every entry must pass before it is stored.
//!
//! The source's store is written straight through the store's own batch API and key format
//! (no checks there); the source node then checks every entry when it opens the store (the
//! replay), and that time is reported too.
//!
//! `cargo bench -p huren-node --bench catchup -- [--entries 1000000] [--batch 2000]`

mod common;

use std::time::{Duration, Instant};

use huren_client::bench;

fn main() {
    let opts = common::Options::from_env();
    let entries = opts.num("entries", 1_000_000) as usize;
    println!(
        "{}",
        common::machine_line(&format!(
            "bench catchup: an empty node pulls {entries} entries over seven logs from one peer"
        ))
    );
    let net = common::Net::new(7);
    let mut settings = common::default_settings();
    if opts.num("batch", 0) > 0 {
        settings.batch_entries = opts.num("batch", 0) as u32;
    }

    let pre = common::prefill(&net, entries, 0);
    let n = pre.len();
    println!(
        "generated and signed {n} entries in {:.1} s ({:.0}/s on every core)",
        pre.elapsed.as_secs_f64(),
        bench::per_second(n as u64, pre.elapsed)
    );
    let (checked, verify_time) = common::verify_all(&net, &pre.logs);
    let ceiling = bench::per_second(checked as u64, verify_time);
    println!(
        "baseline: strict ed25519 verification of the same {checked} entries on {} cores: \
         {:.1} s, {ceiling:.0} entries/s (load average {})",
        bench::cpus(),
        verify_time.as_secs_f64(),
        bench::load_average()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let written = Instant::now();
        common::write_store(&net.data_dir("source"), &pre.logs, &net.markets).await;
        let bytes: usize = pre
            .logs
            .iter()
            .flatten()
            .map(|e| e.body.len() + e.signature.len())
            .sum();
        println!(
            "wrote the source store in {:.1} s ({:.0} MB of signed entries)",
            written.elapsed().as_secs_f64(),
            bytes as f64 / 1e6
        );
        let heads: Vec<u64> = pre.logs.iter().map(|l| l.len() as u64).collect();
        drop(pre);

        let opened = Instant::now();
        let source_listener = common::loopback().await;
        let source_addr = source_listener.local_addr().expect("bound");
        let source = net
            .launch(0, "source", source_listener, &[], settings)
            .await;
        let replay = opened.elapsed();
        println!(
            "source node opened (replay checks every entry): {:.1} s, {:.0} entries/s",
            replay.as_secs_f64(),
            bench::per_second(n as u64, replay)
        );

        // The empty node: market 1, pulling from the source only.
        let load_before = bench::load_average();
        let started = Instant::now();
        let sink_listener = common::loopback().await;
        let sink = net
            .launch(1, "sink", sink_listener, &[(0, source_addr)], settings)
            .await;
        let mut commits = sink.node.subscribe();
        let first = tokio::spawn(async move {
            let _ = commits.recv().await;
            Instant::now()
        });
        let limit = Duration::from_secs(600);
        let mut progress = Vec::new();
        let mut last_report = Instant::now();
        let done = loop {
            let held: u64 = net.markets.iter().map(|m| sink.node.durable_head(m)).sum();
            let complete = net
                .markets
                .iter()
                .zip(&heads)
                .all(|(m, h)| sink.node.durable_head(m) == *h);
            if complete {
                break Some(Instant::now());
            }
            if last_report.elapsed() >= Duration::from_secs(5) {
                progress.push((started.elapsed(), held));
                println!(
                    "  {:>5.1} s: {held} entries held (load average {})",
                    started.elapsed().as_secs_f64(),
                    bench::load_average()
                );
                last_report = Instant::now();
            }
            if started.elapsed() > limit {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let first = tokio::time::timeout(Duration::from_secs(1), first)
            .await
            .ok()
            .and_then(Result::ok);
        match (done, first) {
            (Some(done), Some(first)) => {
                let from_start = done - started;
                let from_first = done - first;
                let rate = bench::per_second(n as u64, from_first);
                println!(
                    "caught up {n} entries: {:.1} s from the node's start ({:.0} entries/s), \
                     {:.1} s from its first stored batch: {rate:.0} entries/s\n\
                     pull settings: every {} ms, batches of {} entries; load average before \
                     {load_before}, after {}\n\
                     ratio to the verification ceiling: {:.2}",
                    from_start.as_secs_f64(),
                    bench::per_second(n as u64, from_start),
                    from_first.as_secs_f64(),
                    settings.pull_interval.as_millis(),
                    settings.batch_entries,
                    bench::load_average(),
                    bench::ratio(rate, ceiling),
                );
            }
            _ => println!("did not catch up within {} s", limit.as_secs()),
        }
        sink.stop().await;
        source.stop().await;
    });
    println!("load average at the end {}", bench::load_average());
}
