//! The byte-level rules of docs/FORMAT.md sections 2 to 7: every event survives signing and
//! verification unchanged, no stored bit can change unnoticed, chains must link, and Ed25519
//! is checked strictly.

use std::collections::BTreeSet;

use ed25519_dalek::Signer;

use huren_proto::format::{self, FormatError, VerifiedEntry, GENESIS_PREV_HASH};
use huren_proto::ledger::{Admission, AdmitError};
use huren_proto::pb::{
    event::Kind, CategoryRule, DisposalMethod, DisposalRecorded, IntakeRejected, MarketAdmitted,
    Reason, Rules, RulesPublished, SignedEntry, VerdictReason,
};
use huren_proto::testkit::{self, Author, Network, T0};

/// The name of an event kind. The match is exhaustive, so a new kind does not compile until
/// the round-trip test below covers it.
fn kind_name(kind: &Kind) -> &'static str {
    match kind {
        Kind::ReportIssued(_) => "report_issued",
        Kind::ReportRevoked(_) => "report_revoked",
        Kind::IntakeAccepted(_) => "intake_accepted",
        Kind::IntakeRejected(_) => "intake_rejected",
        Kind::DisposalRecorded(_) => "disposal_recorded",
        Kind::MarketAdmitted(_) => "market_admitted",
        Kind::KeyRotated(_) => "key_rotated",
        Kind::MarketSuspended(_) => "market_suspended",
        Kind::RulesPublished(_) => "rules_published",
    }
}

const KIND_COUNT: usize = 9;

/// One valid event of every kind, each with the log it belongs in.
fn one_of_each_kind() -> Vec<(&'static str, Kind)> {
    let newcomer = testkit::key("zhangzitou");
    vec![
        ("shanxi", testkit::issue(testkit::sample_report(T0))),
        ("shanxi", testkit::revoke("shanxi-1", "实验室记录错误")),
        ("jiuzhou", testkit::intake("shanxi-1", "20", "kg")),
        (
            "jiuzhou",
            Kind::IntakeRejected(IntakeRejected {
                report_id: "shanxi-1".into(),
                quantity: Some(testkit::qty("5", "jin")),
                product: "冬枣".into(),
                rules_version: 0,
                reasons: vec![VerdictReason {
                    code: Reason::ProductMismatch as i32,
                    detail: "goods are 冬枣, the report covers 菜豆".into(),
                }],
                issuer_seq_seen: 1,
                regulator_seq_seen: 0,
            }),
        ),
        (
            "shanxi",
            Kind::DisposalRecorded(DisposalRecorded {
                report_id: "shanxi-1".into(),
                method: DisposalMethod::Destroyed as i32,
                by: "市场检测室".into(),
                disposed_at_ms: T0,
                reported_to_regulator: true,
                note: String::new(),
            }),
        ),
        (
            "regulator",
            Kind::MarketAdmitted(MarketAdmitted {
                market: Some(testkit::market("zhangzitou", &newcomer)),
            }),
        ),
        ("regulator", testkit::rotate("shanxi", &newcomer, 5)),
        ("regulator", testkit::suspend("tunhui", 9)),
        (
            "regulator",
            Kind::RulesPublished(RulesPublished {
                rules: Some(Rules {
                    version: 1,
                    categories: vec![CategoryRule {
                        category: "leafy_vegetable".into(),
                        name_zh: "叶菜类".into(),
                        validity_ms: 48 * testkit::HOUR_MS,
                        required_items: vec!["op-carbamate".into()],
                    }],
                    clock_skew_ms: 300_000,
                }),
            }),
        ),
    ]
}

