//! The verdict: one test per reason code, through `Ledger::verdict` (by report id) and
//! `Ledger::verdict_for_entry` (by the report's signed entry, as a token carries it), and the
//! validity window at its exact bounds.

use huren_proto::ledger::{Knowledge, Ledger, Lot, Status, Verdict};
use huren_proto::pb::{
    event::Kind, CategoryRule, ForkEvidence, Reason, ReportIssued, Rules, RulesPublished,
    SignedEntry, TestItem, TestResult,
};
use huren_proto::testkit::{self, Author, Network, HOUR_MS, T0};
use huren_proto::time::from_cst;
use huren_proto::token;

/// `vegetable` is valid for 72 h under the built-in rules, with 5 minutes of clock skew.
const VALIDITY_MS: i64 = 72 * HOUR_MS;
const SKEW_MS: i64 = 5 * 60_000;

/// A network whose ledger holds `report` as shanxi-1, issued at T0.
struct Fixture {
    network: Network,
    ledger: Ledger,
    shanxi: Author,
    regulator: Author,
    /// shanxi-1 as signed.
    entry: SignedEntry,
}

impl Fixture {
    fn new(report: ReportIssued) -> Self {
        let network = Network::new();
        let mut ledger = network.ledger();
        let mut shanxi = network.author("shanxi");
        // The issuer signs when it issues: after its test, on its own clock.
        let signed_at = T0.max(report.tested_at_ms);
        let entry = shanxi.next(testkit::issue(report), signed_at);
        testkit::append(&mut ledger, entry.clone());
        let regulator = network.author("regulator");
        Self {
            network,
            ledger,
            shanxi,
            regulator,
            entry,
        }
    }

    fn sample() -> Self {
        Self::new(testkit::sample_report(T0))
    }

    /// The reason codes by report id.
    fn by_id(&self, lot: &Lot) -> Vec<Reason> {
        codes(&self.ledger.verdict("shanxi-1", lot))
    }

    /// The reason codes by signed entry, with everything the ledger knows.
    fn by_entry(&self, lot: &Lot) -> Vec<Reason> {
        let (id, verdict) = self
            .ledger
            .verdict_for_entry(&self.entry, Knowledge::Ledger, lot);
        assert_eq!(id, "shanxi-1");
        codes(&verdict)
    }

    /// Asserts that both ways of asking give exactly `expected`.
    fn assert_reasons(&self, lot: &Lot, expected: &[Reason]) {
        assert_eq!(self.by_id(lot), expected, "Ledger::verdict");
        assert_eq!(self.by_entry(lot), expected, "Ledger::verdict_for_entry");
    }
}

fn codes(verdict: &Verdict) -> Vec<Reason> {
    let codes: Vec<Reason> = verdict
        .reasons
        .iter()
        .map(|r| Reason::try_from(r.code).expect("a known reason code"))
        .collect();
    assert_eq!(verdict.valid, codes.is_empty(), "valid iff no reason");
    codes
}

/// 10 kg of 菜豆 an hour after the test.
fn good_lot() -> Lot {
    testkit::lot("菜豆", "10", "kg", T0 + HOUR_MS)
}

fn lot_at(at_ms: i64) -> Lot {
    testkit::lot("菜豆", "10", "kg", at_ms)
}

#[test]
fn a_fresh_negative_report_for_its_own_goods_is_valid() {
    let f = Fixture::sample();
    f.assert_reasons(&good_lot(), &[]);
    let verdict = f.ledger.verdict("shanxi-1", &good_lot());
    assert_eq!(verdict.valid_until_ms, Some(T0 + VALIDITY_MS));
    assert_eq!(verdict.remaining, Some(100_000_000));
    assert_eq!(verdict.rules_version, 0);
}

#[test]
fn unknown_issuer_for_a_market_outside_the_network() {
    let f = Fixture::sample();
    assert_eq!(
        codes(&f.ledger.verdict("zhangzitou-1", &good_lot())),
        [Reason::UnknownIssuer]
    );
    let outsider = Author::new("zhangzitou", testkit::key("zhangzitou"))
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    for knowledge in [Knowledge::Ledger, Knowledge::TokenOnly] {
        let (id, verdict) = f
            .ledger
            .verdict_for_entry(&outsider, knowledge, &good_lot());
        assert_eq!(id, "zhangzitou-1");
        assert_eq!(codes(&verdict), [Reason::UnknownIssuer]);
    }
}

