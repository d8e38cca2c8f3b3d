//! Forks of a market's own log, and catch-ups that span many batches.

use std::time::Duration;

use huren_proto::pb;
use huren_tests::{authed, eventually, head, issue, sample_report, token, Options, Testnet};

const SETTLE: Duration = Duration::from_secs(20);

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restored_from_an_old_backup_that_forks_its_own_log_stops_appending_and_says_why() {
    let mut net = Testnet::start(2, 100).await;
    issue(&net, 0, sample_report("shanxi", 1), "a").await;
    net.stop(0).await;
    let backup = net.dir.path().join("backup");
    copy_dir(&net.data_dir(0), &backup);
    net.restart(0).await;
    issue(&net, 0, sample_report("shanxi", 2), "b").await;
    issue(&net, 0, sample_report("shanxi", 3), "c").await;
    assert!(eventually(SETTLE, || async { head(&net, 1, "shanxi").await == 3 }).await);

    // The old backup comes back, cut off from its peer, and signs a new seq 2.
    net.stop(0).await;
    std::fs::remove_dir_all(net.data_dir(0)).unwrap();
    copy_dir(&backup, &net.data_dir(0));
    net.faults.cut("shanxi", "jiuzhou");
    net.restart(0).await;
    assert_eq!(
        head(&net, 0, "shanxi").await,
        1,
        "the backup holds seq 1 only"
    );
    let forked = issue(&net, 0, sample_report("shanxi", 4), "d").await;
    assert_eq!(forked.seq, 2);
    net.faults.heal_all();

    // Meeting its peer, it finds its own log forked, stops appending and says why.
    let mut client = net.client(0).await;
    let halted = eventually(SETTLE, || {
        let mut client = client.clone();
        async move {
            !client
                .status(pb::StatusRequest {})
                .await
                .unwrap()
                .into_inner()
                .halted
                .is_empty()
        }
    })
    .await;
    assert!(halted, "the node noticed the fork of its own log");
    let status = client
        .status(pb::StatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(
        status.halted.contains("forked at seq 2"),
        "{}",
        status.halted
    );
    let refused = client
        .issue_report(authed(
            pb::IssueReportRequest {
                request_id: "e".into(),
                report: Some(sample_report("shanxi", 5)),
            },
            &token("issuer", "shanxi"),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
    assert!(
        refused.message().contains("forked"),
        "{}",
        refused.message()
    );
    // The peer holds the evidence too.
    assert!(
        eventually(SETTLE, || async {
            net.client(1)
                .await
                .forks(pb::ForksRequest {})
                .await
                .unwrap()
                .into_inner()
                .forks
                .len()
                == 1
        })
        .await
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_larger_than_one_batch_arrives_whole_and_in_order() {
    let options = Options {
        batch_entries: 7,
        ..Options::default()
    };
    let mut net = Testnet::start_with(2, 100, options).await;
    net.stop(1).await;
    for n in 0..40 {
        issue(&net, 0, sample_report("shanxi", n), &format!("r{n}")).await;
    }
    net.restart(1).await;
    assert!(eventually(SETTLE, || async { head(&net, 1, "shanxi").await == 40 }).await);
    // Every entry arrived, the chain links, and the bytes are the author's.
    let a = net
        .client(0)
        .await
        .read_log(pb::ReadLogRequest {
            log: "shanxi".into(),
            from: 1,
            limit: 100,
        })
        .await
        .unwrap()
        .into_inner();
    let b = net
        .client(1)
        .await
        .read_log(pb::ReadLogRequest {
            log: "shanxi".into(),
            from: 1,
            limit: 100,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(a.entries, b.entries);
    assert_eq!(b.entries.len(), 40);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_offers_grpc_reflection() {
    let net = Testnet::start(1, 60_000).await;
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", net.addrs[0]))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(channel);
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(
                String::new(),
            ),
        ),
    };
    let mut replies = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .unwrap()
        .into_inner();
    let reply = replies.message().await.unwrap().unwrap();
    let Some(
        tonic_reflection::pb::v1::server_reflection_response::MessageResponse::ListServicesResponse(
            list,
        ),
    ) = reply.message_response
    else {
        panic!("expected a service list, got {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"huren.v1.Ledger".to_string()), "{names:?}");
    assert!(
        names.contains(&"huren.v1.Replication".to_string()),
        "{names:?}"
    );
    net.shutdown().await;
}