#[test]
fn every_event_kind_round_trips_through_signing_and_verification() {
    let network = Network::new();
    let mut covered = BTreeSet::new();
    for (log, kind) in one_of_each_kind() {
        let author = network.author(log);
        let entry = author.entry(kind, T0);
        let key = if log == "regulator" {
            &network.regulator
        } else {
            network.key(log)
        };
        let signed = format::sign_entry(key, &entry);
        let verified = VerifiedEntry::verify(&key.verifying_key(), signed.clone())
            .unwrap_or_else(|e| panic!("{log}: {e}"));
        assert_eq!(verified.entry, entry, "{log}: decoded entry differs");
        assert_eq!(verified.signed, signed, "{log}: signed form changed");
        assert_eq!(verified.hash, format::entry_hash(&signed.body));
        // Each is also a valid first entry of its log.
        let ledger = network.ledger();
        assert!(
            matches!(ledger.admit(signed, None), Ok(Admission::Next(_))),
            "{log}: not admitted"
        );
        let kind = entry
            .event
            .as_ref()
            .and_then(|e| e.kind.as_ref())
            .expect("built with a kind");
        covered.insert(kind_name(kind));
    }
    assert_eq!(covered.len(), KIND_COUNT, "some kind is not covered");
}

#[test]
fn a_flipped_bit_anywhere_in_a_stored_entry_is_detected() {
    let network = Network::new();
    let key = network.key("shanxi").verifying_key();
    let mut author = network.author("shanxi");
    let first = author.next(testkit::revoke("shanxi-9", "错"), T0);
    let signed = author.next(testkit::revoke("shanxi-1", "错"), T0 + 1);
    let original_hash = format::entry_hash(&signed.body);
    let mut ledger = network.ledger();
    testkit::append(&mut ledger, first);
    assert!(signed.body.len() < 80, "keep the entry small");

    let flip = |bytes: &[u8], bit: usize| {
        let mut out = bytes.to_vec();
        out[bit / 8] ^= 1 << (bit % 8);
        out
    };
    for bit in 0..signed.body.len() * 8 {
        let tampered = SignedEntry {
            body: flip(&signed.body, bit),
            signature: signed.signature.clone(),
        };
        assert_ne!(format::entry_hash(&tampered.body), original_hash);
        assert!(
            VerifiedEntry::verify(&key, tampered.clone()).is_err(),
            "body bit {bit} flipped unnoticed"
        );
        // Admission runs the same check; one bit of every byte, in turn, shows it does.
        if bit % 8 == (bit / 8) % 8 {
            assert!(
                ledger.admit(tampered, None).is_err(),
                "body bit {bit}: admitted"
            );
        }
    }
    for bit in 0..signed.signature.len() * 8 {
        let tampered = SignedEntry {
            body: signed.body.clone(),
            signature: flip(&signed.signature, bit),
        };
        assert!(
            VerifiedEntry::verify(&key, tampered.clone()).is_err(),
            "signature bit {bit} flipped unnoticed"
        );
        if bit % 8 == (bit / 8) % 8 {
            assert!(
                ledger.admit(tampered, None).is_err(),
                "signature bit {bit}: admitted"
            );
        }
    }
    // The untouched entry still goes in: the failures above were the flips.
    assert!(matches!(ledger.admit(signed, None), Ok(Admission::Next(_))));
}

#[test]
fn a_wrong_prev_hash_breaks_the_link() {
    let network = Network::new();
    let mut author = network.author("shanxi");
    let first = author.next(testkit::issue(testkit::sample_report(T0)), T0);
    let head_hash = format::entry_hash(&first.body);
    let mut entry = author.entry(testkit::revoke("shanxi-1", "错"), T0 + 1);
    entry.prev_hash[0] ^= 1;

    assert!(matches!(
        format::check_link(1, &head_hash, &entry),
        Err(FormatError::BrokenChain(_))
    ));
    let mut ledger = network.ledger();
    testkit::append(&mut ledger, first);
    let signed = author.sign(&entry);
    assert!(matches!(
        ledger.admit(signed, None),
        Err(AdmitError::Format(FormatError::BrokenChain(_)))
    ));
}

#[test]
fn the_first_entry_must_carry_32_zero_bytes_as_prev_hash() {
    let network = Network::new();
    let author = network.author("shanxi");
    let mut entry = author.entry(testkit::issue(testkit::sample_report(T0)), T0);
    assert_eq!(entry.prev_hash, GENESIS_PREV_HASH.to_vec());
    entry.prev_hash = vec![1; 32];
    assert!(matches!(
        format::check_link(0, &GENESIS_PREV_HASH, &entry),
        Err(FormatError::BrokenChain(_))
    ));
    let signed = format::sign_entry(network.key("shanxi"), &entry);
    assert!(matches!(
        network.ledger().admit(signed, None),
        Err(AdmitError::Format(FormatError::BrokenChain(_)))
    ));
}

