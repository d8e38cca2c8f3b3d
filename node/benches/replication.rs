//! Replication latency (issue 3): seven nodes in this process, fully meshed over real gRPC on
//! loopback with the shipped replication settings, issued to at a fixed total rate spread
//! round-robin over the seven markets. Each node's arrivals are read from its own commit
//! broadcast (`Node::subscribe`), which fires when an entry is durable there, so measuring
//! adds no call to the path. Reported: from the issuing node's durable commit (and from the
//! client's acknowledgement) to the entry being durable at all six other markets.
//! Baseline in the same run: the acknowledgement latency of the issues themselves (one
//! durable append through gRPC), which is the least one more hop can cost.
//!
//! `cargo bench -p huren-node --bench replication -- [--rate 1000] [--seconds 25]`

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use huren_client::bench::{self, Latencies};
use huren_client::Client;

const N: usize = 7;

#[derive(Default, Clone, Copy)]
struct Arrivals {
    at: [Option<Instant>; N],
}

struct Ack {
    market: usize,
    seq: u64,
    ack: Instant,
}

fn main() {
    let opts = common::Options::from_env();
    let rate = opts.num("rate", 1000).max(1);
    let seconds = opts.num("seconds", 25).max(1);
    println!(
        "{}",
        common::machine_line(&format!(
            "bench replication: issue at {rate}/s over seven markets for {seconds} s; time \
             until durable at all six others"
        ))
    );
    let net = common::Net::new(N);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(&net, rate, seconds));
    println!("load average at the end {}", bench::load_average());
}

