//! Seven real nodes replicating over gRPC: every report reaches every market, whatever fails
//! in between, and nothing that fails a check is stored.

use std::time::Duration;

use huren_proto::format;
use huren_proto::ids;
use huren_proto::pb::{self, event::Kind};
use huren_tests::{authed, eventually, head, issue, sample_report, token, Testnet};

const SETTLE: Duration = Duration::from_secs(20);

async fn everyone_has(net: &Testnet, log: &str, seq: u64, skip: &[usize]) -> bool {
    for i in 0..net.markets.len() {
        if skip.contains(&i) {
            continue;
        }
        if head(net, i, log).await < seq {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_issued_at_one_market_is_readable_at_the_other_six() {
    let net = Testnet::start(7, 200).await;
    let done = issue(&net, 2, sample_report("tunhui", 1), "r1").await;
    assert_eq!(done.report_id, "tunhui-1");
    assert!(
        eventually(SETTLE, || everyone_has(&net, "tunhui", 1, &[])).await,
        "all seven hold tunhui-1"
    );
    for i in 0..7 {
        let view = net
            .client(i)
            .await
            .get_report(pb::GetReportRequest {
                report_id: "tunhui-1".into(),
            })
            .await
            .expect("every market can read the report")
            .into_inner();
        assert_eq!(
            view.entry.as_ref().map(|e| &e.body),
            done.entry.as_ref().map(|e| &e.body),
            "verbatim bytes at market {i}"
        );
        assert_eq!(view.status, pb::ReportStatus::Valid as i32);
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_catches_up_after_restart() {
    let mut net = Testnet::start(7, 100).await;
    net.stop(3).await;
    for n in 0..5 {
        issue(&net, 0, sample_report("shanxi", n), &format!("s{n}")).await;
        issue(&net, 1, sample_report("jiuzhou", n), &format!("j{n}")).await;
    }
    assert!(eventually(SETTLE, || everyone_has(&net, "shanxi", 5, &[3])).await);
    net.restart(3).await;
    assert!(
        eventually(SETTLE, || async {
            head(&net, 3, "shanxi").await == 5 && head(&net, 3, "jiuzhou").await == 5
        })
        .await,
        "the restarted node pulled what it missed"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_reach_a_market_cut_off_from_their_author_through_a_relay() {
    let net = Testnet::start(7, 100).await;
    net.faults.cut("shanxi", "market7");
    issue(&net, 0, sample_report("shanxi", 7), "cut-1").await;
    assert!(
        eventually(SETTLE, || async { head(&net, 6, "shanxi").await == 1 }).await,
        "market7 got shanxi's entry from another market"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_survives_lossy_and_slow_links() {
    let net = Testnet::start(4, 100).await;
    for a in &net.markets {
        for b in &net.markets {
            if a != b {
                net.faults.set(
                    a,
                    b,
                    huren_node::replication::LinkFault {
                        cut: false,
                        delay: Duration::from_millis(30),
                        loss: 0.3,
                    },
                );
            }
        }
    }
    for n in 0..10 {
        issue(
            &net,
            n % 4,
            sample_report(&net.markets[n % 4].clone(), n),
            &format!("l{n}"),
        )
        .await;
    }
    for (i, m) in net.markets.iter().enumerate() {
        let expected = (0..10).filter(|n| n % 4 == i).count() as u64;
        assert!(
            eventually(SETTLE, || everyone_has(&net, m, expected, &[])).await,
            "{m}'s log spread despite loss"
        );
    }
    net.shutdown().await;
}

fn signed_at(
    net: &Testnet,
    market: usize,
    seq: u64,
    prev: [u8; 32],
    report: pb::ReportIssued,
) -> pb::SignedEntry {
    let entry = pb::Entry {
        format: 1,
        log: net.markets[market].clone(),
        seq,
        prev_hash: prev.to_vec(),
        time_ms: huren_node::clock::Clock::now_ms(&huren_node::clock::SystemClock),
        request_id: String::new(),
        event: Some(pb::Event {
            kind: Some(Kind::ReportIssued(report)),
        }),
    };
    format::sign_entry(&net.keys[market], &entry)
}

async fn push(
    net: &Testnet,
    to: usize,
    as_peer: &str,
    entries: Vec<pb::SignedEntry>,
) -> Result<pb::PushResponse, tonic::Status> {
    let request = pb::PushRequest {
        entries,
        forks: Vec::new(),
    };
    net.replication(to)
        .await
        .push(authed(request, &token("peer", as_peer)))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_that_signs_two_entries_at_one_seq_is_caught_by_every_honest_node() {
    let net = Testnet::start(7, 100).await;
    // market7 is the cheat: it signs two different first entries and shows each to one node.
    let a = signed_at(
        &net,
        6,
        1,
        format::GENESIS_PREV_HASH,
        sample_report("market7", 1),
    );
    let b = signed_at(
        &net,
        6,
        1,
        format::GENESIS_PREV_HASH,
        sample_report("market7", 2),
    );
    assert_eq!(push(&net, 0, "market7", vec![a]).await.unwrap().stored, 1);
    assert_eq!(push(&net, 1, "market7", vec![b]).await.unwrap().stored, 1);
    for i in 0..6 {
        let caught = eventually(SETTLE, || async {
            let forks = net
                .client(i)
                .await
                .forks(pb::ForksRequest {})
                .await
                .unwrap()
                .into_inner()
                .forks;
            forks.len() == 1
        })
        .await;
        assert!(caught, "honest node {i} holds the fork evidence");
        let heads = net
            .client(i)
            .await
            .heads(pb::HeadsRequest {})
            .await
            .unwrap()
            .into_inner()
            .heads;
        let h = heads
            .iter()
            .find(|h| h.log == "market7")
            .expect("head of market7");
        assert!(h.frozen, "market7's log is frozen at node {i}");
    }
    // A frozen log takes nothing more.
    let c = signed_at(&net, 6, 2, [9; 32], sample_report("market7", 3));
    let reply = push(&net, 2, "market7", vec![c]).await.unwrap();
    assert_eq!(reply.stored, 0);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_of_non_members_and_suspended_markets_are_refused() {
    let net = Testnet::start(3, 100).await;
    // A key outside the trust list signs an entry claiming to be shanxi's.
    let outsider = ed25519_dalek::SigningKey::from_bytes(&[0x55; 32]);
    let entry = pb::Entry {
        format: 1,
        log: "shanxi".into(),
        seq: 1,
        prev_hash: format::GENESIS_PREV_HASH.to_vec(),
        time_ms: 1,
        request_id: String::new(),
        event: Some(pb::Event {
            kind: Some(Kind::ReportIssued(sample_report("shanxi", 1))),
        }),
    };
    let forged = format::sign_entry(&outsider, &entry);
    let reply = push(&net, 1, "tunhui", vec![forged.clone()]).await.unwrap();
    assert_eq!(reply.stored, 0, "a forged entry is not stored");
    assert_eq!(head(&net, 1, "shanxi").await, 0, "nothing stored");
    let again = push(&net, 1, "tunhui", vec![forged]).await.unwrap_err();
    assert_eq!(
        again.code(),
        tonic::Code::Unavailable,
        "the peer that relayed it is slowed down: {again:?}"
    );

    // The regulator suspends jiuzhou from its seq 2 on.
    let suspension = huren_tests::regulator_entry(
        &net,
        (0, format::GENESIS_PREV_HASH),
        1,
        "suspend",
        Kind::MarketSuspended(pb::MarketSuspended {
            market: "jiuzhou".into(),
            from_seq: 2,
            reason: "false certificates".into(),
        }),
    );
    let request = pb::SubmitEntriesRequest {
        entries: vec![suspension],
    };
    net.client(0)
        .await
        .submit_regulator_entries(authed(request, &token("regulator", "all")))
        .await
        .expect("regulator entry accepted");
    assert!(eventually(SETTLE, || everyone_has(&net, ids::REGULATOR_LOG, 1, &[])).await);
    let first = issue(&net, 1, sample_report("jiuzhou", 1), "j1").await;
    assert_eq!(first.seq, 1, "seq 1 is before the suspension");
    let mut client = net.client(1).await;
    let refused = client
        .issue_report(authed(
            pb::IssueReportRequest {
                request_id: "j2".into(),
                report: Some(sample_report("jiuzhou", 2)),
            },
            &token("issuer", "jiuzhou"),
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    // Even signed by jiuzhou's own key and pushed by a peer, seq 2 is refused elsewhere.
    let prev: [u8; 32] = first.hash.clone().try_into().unwrap();
    let late = signed_at(&net, 1, 2, prev, sample_report("jiuzhou", 3));
    let reply = push(&net, 2, "jiuzhou", vec![late]).await;
    assert!(reply.map_or(true, |r| r.stored == 0));
    assert!(head(&net, 2, "jiuzhou").await <= 1);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_reordered_and_replayed_deliveries_change_nothing() {
    let net = Testnet::start(2, 60_000).await;
    // Three entries of shanxi's log, built by hand so they can be delivered out of order.
    let mut prev = format::GENESIS_PREV_HASH;
    let mut entries = Vec::new();
    for n in 1..=3u64 {
        let e = signed_at(&net, 0, n, prev, sample_report("shanxi", n as usize));
        prev = format::entry_hash(&e.body);
        entries.push(e);
    }
    let reversed: Vec<_> = entries.iter().rev().cloned().collect();
    let first = push(&net, 1, "shanxi", reversed).await.unwrap();
    assert_eq!(
        (first.stored, first.deferred),
        (1, 2),
        "seq 1 placed, 3 and 2 wait for it: {first:?}"
    );
    let reply = push(&net, 1, "shanxi", entries.clone()).await.unwrap();
    assert_eq!(reply.stored + first.stored, 3);
    let digest_before = net.node(1).node.state_digest(0);
    let again = push(&net, 1, "shanxi", entries.clone()).await.unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 3));
    let doubled: Vec<_> = entries.iter().chain(entries.iter()).cloned().collect();
    let twice = push(&net, 1, "shanxi", doubled).await.unwrap();
    assert_eq!(twice.stored, 0);
    assert_eq!(
        net.node(1).node.state_digest(0),
        digest_before,
        "state unchanged by replays"
    );
    assert_eq!(head(&net, 1, "shanxi").await, 3);
    net.shutdown().await;
}