#[test]
fn a_skipped_seq_breaks_the_link_and_is_held_back_as_a_gap() {
    let network = Network::new();
    let mut author = network.author("shanxi");
    let first = author.next(testkit::issue(testkit::sample_report(T0)), T0);
    let head_hash = format::entry_hash(&first.body);
    let mut skipping = author.entry(testkit::revoke("shanxi-1", "错"), T0 + 1);
    skipping.seq = 3;

    assert!(matches!(
        format::check_link(1, &head_hash, &skipping),
        Err(FormatError::BrokenChain(_))
    ));
    let mut ledger = network.ledger();
    testkit::append(&mut ledger, first);
    let signed = author.sign(&skipping);
    assert_eq!(
        ledger.admit(signed, None),
        Ok(Admission::Gap { head: 1, seq: 3 })
    );
    assert_eq!(ledger.head("shanxi").0, 1, "nothing was stored");
}

#[test]
fn seq_zero_and_a_short_prev_hash_do_not_decode() {
    let network = Network::new();
    let author = network.author("shanxi");
    let mut zero = author.entry(testkit::issue(testkit::sample_report(T0)), T0);
    zero.seq = 0;
    let mut short = author.entry(testkit::issue(testkit::sample_report(T0)), T0);
    short.prev_hash.truncate(31);
    for entry in [zero, short] {
        let signed = format::sign_entry(network.key("shanxi"), &entry);
        assert!(matches!(
            format::decode_entry(&signed.body),
            Err(FormatError::Undecodable(_))
        ));
        assert!(network.ledger().admit(signed, None).is_err());
    }
}

#[test]
fn an_unknown_format_version_is_refused_even_when_signed() {
    let network = Network::new();
    let author = network.author("shanxi");
    let mut entry = author.entry(testkit::issue(testkit::sample_report(T0)), T0);
    entry.format = 2;
    let signed = format::sign_entry(network.key("shanxi"), &entry);
    let key = network.key("shanxi").verifying_key();
    assert_eq!(
        VerifiedEntry::verify(&key, signed.clone()),
        Err(FormatError::UnknownVersion(2))
    );
    assert_eq!(
        network.ledger().admit(signed, None),
        Err(AdmitError::Format(FormatError::UnknownVersion(2)))
    );
}

#[test]
fn a_body_over_the_size_limit_is_refused() {
    let network = Network::new();
    let signed = SignedEntry {
        body: vec![0; format::MAX_BODY_LEN + 1],
        signature: vec![0; 64],
    };
    let key = network.key("shanxi").verifying_key();
    assert!(matches!(
        format::verify_signature(&key, &signed),
        Err(FormatError::TooLarge(_))
    ));
    assert!(matches!(
        network.ledger().admit(signed, None),
        Err(AdmitError::Format(FormatError::TooLarge(_)))
    ));
}

/// The eight points of small order, canonically encoded (docs/FORMAT.md section 4).
const SMALL_ORDER_POINTS: [&str; 8] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
];

#[test]
fn small_order_public_keys_are_refused() {
    for point in SMALL_ORDER_POINTS {
        let bytes = hex::decode(point).expect("hex");
        assert!(
            matches!(
                format::parse_public_key(&bytes),
                Err(FormatError::BadKey(_))
            ),
            "{point} accepted"
        );
    }
}

#[test]
fn non_canonical_public_key_encodings_are_refused() {
    // y + p for small y: the same point as y, encoded with y ≥ p. Some of these are points of
    // large order, which ed25519-dalek decodes without complaint; the format refuses them.
    let mut large_order = 0;
    for y in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut bytes = [0xffu8; 32];
            bytes[0] = 0xed + y;
            bytes[31] = 0x7f | sign;
            let Ok(decoded) = ed25519_dalek::VerifyingKey::from_bytes(&bytes) else {
                continue;
            };
            if !decoded.is_weak() {
                large_order += 1;
            }
            assert!(
                matches!(
                    format::parse_public_key(&bytes),
                    Err(FormatError::BadKey(_))
                ),
                "{} accepted",
                hex::encode(bytes)
            );
        }
    }
    assert!(large_order > 0, "the case the canonical check exists for");
    // x = 0 with the sign bit set: the identity, written non-canonically.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    identity[31] = 0x80;
    assert!(format::parse_public_key(&identity).is_err());
}

