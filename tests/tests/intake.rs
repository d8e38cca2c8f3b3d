//! Mutual recognition at the gate, across real nodes: an intake draws on the lot once, two
//! markets that overdraw a lot while cut off from each other show as a conflict once they
//! meet, a revocation after intake names the market that must recall, and the portable token
//! verifies at another market.

use std::time::Duration;

use huren_proto::pb::{self, Reason};
use huren_tests::{authed, eventually, head, issue, sample_report, token, Testnet};

const SETTLE: Duration = Duration::from_secs(20);

fn lot(report_id: &str, product: &str, amount: &str, unit: &str) -> pb::LotQuery {
    pb::LotQuery {
        report_id: report_id.into(),
        token: String::new(),
        product: product.into(),
        category: String::new(),
        quantity: Some(pb::Quantity {
            amount: amount.into(),
            unit: unit.into(),
        }),
        at_ms: 0,
    }
}

async fn intake(
    net: &Testnet,
    i: usize,
    request_id: &str,
    lot: pb::LotQuery,
) -> pb::IntakeResponse {
    let request = pb::IntakeRequest {
        request_id: request_id.into(),
        lot: Some(lot),
    };
    net.client(i)
        .await
        .intake(authed(request, &token("intake", &net.markets[i])))
        .await
        .expect("intake is recorded")
        .into_inner()
}

