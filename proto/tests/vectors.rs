//! The test vectors of docs/FORMAT.md, checked against the code. The values are read from the
//! document itself (the block between the `huren-test-vectors` markers, and the annotated
//! dumps), so the specification and the implementation cannot drift apart unnoticed.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use huren_proto::format::{self, VerifiedEntry};
use huren_proto::ledger::Admission;
use huren_proto::pb::{
    event::Kind, Entry, Event, Quantity, ReportIssued, ReportRevoked, TestItem, TestResult,
};
use huren_proto::testkit;
use huren_proto::time::from_cst;
use huren_proto::{token, trust};

const FORMAT_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md");

/// Every name the vector block must hold; a name outside this list is an error too, so the
/// document cannot carry a value nothing checks.
const NAMES: [&str; 15] = [
    "secret-key",
    "public-key",
    "tag.entry-sig",
    "tag.entry-hash",
    "tag.trust-list",
    "entry-1.body",
    "entry-1.signature",
    "entry-1.hash",
    "entry-1.token",
    "entry-2.body",
    "entry-2.signature",
    "entry-2.hash",
    "merkle.leaf-1",
    "merkle.leaf-2",
    "merkle.root-2",
];

fn document() -> String {
    std::fs::read_to_string(FORMAT_MD).expect("docs/FORMAT.md is readable")
}

/// The lines strictly between `<!-- {marker}:begin -->` and `<!-- {marker}:end -->`, without
/// the code fence.
fn marked_block<'a>(doc: &'a str, marker: &str) -> Vec<&'a str> {
    let begin = format!("<!-- {marker}:begin -->");
    let end = format!("<!-- {marker}:end -->");
    let start = doc
        .find(&begin)
        .unwrap_or_else(|| panic!("FORMAT.md has no {begin}"))
        + begin.len();
    let stop = doc[start..]
        .find(&end)
        .unwrap_or_else(|| panic!("FORMAT.md has no {end}"))
        + start;
    doc[start..stop]
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("```"))
        .collect()
}

/// Name → value; a line starting with white space continues the previous name's value.
fn vectors() -> BTreeMap<String, String> {
    let doc = document();
    let mut values: BTreeMap<String, String> = BTreeMap::new();
    let mut last: Option<String> = None;
    for line in marked_block(&doc, "huren-test-vectors") {
        if line.starts_with(char::is_whitespace) {
            let name = last
                .as_ref()
                .expect("a continuation line follows a named line");
            values
                .get_mut(name)
                .expect("the named line was stored")
                .push_str(line.trim());
        } else {
            let (name, value) = line
                .split_once(char::is_whitespace)
                .unwrap_or_else(|| panic!("vector line {line:?} has no value"));
            assert!(
                NAMES.contains(&name),
                "unknown vector {name:?} in FORMAT.md"
            );
            let previous = values.insert(name.to_string(), value.trim().to_string());
            assert!(previous.is_none(), "vector {name} appears twice");
            last = Some(name.to_string());
        }
    }
    for name in NAMES {
        assert!(values.contains_key(name), "FORMAT.md lacks vector {name}");
    }
    values
}

/// The bytes of an annotated dump: the hex before each line's `|`.
fn annotated(marker: &str) -> Vec<u8> {
    let doc = document();
    let hex: String = marked_block(&doc, marker)
        .iter()
        .map(|line| line.split('|').next().expect("split yields one part"))
        .flat_map(|part| part.split_whitespace())
        .collect();
    hex::decode(&hex).unwrap_or_else(|e| panic!("{marker} is not hex: {e}"))
}

fn secret_key() -> SigningKey {
    let secret: [u8; 32] = std::array::from_fn(|i| i as u8 + 1);
    SigningKey::from_bytes(&secret)
}

