//! Field validation of rapid-test reports (docs/FORMAT.md section 9): each malformed field is
//! refused, both by `validate::report` and by admission, with the field named.

use huren_proto::ledger::AdmitError;
use huren_proto::pb::{ReportIssued, TestResult};
use huren_proto::testkit::{self, Network, T0};
use huren_proto::validate::{self, TimeBounds};

/// Applies `mutate` to the sample report and returns the field validation names. Admission
/// of an entry carrying the report must refuse it naming the same field.
fn refused_field(mutate: impl FnOnce(&mut ReportIssued)) -> String {
    let mut report = testkit::sample_report(T0);
    mutate(&mut report);
    let error = validate::report(&report, None).expect_err("the report must be refused");

    let network = Network::new();
    let signed = network.author("shanxi").next(testkit::issue(report), T0);
    match network.ledger().admit(signed, None) {
        Err(AdmitError::Invalid(e)) => assert_eq!(e.field, error.field, "admission disagrees"),
        other => panic!("admission let {} through: {other:?}", error.field),
    }
    error.field
}

#[test]
fn the_sample_report_passes_so_each_refusal_below_is_the_mutation() {
    assert_eq!(validate::report(&testkit::sample_report(T0), None), Ok(()));
}

#[test]
fn an_empty_product_is_refused() {
    assert_eq!(refused_field(|r| r.product.clear()), "report.product");
    assert_eq!(refused_field(|r| r.product = "  ".into()), "report.product");
}

#[test]
fn a_zero_quantity_is_refused() {
    assert_eq!(
        refused_field(|r| r.quantity = Some(testkit::qty("0", "kg"))),
        "report.quantity.amount"
    );
    assert_eq!(
        refused_field(|r| r.quantity = Some(testkit::qty("0.000", "kg"))),
        "report.quantity.amount"
    );
}

#[test]
fn a_negative_quantity_is_refused() {
    assert_eq!(
        refused_field(|r| r.quantity = Some(testkit::qty("-5", "kg"))),
        "report.quantity.amount"
    );
}

#[test]
fn a_missing_quantity_is_refused() {
    assert_eq!(refused_field(|r| r.quantity = None), "report.quantity");
}

#[test]
fn an_unknown_unit_is_refused() {
    assert_eq!(
        refused_field(|r| r.quantity = Some(testkit::qty("5", "lb"))),
        "report.quantity.unit"
    );
    assert_eq!(
        refused_field(|r| r.quantity = Some(testkit::qty("5", ""))),
        "report.quantity.unit"
    );
}

#[test]
fn a_test_before_its_sampling_is_refused() {
    assert_eq!(
        refused_field(|r| r.tested_at_ms = r.sampled_at_ms - 1),
        "report.tested_at"
    );
}

#[test]
fn an_overall_result_contradicting_the_items_is_refused() {
    assert_eq!(
        refused_field(|r| r.result = TestResult::Positive as i32),
        "report.result"
    );
    assert_eq!(
        refused_field(|r| {
            // At its limit an item may be either; positive here makes the report positive.
            r.items[0].value = "50".into();
            r.items[0].result = TestResult::Positive as i32;
        }),
        "report.result"
    );
    assert_eq!(
        refused_field(|r| r.result = TestResult::Unspecified as i32),
        "report.result"
    );
}

#[test]
fn a_time_far_in_the_future_is_refused_against_the_clock() {
    let bounds = TimeBounds {
        now_ms: T0,
        skew_ms: 300_000,
    };
    let mut report = testkit::sample_report(T0);
    assert_eq!(validate::report(&report, Some(bounds)), Ok(()));

    report.tested_at_ms = T0 + 24 * testkit::HOUR_MS;
    let error = validate::report(&report, Some(bounds)).expect_err("a day ahead is refused");
    assert_eq!(error.field, "report.tested_at");

    report.sampled_at_ms = T0 + 24 * testkit::HOUR_MS;
    let error = validate::report(&report, Some(bounds)).expect_err("a day ahead is refused");
    assert_eq!(error.field, "report.sampled_at");

    // The skew is the allowance: exactly at its end is still fine, a millisecond later is not.
    let mut report = testkit::sample_report(T0 + 300_000);
    assert_eq!(validate::report(&report, Some(bounds)), Ok(()));
    report.tested_at_ms += 1;
    assert_eq!(
        validate::report(&report, Some(bounds)).map_err(|e| e.field),
        Err("report.tested_at".into())
    );
}