#[test]
fn public_keys_of_the_wrong_length_are_refused() {
    let key = testkit::key("shanxi").verifying_key().to_bytes();
    assert!(format::parse_public_key(&key).is_ok());
    assert!(format::parse_public_key(&key[..31]).is_err());
    assert!(format::parse_public_key(&[key.as_slice(), &[0]].concat()).is_err());
}

/// Adds ℓ to the little-endian scalar `s` of a signature.
fn add_group_order(signature: &mut [u8]) {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];
    let mut carry = 0u16;
    for (i, l) in L.iter().enumerate() {
        let sum = u16::from(signature[32 + i]) + u16::from(*l) + carry;
        signature[32 + i] = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "s + ℓ fits in 256 bits since s < ℓ < 2^253");
}

#[test]
fn a_signature_with_non_canonical_s_is_refused() {
    let network = Network::new();
    let key = network.key("shanxi");
    let mut author = Author::new("shanxi", key.clone());
    let signed = author.next(testkit::issue(testkit::sample_report(T0)), T0);
    let mut malleated = signed.clone();
    add_group_order(&mut malleated.signature);

    assert!(matches!(
        format::parse_signature(&malleated.signature),
        Err(FormatError::BadSignature(_))
    ));
    assert!(matches!(
        format::verify_signature(&key.verifying_key(), &malleated),
        Err(FormatError::BadSignature(_))
    ));
    assert!(matches!(
        network.ledger().admit(malleated, None),
        Err(AdmitError::Format(FormatError::BadSignature(_)))
    ));
    assert!(format::verify_signature(&key.verifying_key(), &signed).is_ok());
}

#[test]
fn a_valid_signature_on_a_different_body_fails() {
    let network = Network::new();
    let key = network.key("shanxi");
    let mut author = Author::new("shanxi", key.clone());
    let one = author.next(testkit::issue(testkit::sample_report(T0)), T0);
    let other =
        Author::new("shanxi", key.clone()).next(testkit::issue(testkit::sample_report(T0 + 1)), T0);
    let swapped = SignedEntry {
        body: other.body,
        signature: one.signature,
    };
    assert!(matches!(
        format::verify_signature(&key.verifying_key(), &swapped),
        Err(FormatError::BadSignature(_))
    ));
    assert!(matches!(
        network.ledger().admit(swapped, None),
        Err(AdmitError::Format(FormatError::BadSignature(_)))
    ));
}

#[test]
fn an_entry_signature_does_not_verify_as_a_trust_list_signature() {
    // Domain separation: the same key signing the same bytes for two uses gives two different
    // signatures, and neither passes for the other.
    let key = testkit::regulator_key();
    let body = vec![1, 2, 3];
    let list = format::sign_trust_list(&key, body.clone());
    let as_entry = SignedEntry {
        body,
        signature: list.signature.clone(),
    };
    assert!(format::verify_signature(&key.verifying_key(), &as_entry).is_err());
    assert!(format::verify_trust_list_signature(&key.verifying_key(), &list).is_ok());
    // And a bare Ed25519 signature over the body, without the tag, is not an entry signature.
    let bare = SignedEntry {
        body: as_entry.body.clone(),
        signature: key.sign(&as_entry.body).to_bytes().to_vec(),
    };
    assert!(format::verify_signature(&key.verifying_key(), &bare).is_err());
}

#[test]
fn signatures_of_the_wrong_length_are_refused() {
    assert!(format::parse_signature(&[0; 63]).is_err());
    assert!(format::parse_signature(&[0; 65]).is_err());
    assert!(
        format::parse_signature(&[0; 64]).is_ok(),
        "s = 0 is canonical"
    );
}