async fn run(net: &common::Net, rate: u64, seconds: u64) {
    let settings = common::default_settings();
    println!(
        "settings: pull every {} ms, batches of {} entries (config defaults); push at once",
        settings.pull_interval.as_millis(),
        settings.batch_entries
    );
    let mut listeners = Vec::new();
    for _ in 0..N {
        listeners.push(common::loopback().await);
    }
    let addrs: Vec<_> = listeners
        .iter()
        .map(|l| l.local_addr().expect("bound"))
        .collect();
    let mut nodes = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        let peers: Vec<_> = (0..N).filter(|j| *j != i).map(|j| (j, addrs[j])).collect();
        nodes.push(
            net.launch(i, &net.markets[i], listener, &peers, settings)
                .await,
        );
    }

    // Arrival recorders, one per node, on its commit broadcast.
    let index: Arc<HashMap<String, usize>> = Arc::new(
        net.markets
            .iter()
            .enumerate()
            .map(|(i, m)| (m.clone(), i))
            .collect(),
    );
    let arrivals: Arc<Mutex<HashMap<(usize, u64), Arrivals>>> = Arc::default();
    let lagged = Arc::new(AtomicU64::new(0));
    let mut recorders = Vec::new();
    for (i, r) in nodes.iter().enumerate() {
        let mut rx = r.node.subscribe();
        let arrivals = Arc::clone(&arrivals);
        let index = Arc::clone(&index);
        let lagged = Arc::clone(&lagged);
        recorders.push(tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(c) => {
                        let t = Instant::now();
                        let mut map = arrivals.lock().expect("no holder panics");
                        for v in &c.entries {
                            if let Some(log) = index.get(&v.entry.log) {
                                map.entry((*log, v.entry.seq)).or_default().at[i] = Some(t);
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        lagged.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
        }));
    }

    let mut clients = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let token = common::token("issuer", &net.markets[i]);
        clients.push(
            Client::connect(&format!("http://{addr}"), Some(&token))
                .await
                .expect("client connects"),
        );
    }
    let reports: Vec<Arc<Vec<_>>> = net
        .markets
        .iter()
        .map(|m| Arc::new(bench::sample_reports(m, 3, 2_000)))
        .collect();

    // Warm up: one report per market, so every peer connection is open before timing.
    for (i, c) in clients.iter().enumerate() {
        c.issue_report(&format!("warmup-{i}"), reports[i][0].clone())
            .await
            .expect("warm-up issue");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let load_before = bench::load_average();

    // The load: open loop at `rate`, round-robin over the markets, at most 1024 in flight.
    let acks: Arc<Mutex<Vec<Ack>>> = Arc::default();
    let ack_lat: Arc<Mutex<Latencies>> = Arc::default();
    let failed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(1024));
    let mut skipped = 0u64;
    let total = rate * seconds;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for k in 0..total {
        tokio::time::sleep_until((started + period * k as u32).into()).await;
        let Ok(permit) = Arc::clone(&in_flight).try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let market = (k % N as u64) as usize;
        let client = clients[market].clone();
        let report = reports[market][(k as usize / N) % reports[market].len()].clone();
        let (acks, ack_lat, failed) =
            (Arc::clone(&acks), Arc::clone(&ack_lat), Arc::clone(&failed));
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            match client.issue_report(&format!("repl-{k}"), report).await {
                Ok(reply) => {
                    let ack = Instant::now();
                    ack_lat.lock().expect("no holder panics").record(ack - sent);
                    acks.lock().expect("no holder panics").push(Ack {
                        market,
                        seq: reply.seq,
                        ack,
                    });
                }
                Err(_) => {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let issue_time = started.elapsed();
    let load_after = bench::load_average();

    // Let the last entries land everywhere (bounded).
    let acks = std::mem::take(&mut *acks.lock().expect("no holder panics"));
    let settle = Instant::now();
    let everywhere = |map: &HashMap<(usize, u64), Arrivals>, a: &Ack| {
        map.get(&(a.market, a.seq))
            .is_some_and(|r| r.at.iter().all(Option::is_some))
    };
    while settle.elapsed() < Duration::from_secs(15) {
        let done = {
            let map = arrivals.lock().expect("no holder panics");
            acks.iter().all(|a| everywhere(&map, a))
        };
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let map = arrivals.lock().expect("no holder panics").clone();
    let mut from_commit = Latencies::default();
    let mut from_ack = Latencies::default();
    let mut each_peer = Latencies::default();
    let mut before_ack = 0u64;
    let mut missing = 0u64;
    for a in &acks {
        let Some(r) = map.get(&(a.market, a.seq)) else {
            missing += 1;
            continue;
        };
        let Some(origin) = r.at[a.market] else {
            missing += 1;
            continue;
        };
        let others: Vec<Instant> = (0..N)
            .filter(|j| *j != a.market)
            .filter_map(|j| r.at[j])
            .collect();
        if others.len() != N - 1 {
            missing += 1;
            continue;
        }
        for t in &others {
            each_peer.record(t.saturating_duration_since(origin));
        }
        let last = *others.iter().max().expect("six arrivals");
        from_commit.record(last.saturating_duration_since(origin));
        if last < a.ack {
            before_ack += 1;
        }
        from_ack.record(last.saturating_duration_since(a.ack));
    }
    let mut ack_lat = std::mem::take(&mut *ack_lat.lock().expect("no holder panics"));
    let acked = acks.len() as u64;
    println!(
        "load average before {load_before}, at the end of issuing {load_after}\n\
         issued {acked} reports in {:.2} s: {:.0} acknowledged/s (target {rate}/s; failed {}, \
         not sent because 1024 were in flight {skipped})",
        issue_time.as_secs_f64(),
        bench::per_second(acked, issue_time),
        failed.load(Ordering::Relaxed),
    );
    let commit = from_commit.summary();
    let ack = from_ack.summary();
    let ack_base = ack_lat.summary();
    println!(
        "durable at all six others, from the issuing node's durable commit: {}\n\
         durable at all six others, from the client's acknowledgement:     {} \
         ({before_ack} were everywhere before the ack reached the client)\n\
         durable at one other (each of the six arrivals):               {}\n\
         baseline, same run: issue acknowledgement (one durable append over gRPC): {}\n\
         ratio p99 all-six-from-commit / p99 acknowledgement: {:.2}; p50: {:.2}\n\
         entries not everywhere within 15 s after the load: {missing}; commits missed by \
         the recorders: {}",
        commit.text(),
        ack.text(),
        each_peer.summary().text(),
        ack_base.text(),
        bench::ratio(commit.p99.as_secs_f64(), ack_base.p99.as_secs_f64()),
        bench::ratio(commit.p50.as_secs_f64(), ack_base.p50.as_secs_f64()),
        lagged.load(Ordering::Relaxed),
    );

    for r in nodes {
        r.stop().await;
    }
    for t in recorders {
        t.abort();
    }
}