/// Entry 1 of the vectors, built field by field as FORMAT.md describes it.
fn entry_1() -> Entry {
    Entry {
        format: 1,
        log: "shanxi".into(),
        seq: 1,
        prev_hash: vec![0; 32],
        time_ms: from_cst(2026, 12, 4, 9, 41, 7),
        request_id: "vec-0001".into(),
        event: Some(Event {
            kind: Some(Kind::ReportIssued(ReportIssued {
                stall_code: "A-017".into(),
                product: "菜豆".into(),
                category: "vegetable".into(),
                origin: "山西清徐".into(),
                lot_id: "L20261204-001".into(),
                quantity: Some(Quantity {
                    amount: "120.5".into(),
                    unit: "kg".into(),
                }),
                bag_code: "BAG-000123".into(),
                sampled_at_ms: from_cst(2026, 12, 4, 9, 20, 0),
                tested_at_ms: from_cst(2026, 12, 4, 9, 31, 0),
                tester: "检测员07".into(),
                items: vec![TestItem {
                    code: "op-carbamate".into(),
                    name: "有机磷和氨基甲酸酯类农药残留".into(),
                    method: "GB/T 5009.199-2003".into(),
                    value: "12.5".into(),
                    unit: "%".into(),
                    limit: "50".into(),
                    result: TestResult::Negative as i32,
                }],
                result: TestResult::Negative as i32,
            })),
        }),
    }
}

/// Entry 2: the revocation of entry 1's report, linked to it.
fn entry_2(prev_hash: &[u8]) -> Entry {
    Entry {
        format: 1,
        log: "shanxi".into(),
        seq: 2,
        prev_hash: prev_hash.to_vec(),
        time_ms: from_cst(2026, 12, 4, 14, 5, 0),
        request_id: String::new(),
        event: Some(Event {
            kind: Some(Kind::ReportRevoked(ReportRevoked {
                report_id: "shanxi-1".into(),
                reason: "实验室记录错误".into(),
            })),
        }),
    }
}

fn tagged(tag: &[u8]) -> String {
    let mut bytes = tag.to_vec();
    bytes.push(0);
    hex::encode(bytes)
}

#[test]
fn key_and_tags_match_the_specification() {
    let v = vectors();
    let key = secret_key();
    assert_eq!(hex::encode(key.to_bytes()), v["secret-key"]);
    assert_eq!(hex::encode(key.verifying_key().as_bytes()), v["public-key"]);
    assert_eq!(tagged(format::ENTRY_SIG_TAG), v["tag.entry-sig"]);
    assert_eq!(tagged(format::ENTRY_HASH_TAG), v["tag.entry-hash"]);
    assert_eq!(tagged(format::TRUST_LIST_SIG_TAG), v["tag.trust-list"]);
}

#[test]
fn entries_encode_sign_and_hash_to_the_published_bytes() {
    let v = vectors();
    let key = secret_key();

    let first = format::sign_entry(&key, &entry_1());
    assert_eq!(hex::encode(&first.body), v["entry-1.body"]);
    assert_eq!(hex::encode(&first.signature), v["entry-1.signature"]);
    let first_hash = format::entry_hash(&first.body);
    assert_eq!(hex::encode(first_hash), v["entry-1.hash"]);
    assert_eq!(token::encode(&first), v["entry-1.token"]);

    let second = format::sign_entry(&key, &entry_2(&first_hash));
    assert_eq!(hex::encode(&second.body), v["entry-2.body"]);
    assert_eq!(hex::encode(&second.signature), v["entry-2.signature"]);
    assert_eq!(
        hex::encode(format::entry_hash(&second.body)),
        v["entry-2.hash"]
    );
}

