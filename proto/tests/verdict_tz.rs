//! The verdict and the times it shows never depend on the host's time zone (docs/FORMAT.md
//! section 15). This is its own test binary because it changes the process environment.

use huren_proto::ledger::{Lot, Verdict};
use huren_proto::testkit::{self, Network, HOUR_MS};
use huren_proto::time::{cst, from_cst};

/// Verdicts on a report tested at 23:00 CST, just before, inside and at the end of its window.
fn verdicts() -> (Vec<Verdict>, Vec<String>) {
    let network = Network::new();
    let mut ledger = network.ledger();
    let tested = from_cst(2026, 12, 4, 23, 0, 0);
    let report = network
        .author("shanxi")
        .next(testkit::issue(testkit::sample_report(tested)), tested);
    testkit::append(&mut ledger, report);
    let instants = [
        tested - 6 * 60_000,
        from_cst(2026, 12, 5, 0, 30, 0),
        tested + 72 * HOUR_MS - 1,
        tested + 72 * HOUR_MS,
    ];
    let lot = |at_ms| Lot {
        at_ms,
        ..testkit::lot("菜豆", "10", "kg", 0)
    };
    (
        instants
            .iter()
            .map(|at| ledger.verdict("shanxi-1", &lot(*at)))
            .collect(),
        instants.iter().map(|at| cst(*at)).collect(),
    )
}

#[test]
fn a_verdict_is_unchanged_when_the_process_time_zone_changes() {
    std::env::set_var("TZ", "Asia/Shanghai");
    let (in_shanghai, shown_in_shanghai) = verdicts();
    std::env::set_var("TZ", "America/New_York");
    let (in_new_york, shown_in_new_york) = verdicts();
    std::env::remove_var("TZ");

    assert_eq!(in_shanghai, in_new_york);
    assert_eq!(shown_in_shanghai, shown_in_new_york);
    // And what they agree on is right: valid inside the window, expired at its end, shown in
    // CST whatever the host thinks.
    let valid: Vec<bool> = in_new_york.iter().map(|v| v.valid).collect();
    assert_eq!(valid, [false, true, true, false]);
    assert_eq!(shown_in_new_york[1], "2026-12-05 00:30:00 CST");
    assert!(in_new_york[3].reasons[0]
        .detail
        .contains("2026-12-07 23:00:00 CST"));
}