#[test]
fn an_entry_clock_far_in_the_future_is_refused_at_admission() {
    let network = Network::new();
    let bounds = TimeBounds {
        now_ms: T0,
        skew_ms: 300_000,
    };
    let report = testkit::issue(testkit::sample_report(T0));
    let signed = network
        .author("shanxi")
        .next(report.clone(), T0 + 24 * testkit::HOUR_MS);
    match network.ledger().admit(signed, Some(bounds)) {
        Err(AdmitError::Invalid(e)) => assert_eq!(e.field, "time"),
        other => panic!("a day-ahead entry clock was not refused: {other:?}"),
    }
    let on_time = network.author("shanxi").next(report, T0 + 300_000);
    assert!(network.ledger().admit(on_time, Some(bounds)).is_ok());
}

#[test]
fn a_stall_code_that_looks_like_a_phone_number_is_refused() {
    assert_eq!(
        refused_field(|r| r.stall_code = "13812345678".into()),
        "report.stall_code"
    );
    // Eleven digits that cannot be a mobile number are a stall code like any other.
    let mut report = testkit::sample_report(T0);
    report.stall_code = "20261204001".into();
    assert_eq!(validate::report(&report, None), Ok(()));
}

#[test]
fn a_report_without_test_items_is_refused() {
    assert_eq!(refused_field(|r| r.items.clear()), "report.items");
}

#[test]
fn an_item_without_a_result_is_refused() {
    assert_eq!(
        refused_field(|r| r.items[0].result = TestResult::Unspecified as i32),
        "report.items[0].result"
    );
}

#[test]
fn a_category_that_is_not_a_code_is_refused() {
    assert_eq!(
        refused_field(|r| r.category = "Leafy Vegetable".into()),
        "report.category"
    );
}

#[test]
fn an_item_over_its_limit_must_be_positive_and_under_it_negative() {
    assert_eq!(
        refused_field(|r| r.items[0].value = "99".into()),
        "report.items[0].result",
        "a 99 % inhibition rate marked negative"
    );
    assert_eq!(
        refused_field(|r| {
            r.items[0].result = TestResult::Positive as i32;
            r.result = TestResult::Positive as i32;
        }),
        "report.items[0].result",
        "12.5 % under a 50 % limit marked positive"
    );
    assert_eq!(
        refused_field(|r| r.items[0].value = "-5".into()),
        "report.items[0].value"
    );
    let mut at_limit = testkit::sample_report(T0);
    at_limit.items[0].value = "50.000".into();
    at_limit.items[0].result = TestResult::Positive as i32;
    at_limit.result = TestResult::Positive as i32;
    assert_eq!(
        validate::report(&at_limit, None),
        Ok(()),
        "at the limit the method decides"
    );
}

#[test]
fn invisible_and_direction_changing_characters_are_refused_in_names() {
    for sneaky in ["菜\u{200B}", "\u{202E}豆菜", "菜\u{FEFF}豆"] {
        let field = refused_field(|r| r.product = sneaky.into());
        assert_eq!(field, "report.product", "{sneaky:?}");
    }
}

#[test]
fn market_addresses_must_be_plain_http_urls() {
    let key = testkit::key("shanxi");
    let mut market = testkit::market("shanxi", &key);
    assert_eq!(validate::market(&market), Ok(()));
    market.http_addr = "javascript:alert(1)".into();
    assert_eq!(
        validate::market(&market).unwrap_err().field,
        "market.http_addr"
    );
    market.http_addr = "http://a\"b".into();
    assert_eq!(
        validate::market(&market).unwrap_err().field,
        "market.http_addr"
    );
    market.http_addr = String::new();
    market.grpc_addr = "notaurl".into();
    assert_eq!(
        validate::market(&market).unwrap_err().field,
        "market.grpc_addr"
    );
}
