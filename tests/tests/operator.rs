//! The operator's gRPC contract on a real node: writes need the right token, bad requests are
//! refused with the field named and store nothing, unknown ids are NOT_FOUND, retries with a
//! request id append nothing, and the standard health service answers.

use huren_proto::pb::{self, ledger_client::LedgerClient};
use huren_tests::{authed, head, issue, sample_report, token, Testnet};
use tonic::transport::Channel;
use tonic::Code;

/// Breaks one field of a good report.
type Breaker = Box<dyn Fn(&mut pb::ReportIssued)>;

async fn try_issue(
    client: &mut LedgerClient<Channel>,
    report: pb::ReportIssued,
    tok: &str,
) -> Result<pb::AppendResponse, tonic::Status> {
    let request = pb::IssueReportRequest {
        request_id: String::new(),
        report: Some(report),
    };
    client
        .issue_report(authed(request, tok))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_report_field_is_refused_with_the_field_named_and_nothing_stored() {
    let net = Testnet::start(1, 60_000).await;
    let mut client = net.client(0).await;
    let issuer = token("issuer", "shanxi");
    let good = sample_report("shanxi", 1);
    let now = huren_node::clock::Clock::now_ms(&huren_node::clock::SystemClock);
    let cases: Vec<(&str, Breaker)> = vec![
        ("report.product", Box::new(|r| r.product = " ".into())),
        (
            "report.quantity.amount",
            Box::new(|r| r.quantity.as_mut().unwrap().amount = "0".into()),
        ),
        (
            "report.quantity.amount",
            Box::new(|r| r.quantity.as_mut().unwrap().amount = "-3".into()),
        ),
        (
            "report.quantity.unit",
            Box::new(|r| r.quantity.as_mut().unwrap().unit = "bushel".into()),
        ),
        (
            "report.tested_at",
            Box::new(|r| r.tested_at_ms = r.sampled_at_ms - 1),
        ),
        (
            "report.result",
            Box::new(|r| r.result = pb::TestResult::Positive as i32),
        ),
        (
            "report.sampled_at",
            Box::new(move |r| {
                r.sampled_at_ms = now + 86_400_000;
                r.tested_at_ms = now + 86_400_000;
            }),
        ),
        (
            "report.category",
            Box::new(|r| r.category = "spaceship".into()),
        ),
        (
            "report.stall_code",
            Box::new(|r| r.stall_code = "13800138000".into()),
        ),
    ];
    for (field, break_it) in cases {
        let mut bad = good.clone();
        break_it(&mut bad);
        let status = try_issue(&mut client, bad, &issuer).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        assert!(
            status.message().starts_with(field),
            "message names {field}: {}",
            status.message()
        );
    }
    assert_eq!(
        head(&net, 0, "shanxi").await,
        0,
        "no refused request stored anything"
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_a_token_of_the_right_role_and_reads_are_open() {
    let net = Testnet::start(1, 60_000).await;
    let mut client = net.client(0).await;
    let report = sample_report("shanxi", 2);
    let none = client
        .issue_report(pb::IssueReportRequest {
            request_id: String::new(),
            report: Some(report.clone()),
        })
        .await
        .unwrap_err();
    assert_eq!(none.code(), Code::Unauthenticated);
    let wrong = try_issue(&mut client, report.clone(), "not-a-token")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let clerk = try_issue(&mut client, report.clone(), &token("intake", "shanxi"))
        .await
        .unwrap_err();
    assert_eq!(
        clerk.code(),
        Code::PermissionDenied,
        "an intake clerk may not issue: {clerk:?}"
    );
    assert!(
        !clerk.message().contains("test-intake"),
        "errors never echo the token"
    );
    assert_eq!(head(&net, 0, "shanxi").await, 0);
    let done = try_issue(&mut client, report, &token("issuer", "shanxi"))
        .await
        .unwrap();
    let view = client
        .get_report(pb::GetReportRequest {
            report_id: done.report_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(view.report_id, "shanxi-1");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_get_not_found_and_invalid_argument() {
    let net = Testnet::start(1, 60_000).await;
    let mut client = net.client(0).await;
    let missing = client
        .get_report(pb::GetReportRequest {
            report_id: "shanxi-99".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let malformed = client
        .get_report(pb::GetReportRequest {
            report_id: "not an id".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument);
    assert!(malformed.message().starts_with("report_id"));
    let revoke = client
        .revoke_report(authed(
            pb::RevokeReportRequest {
                request_id: String::new(),
                report_id: "shanxi-5".into(),
                reason: "x".into(),
            },
            &token("issuer", "shanxi"),
        ))
        .await
        .unwrap_err();
    assert_eq!(revoke.code(), Code::NotFound);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_issue_returns_the_first_result_and_appends_nothing_even_after_a_restart() {
    let mut net = Testnet::start(1, 60_000).await;
    let report = sample_report("shanxi", 3);
    let first = issue(&net, 0, report.clone(), "lab-7-0001").await;
    assert!(!first.replayed);
    let again = issue(&net, 0, report.clone(), "lab-7-0001").await;
    assert!(again.replayed);
    assert_eq!((again.seq, &again.hash), (first.seq, &first.hash));
    net.stop(0).await;
    net.restart(0).await;
    let after = issue(&net, 0, report.clone(), "lab-7-0001").await;
    assert!(after.replayed, "the request id survives a restart");
    assert_eq!(after.hash, first.hash);
    assert_eq!(
        head(&net, 0, "shanxi").await,
        1,
        "nothing appended by retries"
    );
    // The same id for different content is a conflict, not a silent replay.
    let mut other = report;
    other.product = "冬枣".into();
    let mut client = net.client(0).await;
    let clash = client
        .issue_report(authed(
            pb::IssueReportRequest {
                request_id: "lab-7-0001".into(),
                report: Some(other),
            },
            &token("issuer", "shanxi"),
        ))
        .await
        .unwrap_err();
    assert_eq!(clash.code(), Code::AlreadyExists);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_market_revokes_only_its_own_reports_and_only_once() {
    let net = Testnet::start(2, 100).await;
    let done = issue(&net, 0, sample_report("shanxi", 4), "").await;
    let revoke = |market: &'static str, id: String| {
        let net = &net;
        async move {
            let i = net.markets.iter().position(|m| m == market).unwrap();
            let request = pb::RevokeReportRequest {
                request_id: String::new(),
                report_id: id,
                reason: "试剂过期".into(),
            };
            net.client(i)
                .await
                .revoke_report(authed(request, &token("issuer", market)))
                .await
        }
    };
    assert!(
        huren_tests::eventually(std::time::Duration::from_secs(10), || async {
            head(&net, 1, "shanxi").await == 1
        })
        .await
    );
    let foreign = revoke("jiuzhou", done.report_id.clone()).await.unwrap_err();
    assert_eq!(foreign.code(), Code::PermissionDenied, "{foreign:?}");
    revoke("shanxi", done.report_id.clone())
        .await
        .expect("the issuer revokes");
    let twice = revoke("shanxi", done.report_id.clone()).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standard_health_service_reports_serving() {
    let net = Testnet::start(1, 60_000).await;
    let channel = Channel::from_shared(format!("http://{}", net.addrs[0]))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "huren.v1.Ledger".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_bag_is_certified_once_and_a_lot_holds_one_live_report() {
    let net = Testnet::start(2, 100).await;
    let first = sample_report("shanxi", 21);
    issue(&net, 0, first.clone(), "").await;
    let mut same_bag = sample_report("shanxi", 22);
    same_bag.bag_code = first.bag_code.clone();
    let mut client = net.client(0).await;
    let refused = try_issue(&mut client, same_bag, &token("issuer", "shanxi"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists, "{refused:?}");
    assert!(refused.message().starts_with("report.bag_code"));
    // Another market may not certify the same lot again while its report is valid either.
    assert!(
        huren_tests::eventually(std::time::Duration::from_secs(10), || async {
            head(&net, 1, "shanxi").await == 1
        })
        .await
    );
    let mut same_lot = sample_report("jiuzhou", 23);
    same_lot.lot_id = first.lot_id.clone();
    let mut other = net.client(1).await;
    let refused = try_issue(&mut other, same_lot.clone(), &token("issuer", "jiuzhou"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::AlreadyExists);
    assert!(refused.message().starts_with("report.lot_id"));
    // Once the first report is revoked, the lot may be tested and certified again.
    let revoke = pb::RevokeReportRequest {
        request_id: String::new(),
        report_id: "shanxi-1".into(),
        reason: "复检".into(),
    };
    client
        .revoke_report(authed(revoke, &token("issuer", "shanxi")))
        .await
        .unwrap();
    assert!(
        huren_tests::eventually(std::time::Duration::from_secs(10), || async {
            head(&net, 1, "shanxi").await == 2
        })
        .await
    );
    try_issue(&mut other, same_lot, &token("issuer", "jiuzhou"))
        .await
        .expect("a retest after revocation");
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_whose_client_filled_in_the_times_anew_returns_the_first_result() {
    let net = Testnet::start(1, 60_000).await;
    let report = sample_report("shanxi", 31);
    let first = issue(&net, 0, report.clone(), "lab-retry").await;
    let mut later = report;
    later.sampled_at_ms += 60_000;
    later.tested_at_ms += 60_000;
    let again = issue(&net, 0, later, "lab-retry").await;
    assert!(again.replayed);
    assert_eq!(again.hash, first.hash);
    assert_eq!(head(&net, 0, "shanxi").await, 1);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regulator_submission_is_stored_whole_or_not_at_all_and_a_resend_is_a_no_op() {
    use huren_proto::pb::event::Kind;
    let net = Testnet::start(2, 60_000).await;
    let now = huren_node::clock::Clock::now_ms(&huren_node::clock::SystemClock);
    let suspend = |market: &str| {
        Kind::MarketSuspended(pb::MarketSuspended {
            market: market.into(),
            from_seq: 9,
            reason: "未按规定检测".into(),
        })
    };
    let first = huren_tests::regulator_entry(
        &net,
        (0, huren_proto::format::GENESIS_PREV_HASH),
        now,
        "s1",
        suspend("jiuzhou"),
    );
    // The second does not link to the first.
    let broken = huren_tests::regulator_entry(&net, (1, [7; 32]), now, "s2", suspend("shanxi"));
    let submit = |entries: Vec<pb::SignedEntry>| {
        let net = &net;
        async move {
            let request = pb::SubmitEntriesRequest { entries };
            net.client(0)
                .await
                .submit_regulator_entries(authed(request, &token("regulator", "all")))
                .await
        }
    };
    let refused = submit(vec![first.clone(), broken]).await.unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().starts_with("entries[1]"),
        "{}",
        refused.message()
    );
    assert_eq!(
        head(&net, 0, "regulator").await,
        0,
        "nothing of a refused submission is stored"
    );
    submit(vec![first.clone()])
        .await
        .expect("the valid entry alone is stored");
    let again = submit(vec![first])
        .await
        .expect("resending a stored entry is a no-op")
        .into_inner();
    assert_eq!(again.stored, 0);
    assert_eq!(head(&net, 0, "regulator").await, 1);
    net.shutdown().await;
}
