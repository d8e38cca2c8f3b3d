//! Intake verification and trace (issue 4) on a node holding many reports: the `Verify` RPC
//! over real gRPC on loopback, beside the in-process verdict (`Node::verdict`, which is
//! `Ledger::verdict` under the ledger's read lock) measured in the same run; and the `Trace`
//! RPC for reports that every one of the seven markets took some of in, beside the
//! in-process `views::trace`.
//!
//! The node's store is written straight through the store's own batch API and key format,
//! then the node opens it and checks every entry (the replay), as on any restart.
//!
//! `cargo bench -p huren-node --bench intake -- [--reports 1000000] [--traced 70]
//! [--calls 20000] [--concurrency 16]`

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use huren_client::bench::{self, Latencies};
use huren_client::Client;
use huren_node::node::ReportRef;
use huren_proto::ledger::Lot;
use huren_proto::pb;

fn main() {
    let opts = common::Options::from_env();
    let reports = opts.num("reports", 1_000_000) as usize;
    let traced = opts.num("traced", 70) as usize;
    let calls = opts.num("calls", 20_000);
    let concurrency = opts.num("concurrency", 16) as usize;
    println!(
        "{}",
        common::machine_line(&format!(
            "bench intake: Verify and Trace on a node holding {reports} reports"
        ))
    );
    let net = common::Net::new(7);
    let pre = common::prefill(&net, reports, traced);
    println!(
        "generated and signed {} entries ({reports} reports, {} traced reports taken in at all \
         seven markets) in {:.1} s",
        pre.len(),
        pre.traced.len(),
        pre.elapsed.as_secs_f64()
    );
    let samples = pre.samples.clone();
    let traced_ids = pre.traced.clone();
    let total = pre.len();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        common::write_store(&net.data_dir("node"), &pre.logs, &net.markets).await;
        drop(pre);
        let opened = Instant::now();
        let listener = common::loopback().await;
        let running = net
            .launch(0, "node", listener, &[], common::default_settings())
            .await;
        println!(
            "node opened (replay checks every entry): {:.1} s for {total} entries; it holds {} \
             reports",
            opened.elapsed().as_secs_f64(),
            running.node.ledger().report_count()
        );
        let url = format!("http://{}", running.grpc_addr);
        let client = Client::connect(&url, None).await.expect("client connects");
        let lots: Vec<(String, Lot, pb::LotQuery)> = samples
            .iter()
            .map(|(id, product, unit)| {
                let quantity = pb::Quantity {
                    amount: "1".into(),
                    unit: unit.clone(),
                };
                let lot = Lot {
                    product: product.clone(),
                    category: None,
                    quantity: quantity.clone(),
                    at_ms: common::now_ms(),
                };
                let query = pb::LotQuery {
                    report_id: id.clone(),
                    product: product.clone(),
                    quantity: Some(quantity),
                    ..Default::default()
                };
                (id.clone(), lot, query)
            })
            .collect();
        let budget = Duration::from_secs(20);
        let load_before = bench::load_average();

        // Baseline: the verdict in process, one at a time.
        let mut local = Latencies::default();
        let mut valid = 0u64;
        let t = Instant::now();
        for k in 0..calls {
            if t.elapsed() > budget {
                break;
            }
            let (id, lot, _) = &lots[(k as usize * 7919) % lots.len()];
            let start = Instant::now();
            let (_, verdict) = running.node.verdict(&ReportRef::Id(id.clone()), lot);
            local.record(start.elapsed());
            valid += u64::from(verdict.valid);
        }
        let local_n = local.len() as u64;

        // The Verify RPC, one call at a time.
        let mut rpc = Latencies::default();
        let t = Instant::now();
        for k in 0..calls {
            if t.elapsed() > budget {
                break;
            }
            let (_, _, query) = &lots[(k as usize * 7919) % lots.len()];
            let start = Instant::now();
            client.verify(query.clone()).await.expect("verify answers");
            rpc.record(start.elapsed());
        }

        // The Verify RPC, `concurrency` clients at once (each on its own connection).
        let clients = bench::connect_clients(&url, None, concurrency)
            .await
            .expect("clients connect");
        let lots = Arc::new(lots);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for (c, client) in clients.into_iter().enumerate() {
            let lots = Arc::clone(&lots);
            let per = calls / concurrency as u64;
            tasks.push(tokio::spawn(async move {
                let mut l = Latencies::default();
                for k in 0..per {
                    if t.elapsed() > budget {
                        break;
                    }
                    let i = ((c as u64 * per + k) as usize * 7919) % lots.len();
                    let start = Instant::now();
                    if client.verify(lots[i].2.clone()).await.is_ok() {
                        l.record(start.elapsed());
                    }
                }
                l
            }));
        }
        let mut loaded = Latencies::default();
        for task in tasks {
            loaded.merge(task.await.unwrap_or_default());
        }
        let loaded_time = t.elapsed();

        // Trace: in process, then over gRPC.
        let mut trace_local = Latencies::default();
        let mut trace_rpc = Latencies::default();
        let mut intakes = 0usize;
        if !traced_ids.is_empty() {
            let t = Instant::now();
            for k in 0..calls.min(5_000) {
                if t.elapsed() > budget {
                    break;
                }
                let id = &traced_ids[k as usize % traced_ids.len()];
                let start = Instant::now();
                let view = huren_node::views::trace(&running.node, id, common::now_ms())
                    .expect("traced report is held");
                trace_local.record(start.elapsed());
                intakes = view.report.map_or(0, |r| r.intakes.len());
            }
            let t = Instant::now();
            for k in 0..calls.min(5_000) {
                if t.elapsed() > budget {
                    break;
                }
                let id = &traced_ids[k as usize % traced_ids.len()];
                let start = Instant::now();
                client.trace(id).await.expect("trace answers");
                trace_rpc.record(start.elapsed());
            }
        }

        let (local_s, rpc_s, loaded_s) = (local.summary(), rpc.summary(), loaded.summary());
        println!(
            "load average before {load_before}, after {}\n\
             baseline, in process Node::verdict ({local_n} calls, {valid} valid): {}\n\
             Verify RPC, one client, one call at a time ({} calls): {}\n\
             Verify RPC, {concurrency} clients at once ({} calls, {:.0} calls/s): {}\n\
             ratio p99 Verify RPC (one at a time) / p99 in-process verdict: {:.1}",
            bench::load_average(),
            local_s.text(),
            rpc_s.count,
            rpc_s.text(),
            loaded_s.count,
            bench::per_second(loaded_s.count as u64, loaded_time),
            loaded_s.text(),
            bench::ratio(rpc_s.p99.as_secs_f64(), local_s.p99.as_secs_f64()),
        );
        if !traced_ids.is_empty() {
            let (tl, tr) = (trace_local.summary(), trace_rpc.summary());
            println!(
                "baseline, in process views::trace of a report taken in at all seven markets \
                 ({intakes} intakes): {}\n\
                 Trace RPC, one call at a time ({} calls over {} reports): {}\n\
                 ratio p99 Trace RPC / p99 in-process trace: {:.1}",
                tl.text(),
                tr.count,
                traced_ids.len(),
                tr.text(),
                bench::ratio(tr.p99.as_secs_f64(), tl.p99.as_secs_f64()),
            );
        }
        running.stop().await;
    });
    println!("load average at the end {}", bench::load_average());
}
