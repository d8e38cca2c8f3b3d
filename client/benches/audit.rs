//! Audit speed on a generated ledger, beside raw Ed25519 verification of the same entries
//! measured in the same run (see BENCHMARKS.md).
//!
//! `cargo bench -p huren-client --bench audit -- [--entries N] [--seed S]` builds a ledger of
//! N entries (default 1,000,000) across seven markets with the testkit's keys, writes its
//! export file to a temporary folder, audits the file as `huren audit --file` does, then
//! checks every signature again on all cores: strictly (`format::verify_signature`, which is
//! `verify_strict`); with ed25519-dalek's batch verification (64 at a time), which is faster
//! but not as strict and so not used by the auditor (see `huren_client::audit`); and with the
//! same strict equation computed from per-key precomputed tables (`table_verify` below), to
//! show what a change to `huren_proto::format` could gain.

#[path = "support/ledger_gen.rs"]
mod ledger_gen;

use std::time::Instant;

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::EdwardsBasepointTable;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use huren_client::audit::{self, AuditOptions};
use huren_proto::format;
use huren_proto::ids::REGULATOR_LOG;
use huren_proto::pb::SignedEntry;
use rayon::prelude::*;
use sha2::{Digest, Sha512};

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == name)?;
    let value = args.get(at + 1)?.replace('_', "");
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name} takes a number")),
    )
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let entries = arg("--entries").unwrap_or(1_000_000) as usize;
    let seed = arg("--seed").unwrap_or(20261204);
    println!(
        "audit benchmark: {entries} entries, {} threads, load average {}",
        rayon::current_num_threads(),
        load()
    );

    let started = Instant::now();
    let ledger = ledger_gen::generate(entries, seed);
    let generated = started.elapsed().as_secs_f64();
    let total = ledger.entry_count();
    println!("generated and signed {total} entries in {generated:.1} s");

    let dir = tempfile::tempdir().expect("temporary folder");
    let path = dir.path().join("bench.huren-export");
    let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create export"));
    ledger.export(file).expect("write export");
    let bytes = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!("export file: {bytes} bytes");

    let key = ledger.net.regulator.verifying_key();
    let options = AuditOptions::new(key, ledger.end_ms + 3_600_000);
    let started = Instant::now();
    let report = audit::audit_file(&path, options, &audit::Silent).expect("audit");
    let audit_s = started.elapsed().as_secs_f64();
    assert_eq!(
        report.totals.entries as usize, total,
        "every entry was checked"
    );
    assert_eq!(
        report.findings.len(),
        0,
        "the generated ledger is clean:\n{}",
        report.text()
    );
    let audit_rate = total as f64 / audit_s;
    println!(
        "audit --file:          {audit_s:7.2} s  {audit_rate:>9.0} entries/s  (load average {})",
        load()
    );

    // Every signed entry with the key that signed it.
    let net = &ledger.net;
    let all: Vec<(&SignedEntry, ed25519_dalek::VerifyingKey)> = ledger
        .logs
        .iter()
        .flat_map(|(log, entries)| {
            let key = if log == REGULATOR_LOG {
                net.regulator.verifying_key()
            } else {
                net.key(log).verifying_key()
            };
            entries.iter().map(move |e| (e, key))
        })
        .collect();

    let started = Instant::now();
    all.par_iter().for_each(|(signed, key)| {
        format::verify_signature(key, signed).expect("valid signature");
    });
    let strict_s = started.elapsed().as_secs_f64();
    let strict_rate = total as f64 / strict_s;
    println!("verify_strict, all cores: {strict_s:5.2} s  {strict_rate:>9.0} entries/s");

    let started = Instant::now();
    all.par_chunks(64).for_each(|chunk| {
        let messages: Vec<Vec<u8>> = chunk
            .iter()
            .map(|(s, _)| {
                let mut m = format::ENTRY_SIG_TAG.to_vec();
                m.push(0);
                m.extend_from_slice(&s.body);
                m
            })
            .collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<ed25519_dalek::Signature> = chunk
            .iter()
            .map(|(s, _)| format::parse_signature(&s.signature).expect("64 bytes"))
            .collect();
        let keys: Vec<ed25519_dalek::VerifyingKey> = chunk.iter().map(|(_, k)| *k).collect();
        ed25519_dalek::verify_batch(&refs, &signatures, &keys).expect("valid batch");
    });
    let batch_s = started.elapsed().as_secs_f64();
    let batch_rate = total as f64 / batch_s;
    println!("verify_batch (64), all cores: {batch_s:5.2} s  {batch_rate:>9.0} entries/s");
    // The same strict check with each key's multiples precomputed (see `table_verify`).
    let mut tables: std::collections::HashMap<[u8; 32], EdwardsBasepointTable> =
        std::collections::HashMap::new();
    for (_, key) in &all {
        tables
            .entry(key.to_bytes())
            .or_insert_with(|| EdwardsBasepointTable::create(&-key.to_edwards()));
    }
    let started = Instant::now();
    all.par_iter().for_each(|(signed, key)| {
        assert!(table_verify(key, &tables[&key.to_bytes()], signed));
    });
    let table_s = started.elapsed().as_secs_f64();
    let table_rate = total as f64 / table_s;
    println!("strict with key tables, all cores: {table_s:5.2} s  {table_rate:>9.0} entries/s");
    println!(
        "ratios: audit / verify_strict = {:.2}; verify_batch / verify_strict = {:.2}; load \
         average {}",
        audit_rate / strict_rate,
        batch_rate / strict_rate,
        load()
    );
    println!(
        "        key tables / verify_strict = {:.2}",
        table_rate / strict_rate
    );
}

/// `verify_strict`'s decision, computed with a precomputed table of the key's multiples
/// (`minus_a` holds −A) instead of a fresh variable-base multiplication: the same equation,
/// about 1.6 times faster here. Not used by the auditor; measured to show what a change to
/// `huren_proto::format` could gain. It accepts exactly when `verify_strict` does, for a key
/// that `format::parse_public_key` accepted (canonical, not of small order):
///
/// - `S` must be canonical (`S < ℓ`), as `verify_strict` requires;
/// - with `k = SHA-512(R ‖ A ‖ M) mod ℓ` (the bytes of `R` and `A` as given), the point
///   `P = [S]B − [k]A` must encode to exactly the bytes of `R`; that is `verify_strict`'s
///   final comparison, and it implies that `R` decodes, to `P`;
/// - `P` must not be of small order, which is `verify_strict`'s check on the decoded `R`.
fn table_verify(
    key: &ed25519_dalek::VerifyingKey,
    minus_a: &EdwardsBasepointTable,
    signed: &SignedEntry,
) -> bool {
    let Ok(signature) = <[u8; 64]>::try_from(signed.signature.as_slice()) else {
        return false;
    };
    let (r, s) = signature.split_at(32);
    let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(
        s.try_into().expect("32 bytes"),
    )) else {
        return false;
    };
    let mut h = Sha512::new();
    h.update(r);
    h.update(key.as_bytes());
    h.update(format::ENTRY_SIG_TAG);
    h.update([0u8]);
    h.update(&signed.body);
    let k = Scalar::from_hash(h);
    let p = &s * ED25519_BASEPOINT_TABLE + &k * minus_a;
    p.compress().as_bytes() == r && !p.is_small_order()
}