#[test]
fn issuer_suspended_when_the_report_lies_in_a_suspended_range() {
    let mut f = Fixture::sample();
    let suspension = f.regulator.next(testkit::suspend("shanxi", 1), T0);
    testkit::append(&mut f.ledger, suspension);
    f.assert_reasons(&good_lot(), &[Reason::IssuerSuspended]);
}

#[test]
fn bad_signature_for_a_tampered_token() {
    let f = Fixture::sample();
    let text = token::encode(&f.entry);
    // The signature is the end of the encoded SignedEntry; change one character inside it.
    let at = text.len() - 10;
    let original = text.as_bytes()[at];
    let replacement = if original == b'A' { 'B' } else { 'A' };
    let tampered = format!("{}{replacement}{}", &text[..at], &text[at + 1..]);
    let signed = token::decode(&tampered).expect("still a well-formed token");
    assert_eq!(signed.body, f.entry.body, "only the signature changed");
    for knowledge in [Knowledge::Ledger, Knowledge::TokenOnly] {
        let (_, verdict) = f.ledger.verdict_for_entry(&signed, knowledge, &good_lot());
        assert_eq!(codes(&verdict), [Reason::BadSignature]);
    }
    // The untampered token is fine.
    let signed = token::decode(&text).expect("a token");
    let (_, verdict) = f
        .ledger
        .verdict_for_entry(&signed, Knowledge::TokenOnly, &good_lot());
    assert_eq!(codes(&verdict), []);
}

#[test]
fn not_seen_here_for_a_report_this_ledger_does_not_hold() {
    let f = Fixture::sample();
    assert_eq!(
        codes(&f.ledger.verdict("shanxi-2", &good_lot())),
        [Reason::NotSeenHere]
    );
    // A genuine report that has not reached this node: the token is valid on its own, but the
    // node cannot vouch for what it has not seen.
    let unseen = f
        .shanxi
        .clone()
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    let (id, verdict) = f
        .ledger
        .verdict_for_entry(&unseen, Knowledge::Ledger, &good_lot());
    assert_eq!(id, "shanxi-2");
    assert_eq!(codes(&verdict), [Reason::NotSeenHere]);
    let (_, verdict) = f
        .ledger
        .verdict_for_entry(&unseen, Knowledge::TokenOnly, &good_lot());
    assert_eq!(codes(&verdict), []);
}

#[test]
fn revoked_after_the_issuer_withdraws_the_report() {
    let mut f = Fixture::sample();
    let revocation = f
        .shanxi
        .next(testkit::revoke("shanxi-1", "实验室记录错误"), T0);
    testkit::append(&mut f.ledger, revocation);
    f.assert_reasons(&good_lot(), &[Reason::Revoked]);
    assert_eq!(
        f.ledger.state("shanxi-1", T0).map(|s| s.status),
        Some(Status::Revoked)
    );
    // Offline, with the token alone, the revocation cannot be known.
    let (_, verdict) = f
        .ledger
        .verdict_for_entry(&f.entry, Knowledge::TokenOnly, &good_lot());
    assert_eq!(codes(&verdict), []);
}

#[test]
fn revoked_after_the_regulator_withdraws_the_report() {
    let mut f = Fixture::sample();
    let revocation = f
        .regulator
        .next(testkit::revoke("shanxi-1", "监督抽检不合格"), T0);
    testkit::append(&mut f.ledger, revocation);
    f.assert_reasons(&good_lot(), &[Reason::Revoked]);
}

#[test]
fn expired_once_the_validity_window_has_closed() {
    let f = Fixture::sample();
    f.assert_reasons(&lot_at(T0 + VALIDITY_MS + HOUR_MS), &[Reason::Expired]);
}

#[test]
fn not_yet_valid_before_the_test_time_less_the_skew() {
    let f = Fixture::sample();
    f.assert_reasons(&lot_at(T0 - HOUR_MS), &[Reason::NotYetValid]);
}

#[test]
fn positive_result_for_a_report_that_found_residues() {
    let mut report = testkit::sample_report(T0);
    report.items[0].value = "67.3".into();
    report.items[0].value = "62.4".into();
    report.items[0].result = TestResult::Positive as i32;
    report.result = TestResult::Positive as i32;
    let f = Fixture::new(report);
    f.assert_reasons(&good_lot(), &[Reason::PositiveResult]);
    assert_eq!(
        f.ledger.state("shanxi-1", T0).map(|s| s.status),
        Some(Status::PositivePendingDisposal)
    );
}