async fn view(net: &Testnet, i: usize, id: &str) -> pb::ReportView {
    net.client(i)
        .await
        .get_report(pb::GetReportRequest {
            report_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// A pass of 100 kg issued at node 0 and held by every node.
async fn hundred_kg(net: &Testnet) -> (String, String) {
    let mut report = sample_report("shanxi", 11);
    report.quantity = Some(pb::Quantity {
        amount: "100".into(),
        unit: "kg".into(),
    });
    let product = report.product.clone();
    let done = issue(net, 0, report, "").await;
    for i in 0..net.markets.len() {
        assert!(
            eventually(SETTLE, || async {
                head(net, i, "shanxi").await >= done.seq
            })
            .await
        );
    }
    (done.report_id, product)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intake_draws_on_the_lot_once_even_when_retried() {
    let net = Testnet::start(2, 100).await;
    let (id, product) = hundred_kg(&net).await;
    let first = intake(&net, 1, "gate-1", lot(&id, &product, "30", "kg")).await;
    assert!(first.verdict.as_ref().unwrap().valid);
    let again = intake(&net, 1, "gate-1", lot(&id, &product, "30", "kg")).await;
    assert!(
        again.recorded.as_ref().unwrap().replayed,
        "the retry returns the first decision"
    );
    assert_eq!(again.recorded.unwrap().seq, first.recorded.unwrap().seq);
    // 30 kg drawn once: 70 kg (= 140 jin) left, in the report's unit.
    let v = view(&net, 1, &id).await;
    assert_eq!(v.remaining.unwrap().amount, "70");
    // 141 jin is 70.5 kg: more than is left.
    let over = intake(&net, 1, "gate-2", lot(&id, &product, "141", "jin")).await;
    let verdict = over.verdict.unwrap();
    assert!(!verdict.valid);
    assert_eq!(verdict.reasons[0].code, Reason::InsufficientQuantity as i32);
    let exact = intake(&net, 1, "gate-3", lot(&id, &product, "140", "jin")).await;
    assert!(
        exact.verdict.unwrap().valid,
        "exactly what is left may be drawn"
    );
    assert_eq!(
        view(&net, 1, &id).await.status,
        pb::ReportStatus::Exhausted as i32
    );
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partitioned_markets_that_overdraw_a_lot_show_a_conflict_once_they_meet() {
    let net = Testnet::start(3, 100).await;
    let (id, product) = hundred_kg(&net).await;
    let all = net.markets.clone();
    net.faults.isolate("jiuzhou", &all);
    net.faults.isolate("tunhui", &all);
    let a = intake(&net, 1, "a", lot(&id, &product, "60", "kg")).await;
    let b = intake(&net, 2, "b", lot(&id, &product, "60", "kg")).await;
    assert!(
        a.verdict.unwrap().valid && b.verdict.unwrap().valid,
        "each alone saw enough"
    );
    net.faults.heal_all();
    for i in 0..3 {
        let met = eventually(SETTLE, || async { view(&net, i, &id).await.overdrawn }).await;
        assert!(met, "node {i} shows the overdraw");
        let v = view(&net, i, &id).await;
        assert_eq!(v.status, pb::ReportStatus::Overdrawn as i32);
        assert_eq!(v.drawn.unwrap().amount, "120");
    }
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_after_intake_names_the_market_that_must_recall_and_refuses_later_intakes() {
    let net = Testnet::start(3, 100).await;
    let (id, product) = hundred_kg(&net).await;
    assert!(
        intake(&net, 1, "in-1", lot(&id, &product, "40", "kg"))
            .await
            .verdict
            .unwrap()
            .valid
    );
    assert!(eventually(SETTLE, || async { head(&net, 0, "jiuzhou").await >= 1 }).await);
    let request = pb::RevokeReportRequest {
        request_id: String::new(),
        report_id: id.clone(),
        reason: "监督抽检不合格".into(),
    };
    net.client(0)
        .await
        .revoke_report(authed(request, &token("issuer", "shanxi")))
        .await
        .unwrap();
    assert!(
        eventually(SETTLE, || async {
            view(&net, 2, &id).await.status == pb::ReportStatus::StatusRevoked as i32
        })
        .await
    );
    let trace = net
        .client(2)
        .await
        .trace(pb::TraceRequest {
            report_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(trace.recall_markets, vec!["jiuzhou".to_string()]);
    let later = intake(&net, 2, "in-2", lot(&id, &product, "10", "kg")).await;
    let verdict = later.verdict.unwrap();
    assert!(!verdict.valid);
    assert!(verdict
        .reasons
        .iter()
        .any(|r| r.code == Reason::Revoked as i32 && r.detail.contains("监督抽检不合格")));
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portable_token_verifies_at_another_market_and_a_tampered_one_does_not() {
    let net = Testnet::start(2, 100).await;
    let (id, product) = hundred_kg(&net).await;
    let entry = view(&net, 0, &id).await.entry.unwrap();
    let token_text = huren_proto::token::encode(&entry);
    let mut query = lot("", &product, "5", "kg");
    query.token = token_text.clone();
    let verdict = net
        .client(1)
        .await
        .verify(pb::VerifyRequest {
            lot: Some(query.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(verdict.valid, "{verdict:?}");
    assert_eq!(verdict.report_id, id);
    let mut tampered_entry = entry.clone();
    let last = tampered_entry.body.len() - 1;
    tampered_entry.body[last] ^= 1;
    query.token = huren_proto::token::encode(&tampered_entry);
    let verdict = net
        .client(1)
        .await
        .verify(pb::VerifyRequest { lot: Some(query) })
        .await
        .unwrap()
        .into_inner();
    assert!(!verdict.valid);
    assert_eq!(verdict.reasons[0].code, Reason::BadSignature as i32);
    net.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_positive_lot_is_refused_everywhere_and_its_disposal_is_recorded() {
    let net = Testnet::start(2, 100).await;
    let mut report = sample_report("shanxi", 12);
    // At its limit a measured item may be read either way; a lab reads this one positive.
    report.items[0].value = report.items[0].limit.clone();
    report.items[0].result = pb::TestResult::Positive as i32;
    report.result = pb::TestResult::Positive as i32;
    let product = report.product.clone();
    let done = issue(&net, 0, report, "").await;
    assert!(eventually(SETTLE, || async { head(&net, 1, "shanxi").await >= 1 }).await);
    let refused = intake(&net, 1, "p", lot(&done.report_id, &product, "1", "kg"))
        .await
        .verdict
        .unwrap();
    assert!(refused
        .reasons
        .iter()
        .any(|r| r.code == Reason::PositiveResult as i32));
    assert_eq!(
        view(&net, 0, &done.report_id).await.status,
        pb::ReportStatus::PositivePendingDisposal as i32
    );
    let disposal = pb::DisposalRecorded {
        report_id: done.report_id.clone(),
        method: pb::DisposalMethod::Destroyed as i32,
        by: "检测室 张组长".into(),
        disposed_at_ms: huren_node::clock::Clock::now_ms(&huren_node::clock::SystemClock),
        reported_to_regulator: true,
        note: String::new(),
    };
    let request = pb::RecordDisposalRequest {
        request_id: String::new(),
        disposal: Some(disposal),
    };
    net.client(0)
        .await
        .record_disposal(authed(request, &token("issuer", "shanxi")))
        .await
        .unwrap();
    assert!(
        eventually(SETTLE, || async {
            view(&net, 1, &done.report_id).await.status == pb::ReportStatus::PositiveDisposed as i32
        })
        .await
    );
    net.shutdown().await;
}
