//! The ledger projection: duplicates and forks at admission (docs/FORMAT.md sections 6 and
//! 13), and the state of a report's lot as the logs of every market draw on it.

use huren_proto::format;
use huren_proto::ledger::{Admission, AdmitError, Ledger, Status};
use huren_proto::pb::{ForkEvidence, SignedEntry};
use huren_proto::testkit::{self, Network, T0};

const KG: u64 = 1_000_000;

#[test]
fn the_same_entry_twice_is_a_duplicate() {
    let network = Network::new();
    let mut ledger = network.ledger();
    let signed = network
        .author("shanxi")
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    testkit::append(&mut ledger, signed.clone());
    assert_eq!(ledger.admit(signed, None), Ok(Admission::Duplicate));
    assert_eq!(ledger.head("shanxi").0, 1);
}

/// Two validly signed, different entries at shanxi's seq 1.
fn two_entries_at_seq_1(network: &Network) -> (SignedEntry, SignedEntry) {
    let one = network
        .author("shanxi")
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    let other = network
        .author("shanxi")
        .next(testkit::issue(testkit::sample_report(T0 + 60_000)), T0);
    (one, other)
}

#[test]
fn a_different_validly_signed_entry_at_a_held_seq_is_a_conflict() {
    let network = Network::new();
    let mut ledger = network.ledger();
    let (held, incoming) = two_entries_at_seq_1(&network);
    testkit::append(&mut ledger, held.clone());
    match ledger.admit(incoming.clone(), None) {
        Ok(Admission::Conflict {
            held: held_hash,
            incoming: verified,
        }) => {
            assert_eq!(held_hash, format::entry_hash(&held.body));
            assert_eq!(verified.signed, incoming);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        ledger.hash_at("shanxi", 1),
        Some(format::entry_hash(&held.body)),
        "the held entry stays"
    );
}

#[test]
fn recording_a_fork_freezes_the_log() {
    let network = Network::new();
    let mut ledger = network.ledger();
    let (held, incoming) = two_entries_at_seq_1(&network);
    testkit::append(&mut ledger, held.clone());
    let evidence = ForkEvidence {
        first: Some(held.clone()),
        second: Some(incoming.clone()),
    };
    assert_eq!(ledger.check_fork(&evidence), Ok(("shanxi".into(), 1)));
    assert!(ledger.record_fork(evidence));
    assert_eq!(ledger.frozen_at("shanxi"), Some(1));
    assert_eq!(ledger.forks().len(), 1);

    // The next entry, validly signed and linked, is refused.
    let mut shanxi = network.author("shanxi");
    assert_eq!(
        shanxi.next(testkit::issue(testkit::sample_report(T0)), T0),
        held,
        "Ed25519 signing is deterministic"
    );
    let next = shanxi.next(testkit::revoke("shanxi-1", "错"), T0);
    assert_eq!(
        ledger.admit(next, None),
        Err(AdmitError::Frozen {
            log: "shanxi".into(),
            seq: 1
        })
    );
    assert_eq!(
        ledger.state("shanxi-1", T0).map(|s| s.status),
        Some(Status::Forked)
    );

    // The same evidence, either way round, is not recorded twice.
    assert!(!ledger.record_fork(ForkEvidence {
        first: Some(incoming),
        second: Some(held),
    }));
    assert_eq!(ledger.forks().len(), 1);
    // Other logs are not affected.
    assert_eq!(ledger.frozen_at("jiuzhou"), None);
}

#[test]
fn fork_evidence_that_does_not_hold_is_not_recorded() {
    let network = Network::new();
    let mut ledger = network.ledger();
    let (one, other) = two_entries_at_seq_1(&network);
    let at_seq_2 = {
        let mut author = network.author("shanxi");
        author.sign(&author.entry(testkit::revoke("shanxi-1", "错"), T0));
        author.next(testkit::revoke("shanxi-1", "错"), T0)
    };
    let mut forged = other.clone();
    forged.signature[0] ^= 1;
    let impostor = testkit::Author::new("shanxi", testkit::key("impostor"))
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    for (what, first, second) in [
        ("the same entry twice", one.clone(), one.clone()),
        ("different seqs", one.clone(), at_seq_2),
        ("a bad signature", one.clone(), forged),
        ("a key that is not the member's", one.clone(), impostor),
    ] {
        let evidence = ForkEvidence {
            first: Some(first),
            second: Some(second),
        };
        assert!(ledger.check_fork(&evidence).is_err(), "{what} accepted");
        assert!(!ledger.record_fork(evidence), "{what} recorded");
    }
    assert!(!ledger.record_fork(ForkEvidence {
        first: Some(one),
        second: None,
    }));
    assert_eq!(ledger.frozen_at("shanxi"), None);
    assert!(ledger.forks().is_empty());
}

/// A ledger holding shanxi-1 (100 kg of 菜豆, tested at T0).
fn ledger_with_report(network: &Network) -> Ledger {
    let mut ledger = network.ledger();
    let report = network
        .author("shanxi")
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    testkit::append(&mut ledger, report);
    ledger
}

#[test]
fn accepted_intakes_beyond_the_lot_show_as_overdrawn() {
    let network = Network::new();
    let mut ledger = ledger_with_report(&network);
    // Two markets each accepted on a view in which the lot still had enough.
    let jiuzhou = network
        .author("jiuzhou")
        .next(testkit::intake("shanxi-1", "60", "kg"), T0 + 1);
    let tunhui = network
        .author("tunhui")
        .next(testkit::intake("shanxi-1", "100", "jin"), T0 + 2);
    testkit::append(&mut ledger, jiuzhou);
    assert_eq!(
        ledger.state("shanxi-1", T0 + 3).map(|s| s.status),
        Some(Status::Valid)
    );
    testkit::append(&mut ledger, tunhui);

    let state = ledger.state("shanxi-1", T0 + 3).expect("report held");
    assert_eq!(state.status, Status::Overdrawn);
    assert!(state.overdrawn);
    assert_eq!(state.drawn, 110 * KG);
    assert_eq!(state.remaining, 0);
}

#[test]
fn intakes_drawing_the_whole_lot_exhaust_it_and_rejections_draw_nothing() {
    let network = Network::new();
    let mut ledger = ledger_with_report(&network);
    let mut jiuzhou = network.author("jiuzhou");
    testkit::append(
        &mut ledger,
        jiuzhou.next(testkit::intake("shanxi-1", "99.5", "kg"), T0),
    );
    let mut rejected = jiuzhou.entry(testkit::intake("shanxi-1", "50", "kg"), T0);
    rejected.event = Some(huren_proto::pb::Event {
        kind: Some(huren_proto::pb::event::Kind::IntakeRejected(
            huren_proto::pb::IntakeRejected {
                report_id: "shanxi-1".into(),
                quantity: Some(testkit::qty("50", "kg")),
                product: "菜豆".into(),
                rules_version: 0,
                reasons: vec![huren_proto::pb::VerdictReason {
                    code: huren_proto::pb::Reason::InsufficientQuantity as i32,
                    detail: "50 kg asked, 0.5 left".into(),
                }],
                issuer_seq_seen: 1,
                regulator_seq_seen: 0,
            },
        )),
    });
    testkit::append(&mut ledger, jiuzhou.sign(&rejected));
    let state = ledger.state("shanxi-1", T0).expect("report held");
    assert_eq!(state.drawn, 99_500_000);
    assert_eq!(state.status, Status::Valid);

    testkit::append(
        &mut ledger,
        jiuzhou.next(testkit::intake("shanxi-1", "1", "jin"), T0),
    );
    let state = ledger.state("shanxi-1", T0).expect("report held");
    assert_eq!(state.status, Status::Exhausted);
    assert_eq!(state.remaining, 0);
    assert!(!state.overdrawn);
}

#[test]
fn intakes_arriving_before_their_report_are_counted_once_it_arrives() {
    let network = Network::new();
    let report = network
        .author("shanxi")
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    let intake = network
        .author("jiuzhou")
        .next(testkit::intake("shanxi-1", "30", "kg"), T0 + 1);

    let mut intake_first = network.ledger();
    testkit::append(&mut intake_first, intake.clone());
    assert_eq!(intake_first.state("shanxi-1", T0), None, "no report yet");
    testkit::append(&mut intake_first, report.clone());

    let mut report_first = network.ledger();
    testkit::append(&mut report_first, report);
    testkit::append(&mut report_first, intake);

    let state = intake_first.state("shanxi-1", T0 + 2).expect("report held");
    assert_eq!(state.drawn, 30 * KG);
    assert_eq!(state.remaining, 70 * KG);
    assert_eq!(Some(state), report_first.state("shanxi-1", T0 + 2));
    let lot = testkit::lot("菜豆", "10", "kg", T0 + 2);
    assert_eq!(
        intake_first.verdict("shanxi-1", &lot),
        report_first.verdict("shanxi-1", &lot)
    );
}

#[test]
fn a_market_may_not_revoke_another_markets_report() {
    let network = Network::new();
    let ledger = ledger_with_report(&network);
    let signed = network
        .author("jiuzhou")
        .next(testkit::revoke("shanxi-1", "不是我的"), T0);
    assert!(matches!(
        ledger.admit(signed, None),
        Err(AdmitError::Misplaced(_))
    ));
}

#[test]
fn reports_belong_in_market_logs_and_membership_events_in_the_regulators() {
    let network = Network::new();
    let ledger = network.ledger();
    let report_by_regulator = network
        .author("regulator")
        .next(testkit::issue(testkit::sample_report(T0)), T0);
    assert!(matches!(
        ledger.admit(report_by_regulator, None),
        Err(AdmitError::Misplaced(_))
    ));
    let suspension_by_market = network
        .author("shanxi")
        .next(testkit::suspend("jiuzhou", 1), T0);
    assert!(matches!(
        ledger.admit(suspension_by_market, None),
        Err(AdmitError::Misplaced(_))
    ));
}
