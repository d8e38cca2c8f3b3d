//! Membership (docs/FORMAT.md sections 11 and 12): only keys of the trust list, as the
//! regulator's log changes it, may sign entries, each at the sequence numbers it covers.

use huren_proto::format::FormatError;
use huren_proto::ledger::{Admission, AdmitError};
use huren_proto::pb::{event::Kind, MarketAdmitted};
use huren_proto::testkit::{self, Author, Network, T0};
use huren_proto::trust::{self, Membership, MembershipError};

fn report() -> Kind {
    testkit::issue(testkit::sample_report(T0))
}

#[test]
fn entries_of_a_log_outside_the_trust_list_are_refused() {
    let network = Network::new();
    let outsider = testkit::key("zhangzitou");
    let signed = Author::new("zhangzitou", outsider).next(report(), T0);
    assert_eq!(
        network.ledger().admit(signed, None),
        Err(AdmitError::Membership(MembershipError::UnknownAuthor(
            "zhangzitou".into()
        )))
    );
}

#[test]
fn entries_signed_by_a_key_that_is_not_the_members_are_refused() {
    let network = Network::new();
    let impostor = Author::new("shanxi", testkit::key("impostor")).next(report(), T0);
    assert!(matches!(
        network.ledger().admit(impostor, None),
        Err(AdmitError::Format(FormatError::BadSignature(_)))
    ));
    // Another member's key is no better, and neither is a market's key on the regulator's log.
    let neighbour = Author::new("shanxi", network.key("jiuzhou").clone()).next(report(), T0);
    assert!(network.ledger().admit(neighbour, None).is_err());
    let forged = Author::new("regulator", network.key("shanxi").clone())
        .next(testkit::suspend("jiuzhou", 1), T0);
    assert!(matches!(
        network.ledger().admit(forged, None),
        Err(AdmitError::Format(FormatError::BadSignature(_)))
    ));
}

#[test]
fn a_market_admitted_by_the_regulator_may_sign_from_then_on() {
    let network = Network::new();
    let mut ledger = network.ledger();
    let newcomer = testkit::key("zhangzitou");
    let first = Author::new("zhangzitou", newcomer.clone()).next(report(), T0);
    assert!(ledger.admit(first.clone(), None).is_err());

    let mut regulator = network.author("regulator");
    testkit::append(
        &mut ledger,
        regulator.next(
            Kind::MarketAdmitted(MarketAdmitted {
                market: Some(testkit::market("zhangzitou", &newcomer)),
            }),
            T0,
        ),
    );
    assert!(matches!(ledger.admit(first, None), Ok(Admission::Next(_))));
}

#[test]
fn a_suspended_markets_entries_from_from_seq_on_are_refused() {
    let network = Network::new();
    let mut ledger = network.ledger();
    let mut shanxi = network.author("shanxi");
    testkit::append(&mut ledger, shanxi.next(report(), T0));
    let mut regulator = network.author("regulator");
    testkit::append(
        &mut ledger,
        regulator.next(testkit::suspend("shanxi", 3), T0),
    );

    // Seq 2 is below from_seq, even though it arrives after the suspension.
    testkit::append(&mut ledger, shanxi.next(report(), T0));
    assert_eq!(
        ledger.admit(shanxi.next(report(), T0), None),
        Err(AdmitError::Membership(MembershipError::Suspended {
            market: "shanxi".into(),
            from_seq: 3,
        }))
    );
    assert_eq!(
        ledger.membership().suspension("shanxi"),
        Some((3, "test suspension"))
    );
}

#[test]
fn the_earliest_of_two_suspensions_holds() {
    let network = Network::new();
    let mut membership = network.membership();
    let mut regulator = network.author("regulator");
    for from_seq in [5, 2, 9] {
        let entry = regulator.entry(testkit::suspend("shanxi", from_seq), T0);
        regulator.sign(&entry);
        membership.apply(&entry).expect("suspension applies");
    }
    assert!(membership.key_for("shanxi", 1).is_ok());
    assert!(matches!(
        membership.key_for("shanxi", 2),
        Err(MembershipError::Suspended { from_seq: 2, .. })
    ));
}

