//! Event sourcing holds: after a seeded random workload on three real nodes (reports issued
//! and revoked, intakes accepted and rejected, disposals, with nodes restarted in between),
//! every node's live state equals the state rebuilt by replaying its store from the first
//! entry of every log, and, once replication has caught up, every node holds the same state.

mod common;

use std::time::Duration;

use common::{Net, MARKETS};
use huren_node::clock::{Clock, SystemClock};
use huren_node::store::Store;

/// Opens a stopped node's store; sled lets one opener in at a time, and the last handles of
/// a stopped node may take a moment to go.
async fn reopen(dir: &std::path::Path) -> Store {
    let mut tries = 0;
    loop {
        match Store::open(dir) {
            Ok(store) => return store,
            Err(e) if tries < 50 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!(
                "{}: the stopped node's store does not open: {e}",
                dir.display()
            ),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_state_equals_the_state_rebuilt_from_each_store_after_a_random_workload() {
    let mut net = Net::start().await;
    let done = common::workload(&mut net, 20261204, 150, 40).await;
    for op in [
        "issue",
        "revoke",
        "intake_accepted",
        "intake_rejected",
        "dispose",
    ] {
        assert!(
            done.ops.get(op).copied().unwrap_or(0) > 0,
            "the workload did {op}: {done:?}"
        );
    }
    assert!(done.restarts >= 3, "{done:?}");
    assert!(
        net.converged(Duration::from_secs(30)).await,
        "replication did not bring the nodes together"
    );

    let at = SystemClock.now_ms();
    let mut live = Vec::new();
    for i in 0..MARKETS.len() {
        let node = net.node(i).expect("running");
        let digest = node.state_digest(at);
        let reports = node.ledger().report_count();
        live.push((digest, reports));
    }
    assert!(live[0].1 > 20, "the workload issued reports: {live:?}");
    assert!(
        live.iter().all(|l| l == &live[0]),
        "every node holds the same state once caught up: {live:?}"
    );

    for (i, (digest, _)) in live.iter().enumerate() {
        net.stop(i).await;
        let store = reopen(&net.data_dir(i)).await;
        let rebuilt = store.replay(net.membership()).expect("the store replays");
        assert_eq!(
            &huren_node::rebuild::digest(&rebuilt, at),
            digest,
            "{}'s live state is the projection of its logs",
            MARKETS[i]
        );
    }
    net.shutdown().await;
}