#[test]
fn the_signature_and_hash_are_over_tag_separator_and_body() {
    // Recompute both from the published pieces alone, the way another language would.
    let v = vectors();
    let bytes = |name: &str| hex::decode(&v[name]).expect("vectors are hex");
    let key = format::parse_public_key(&bytes("public-key")).expect("the vector key is strict");
    for n in ["1", "2"] {
        let mut message = bytes("tag.entry-sig");
        message.extend(bytes(&format!("entry-{n}.body")));
        let signature = format::parse_signature(&bytes(&format!("entry-{n}.signature")))
            .expect("the vector signature is strict");
        key.verify_strict(&message, &signature)
            .expect("entry signature is over tag || 00 || body");
        assert!(
            key.verify_strict(&bytes(&format!("entry-{n}.body")), &signature)
                .is_err(),
            "a signature over the bare body would not be domain-separated"
        );

        let mut hashed = bytes("tag.entry-hash");
        hashed.extend(bytes(&format!("entry-{n}.body")));
        assert_eq!(
            hex::encode(Sha256::digest(&hashed)),
            v[&format!("entry-{n}.hash")]
        );
    }
}

#[test]
fn the_published_entries_verify_decode_and_chain() {
    let v = vectors();
    let bytes = |name: &str| hex::decode(&v[name]).expect("vectors are hex");
    let key = format::parse_public_key(&bytes("public-key")).expect("the vector key is strict");
    let signed = |n: &str| huren_proto::pb::SignedEntry {
        body: bytes(&format!("entry-{n}.body")),
        signature: bytes(&format!("entry-{n}.signature")),
    };

    let first = VerifiedEntry::verify(&key, signed("1")).expect("entry 1 verifies");
    assert_eq!(first.entry, entry_1());
    assert_eq!(hex::encode(first.hash), v["entry-1.hash"]);
    let second = VerifiedEntry::verify(&key, signed("2")).expect("entry 2 verifies");
    assert_eq!(second.entry, entry_2(&first.hash));
    format::check_link(0, &format::GENESIS_PREV_HASH, &first.entry).expect("seq 1 links");
    format::check_link(1, &first.hash, &second.entry).expect("seq 2 links to seq 1");
    assert_eq!(
        token::decode(&v["entry-1.token"]),
        Ok(signed("1")),
        "the token holds entry 1 verbatim"
    );

    // A ledger whose trust list gives shanxi the vector key admits both, in order.
    let regulator = testkit::regulator_key();
    let list = trust::sign_trust_list(
        &regulator,
        "vectors",
        vec![testkit::market("shanxi", &secret_key())],
        testkit::T0,
    );
    let membership =
        trust::Membership::from_trust_list(&list, &regulator.verifying_key()).expect("list");
    let mut ledger = huren_proto::ledger::Ledger::new(membership);
    for n in ["1", "2"] {
        match ledger.admit(signed(n), None) {
            Ok(Admission::Next(verified)) => ledger.apply(&verified),
            other => panic!("entry {n} not admitted: {other:?}"),
        }
    }
    assert_eq!(hex::encode(ledger.head("shanxi").1), v["entry-2.hash"]);
}

#[test]
fn the_annotated_dumps_spell_out_the_published_bodies() {
    let v = vectors();
    assert_eq!(
        hex::encode(annotated("huren-annotated:entry-1")),
        v["entry-1.body"]
    );
    assert_eq!(
        hex::encode(annotated("huren-annotated:entry-2")),
        v["entry-2.body"]
    );
}

#[test]
fn merkle_leaves_and_root_follow_rfc_6962() {
    let v = vectors();
    let bytes = |name: &str| hex::decode(&v[name]).expect("vectors are hex");
    let leaf = |body: Vec<u8>| {
        Sha256::new()
            .chain_update([0u8])
            .chain_update(body)
            .finalize()
    };
    let leaf_1 = leaf(bytes("entry-1.body"));
    let leaf_2 = leaf(bytes("entry-2.body"));
    assert_eq!(hex::encode(leaf_1), v["merkle.leaf-1"]);
    assert_eq!(hex::encode(leaf_2), v["merkle.leaf-2"]);
    let root = Sha256::new()
        .chain_update([1u8])
        .chain_update(leaf_1)
        .chain_update(leaf_2)
        .finalize();
    assert_eq!(hex::encode(root), v["merkle.root-2"]);
    assert_ne!(
        leaf_1.as_slice(),
        bytes("entry-1.hash"),
        "the leaf hash is not the entry hash"
    );
}