#[test]
fn after_a_key_rotation_the_old_key_is_refused_from_effective_seq_and_the_new_one_accepted() {
    let network = Network::new();
    let mut ledger = network.ledger();
    let old_key = network.key("shanxi").clone();
    let new_key = testkit::key("shanxi-2027");
    let mut regulator = network.author("regulator");
    testkit::append(
        &mut ledger,
        regulator.next(testkit::rotate("shanxi", &new_key, 3), T0),
    );

    let mut shanxi = network.author("shanxi");
    testkit::append(&mut ledger, shanxi.next(report(), T0));
    // Below effective_seq the new key is not yet in force.
    let mut early = shanxi.clone();
    early.set_key(new_key.clone());
    assert!(matches!(
        ledger.admit(early.next(report(), T0), None),
        Err(AdmitError::Format(FormatError::BadSignature(_)))
    ));
    testkit::append(&mut ledger, shanxi.next(report(), T0));

    // From effective_seq on, the old key is refused and the new one accepted.
    let stale = shanxi.clone().next(report(), T0);
    assert!(matches!(
        ledger.admit(stale, None),
        Err(AdmitError::Format(FormatError::BadSignature(_)))
    ));
    shanxi.set_key(new_key.clone());
    testkit::append(&mut ledger, shanxi.next(report(), T0));
    assert_eq!(ledger.head("shanxi").0, 3);
    assert_eq!(
        ledger.membership().key_for("shanxi", 2),
        Ok(old_key.verifying_key())
    );
    assert_eq!(
        ledger.membership().key_for("shanxi", 3),
        Ok(new_key.verifying_key())
    );
}

#[test]
fn a_rotation_not_after_the_previous_one_changes_nothing() {
    let network = Network::new();
    let mut membership = network.membership();
    let regulator = network.author("regulator");
    let first = testkit::key("first");
    let second = testkit::key("second");
    membership
        .apply(&regulator.entry(testkit::rotate("shanxi", &first, 5), T0))
        .expect("first rotation applies");
    assert!(membership
        .apply(&regulator.entry(testkit::rotate("shanxi", &second, 5), T0))
        .is_err());
    assert!(membership
        .apply(&regulator.entry(testkit::rotate("shanxi", &second, 1), T0))
        .is_err());
    assert_eq!(
        membership.key_for("shanxi", 7),
        Ok(first.verifying_key()),
        "the refused rotations had no effect"
    );
}

#[test]
fn a_trust_list_signed_by_another_key_is_refused() {
    let network = Network::new();
    let other = testkit::key("not-the-regulator");
    assert!(matches!(
        Membership::from_trust_list(&network.trust_list, &other.verifying_key()),
        Err(MembershipError::BadTrustList(_))
    ));
    // Signed by that other key, it names it as regulator: still not the pinned one.
    let list = trust::sign_trust_list(&other, "testnet", vec![], T0);
    assert!(matches!(
        Membership::from_trust_list(&list, &network.regulator.verifying_key()),
        Err(MembershipError::BadTrustList(_))
    ));
}

#[test]
fn a_tampered_trust_list_is_refused() {
    let network = Network::new();
    let mut list = network.trust_list.clone();
    let last = list.body.len() - 1;
    list.body[last] ^= 1;
    assert!(matches!(
        Membership::from_trust_list(&list, &network.regulator.verifying_key()),
        Err(MembershipError::BadTrustList(_))
    ));
}

#[test]
fn a_trust_list_naming_a_market_twice_or_with_a_weak_key_is_refused() {
    let regulator = testkit::regulator_key();
    let key = testkit::key("shanxi");
    let twice = trust::sign_trust_list(
        &regulator,
        "testnet",
        vec![
            testkit::market("shanxi", &key),
            testkit::market("shanxi", &key),
        ],
        T0,
    );
    assert!(Membership::from_trust_list(&twice, &regulator.verifying_key()).is_err());

    let mut weak = testkit::market("shanxi", &key);
    weak.public_key = {
        let mut identity = vec![0u8; 32];
        identity[0] = 1;
        identity
    };
    let list = trust::sign_trust_list(&regulator, "testnet", vec![weak], T0);
    assert!(Membership::from_trust_list(&list, &regulator.verifying_key()).is_err());
}

#[test]
fn entries_stored_under_the_old_key_before_a_rotation_arrived_still_replay() {
    // A node accepted shanxi's seq 1 and 2 under the old key; the rotation (effective from
    // seq 2) reached it only afterwards. Replaying its store must not fail on them.
    let net = Network::new();
    let mut live = net.ledger();
    let mut shanxi = net.author("shanxi");
    let one = shanxi.next(report(), T0);
    let two = shanxi.next(report(), T0);
    testkit::append(&mut live, one.clone());
    testkit::append(&mut live, two.clone());
    let mut regulator = net.author("regulator");
    let rotation = regulator.next(testkit::rotate("shanxi", &testkit::key("shanxi-2"), 2), T0);
    testkit::append(&mut live, rotation.clone());

    let mut replay = net.ledger();
    let r = replay.restore_preverify(rotation).unwrap();
    replay.restore(r).unwrap();
    for entry in [one, two] {
        let checked = replay
            .restore_preverify(entry)
            .expect("accepted before the rotation");
        replay.restore(checked).unwrap();
    }
    assert_eq!(replay.head("shanxi").0, 2);
    // New entries under the old key are still refused.
    let three = shanxi.next(report(), T0);
    assert!(replay.admit(three, None).is_err());
}
