//! The auditor against real nodes: auditing a node over gRPC and auditing the export file
//! written from it give the same report, and a node that only ever applied the rules passes
//! every integrity check.

mod common;

use std::time::Duration;

use common::Net;
use huren_client::audit::{self, AuditOptions, FindingKind};
use huren_client::export;
use huren_client::Client;
use huren_node::clock::{Clock, SystemClock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditing_a_node_and_auditing_its_export_give_the_same_report() {
    let mut net = Net::start().await;
    common::workload(&mut net, 7, 80, 30).await;
    assert!(net.converged(Duration::from_secs(30)).await);

    let client = Client::connect(&net.url(1), None).await.expect("connect");
    let options = AuditOptions::new(net.regulator.verifying_key(), SystemClock.now_ms());
    let from_node = audit::audit_node(&client, options, &audit::Silent)
        .await
        .expect("audit of the node");

    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("jiuzhou.huren-export");
    let summary = export::export_node(&client, &path, false, &audit::Silent)
        .await
        .expect("export");
    assert_eq!(summary.entries, from_node.totals.entries);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        1,
        "no temporary file is left: {leftovers:?}"
    );
    let from_file = audit::audit_file(&path, options, &audit::Silent).expect("audit of the file");

    assert_eq!(from_node, from_file);
    assert_eq!(from_node.json(), from_file.json());
    assert_eq!(from_node.integrity_failures(), 0, "{}", from_node.text());
    // A node's own rules never let it accept a revoked, expired or positive report, but two
    // markets may each draw on a lot before hearing of the other's draw: an overdraw is the
    // only rule finding a workload of honest nodes can produce here.
    let kinds = from_node.kinds();
    assert!(
        kinds.iter().all(|k| *k == FindingKind::Overdraw),
        "{}",
        from_node.text()
    );
    assert!(from_node.totals.intakes_accepted > 0 && from_node.totals.reports > 10);

    assert!(
        matches!(
            export::export_node(&client, &path, false, &audit::Silent).await,
            Err(export::ExportError::Exists(_))
        ),
        "an existing file is not replaced without --force"
    );
    net.shutdown().await;
}