#[test]
fn required_item_missing_when_the_category_needs_a_test_not_done() {
    let mut report = testkit::sample_report(T0);
    report.category = "leafy_vegetable".into();
    report.items[0] = TestItem {
        code: "nitrite".into(),
        name: "亚硝酸盐".into(),
        method: "快速检测".into(),
        value: String::new(),
        unit: String::new(),
        limit: String::new(),
        result: TestResult::Negative as i32,
    };
    let f = Fixture::new(report);
    f.assert_reasons(&good_lot(), &[Reason::RequiredItemMissing]);
}

#[test]
fn product_mismatch_when_the_goods_are_not_what_was_tested() {
    let f = Fixture::sample();
    f.assert_reasons(
        &testkit::lot("冬枣", "10", "kg", T0 + HOUR_MS),
        &[Reason::ProductMismatch],
    );
}

#[test]
fn category_mismatch_when_the_clerk_states_another_category() {
    let f = Fixture::sample();
    let mut lot = good_lot();
    lot.category = Some("fruit".into());
    f.assert_reasons(&lot, &[Reason::CategoryMismatch]);
    lot.category = Some("vegetable".into());
    f.assert_reasons(&lot, &[]);
}

#[test]
fn insufficient_quantity_when_the_lot_has_less_left_than_asked() {
    let mut f = Fixture::sample();
    f.assert_reasons(
        &testkit::lot("菜豆", "100.001", "kg", T0 + HOUR_MS),
        &[Reason::InsufficientQuantity],
    );
    f.assert_reasons(&testkit::lot("菜豆", "200", "jin", T0 + HOUR_MS), &[]);
    f.assert_reasons(
        &testkit::lot("菜豆", "10", "piece", T0 + HOUR_MS),
        &[Reason::InsufficientQuantity],
    );

    let intake = f
        .network
        .author("jiuzhou")
        .next(testkit::intake("shanxi-1", "95", "kg"), T0);
    testkit::append(&mut f.ledger, intake);
    f.assert_reasons(&good_lot(), &[Reason::InsufficientQuantity]);
    f.assert_reasons(&testkit::lot("菜豆", "5", "kg", T0 + HOUR_MS), &[]);
    assert_eq!(
        f.ledger.verdict("shanxi-1", &good_lot()).remaining,
        Some(5_000_000)
    );
}

#[test]
fn issuer_log_forked_once_fork_evidence_is_recorded() {
    let mut f = Fixture::sample();
    let other = f
        .network
        .author("shanxi")
        .next(testkit::issue(testkit::sample_report(T0 + 60_000)), T0);

    // A token that differs from the entry held at its place is itself a sign of a fork.
    let (_, verdict) = f
        .ledger
        .verdict_for_entry(&other, Knowledge::Ledger, &good_lot());
    assert_eq!(codes(&verdict), [Reason::IssuerLogForked]);

    assert!(f.ledger.record_fork(ForkEvidence {
        first: Some(f.entry.clone()),
        second: Some(other),
    }));
    f.assert_reasons(&good_lot(), &[Reason::IssuerLogForked]);
}

#[test]
fn unknown_category_for_a_category_the_rules_do_not_know() {
    let mut report = testkit::sample_report(T0);
    report.category = "mushroom".into();
    let f = Fixture::new(report);
    f.assert_reasons(&good_lot(), &[Reason::UnknownCategory]);
    assert_eq!(
        f.ledger.verdict("shanxi-1", &good_lot()).valid_until_ms,
        None
    );
}

#[test]
fn every_reason_code_has_a_test_above() {
    // Reason values 1 to 14 are the codes; this list mirrors the tests in this file, so a new
    // code fails here until it has one.
    let tested = [
        Reason::UnknownIssuer,
        Reason::IssuerSuspended,
        Reason::BadSignature,
        Reason::NotSeenHere,
        Reason::Revoked,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::PositiveResult,
        Reason::RequiredItemMissing,
        Reason::ProductMismatch,
        Reason::CategoryMismatch,
        Reason::InsufficientQuantity,
        Reason::IssuerLogForked,
        Reason::UnknownCategory,
    ];
    let all: Vec<Reason> = (1..)
        .map_while(|code| Reason::try_from(code).ok())
        .collect();
    assert_eq!(all, tested);
}

#[test]
fn a_pass_is_valid_until_one_millisecond_before_test_time_plus_validity() {
    let f = Fixture::sample();
    let until = T0 + VALIDITY_MS;
    f.assert_reasons(&lot_at(until - 1), &[]);
    f.assert_reasons(&lot_at(until), &[Reason::Expired]);
    let status = |at| f.ledger.state("shanxi-1", at).map(|s| s.status);
    assert_eq!(status(until - 1), Some(Status::Valid));
    assert_eq!(status(until), Some(Status::Expired));
}

#[test]
fn a_pass_is_valid_from_test_time_less_the_skew_inclusive() {
    let f = Fixture::sample();
    f.assert_reasons(&lot_at(T0 - SKEW_MS), &[]);
    f.assert_reasons(&lot_at(T0 - SKEW_MS - 1), &[Reason::NotYetValid]);
}

#[test]
fn a_window_crossing_midnight_in_china_standard_time_is_counted_in_utc() {
    // Meat is valid 24 h. Tested at 23:00 CST on 4 December (15:00 UTC): still valid just
    // after midnight CST and all through the next day until 23:00 CST.
    let mut report = testkit::sample_report(from_cst(2026, 12, 4, 23, 0, 0));
    report.product = "猪肉".into();
    report.category = "meat".into();
    report.items[0] = TestItem {
        code: "clenbuterol".into(),
        name: "克伦特罗".into(),
        method: "胶体金免疫层析法".into(),
        value: String::new(),
        unit: String::new(),
        limit: String::new(),
        result: TestResult::Negative as i32,
    };
    let f = Fixture::new(report);
    let pork = |at_ms| testkit::lot("猪肉", "10", "kg", at_ms);
    f.assert_reasons(&pork(from_cst(2026, 12, 5, 0, 30, 0)), &[]);
    f.assert_reasons(&pork(from_cst(2026, 12, 5, 22, 59, 59) + 999), &[]);
    let expired = f
        .ledger
        .verdict("shanxi-1", &pork(from_cst(2026, 12, 5, 23, 0, 0)));
    assert_eq!(codes(&expired), [Reason::Expired]);
    assert_eq!(
        expired.valid_until_ms,
        Some(from_cst(2026, 12, 5, 23, 0, 0))
    );
    assert!(
        expired.reasons[0]
            .detail
            .contains("2026-12-05 23:00:00 CST"),
        "{}",
        expired.reasons[0].detail
    );
}

#[test]
fn an_issuer_clock_ahead_by_more_than_the_skew_gives_not_yet_valid() {
    // The issuer's clock runs ahead of the verifier's: its report claims a test time in the
    // verifier's future.
    let ahead_within = Fixture::new(testkit::sample_report(T0 + SKEW_MS));
    ahead_within.assert_reasons(&lot_at(T0), &[]);
    let ahead_beyond = Fixture::new(testkit::sample_report(T0 + SKEW_MS + 1));
    ahead_beyond.assert_reasons(&lot_at(T0), &[Reason::NotYetValid]);
}

#[test]
fn published_rules_replace_the_built_in_windows() {
    let mut f = Fixture::sample();
    let rules = Rules {
        version: 1,
        categories: vec![CategoryRule {
            category: "vegetable".into(),
            name_zh: "其他蔬菜".into(),
            validity_ms: 24 * HOUR_MS,
            required_items: vec!["op-carbamate".into()],
        }],
        clock_skew_ms: 0,
    };
    let publication = f.regulator.next(
        Kind::RulesPublished(RulesPublished { rules: Some(rules) }),
        T0,
    );
    testkit::append(&mut f.ledger, publication);
    let verdict = f.ledger.verdict("shanxi-1", &lot_at(T0 + 24 * HOUR_MS));
    assert_eq!(codes(&verdict), [Reason::Expired]);
    assert_eq!(verdict.rules_version, 1);
    f.assert_reasons(&lot_at(T0 - 1), &[Reason::NotYetValid]);
}

#[test]
fn every_reason_that_applies_is_listed_in_a_fixed_order() {
    let mut report = testkit::sample_report(T0);
    report.items[0].value = "62.4".into();
    report.items[0].result = TestResult::Positive as i32;
    report.result = TestResult::Positive as i32;
    let mut f = Fixture::new(report);
    let revocation = f.shanxi.next(testkit::revoke("shanxi-1", "阳性"), T0);
    testkit::append(&mut f.ledger, revocation);
    let mut lot = testkit::lot("冬枣", "1000", "kg", T0 + VALIDITY_MS);
    lot.category = Some("fruit".into());
    f.assert_reasons(
        &lot,
        &[
            Reason::Revoked,
            Reason::Expired,
            Reason::PositiveResult,
            Reason::ProductMismatch,
            Reason::CategoryMismatch,
            Reason::InsufficientQuantity,
        ],
    );
}
