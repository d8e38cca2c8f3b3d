//! The auditor against crafted ledgers: a clean day passes, and each fault, planted alone in
//! an otherwise clean day and written into an export file, gives exactly its finding and the
//! documented exit code (5 for integrity failures, 6 for rule findings).

mod common;

use common::{accept, assert_found, audit_bytes, dispose, item, reject, Plan, MINUTE_MS, NOW};
use huren_client::audit::{FindingKind as F, EXIT_INTEGRITY, EXIT_RULES};
use huren_client::export::{ExportReader, ExportWriter, Record};
use huren_proto::format;
use huren_proto::ids::REGULATOR_LOG;
use huren_proto::pb::{ForkEvidence, Reason};
use huren_proto::testkit::{self, HOUR_MS, T0};

#[test]
fn a_clean_ledger_passes_with_exit_code_zero() {
    let report = Plan::clean().sign().audit();
    assert_found(&report, &[]);
    assert_eq!(report.exit_code(), 0);
    let t = report.totals;
    assert_eq!(
        (t.entries, t.reports, t.passes, t.positives),
        (8, 3, 2, 1),
        "{}",
        report.text()
    );
    assert_eq!(
        (t.intakes_accepted, t.intakes_rejected, t.disposals, t.forks),
        (2, 1, 1, 0)
    );
    let logs: Vec<(&str, u64)> = report
        .logs
        .iter()
        .map(|l| (l.log.as_str(), l.checked))
        .collect();
    assert_eq!(
        logs,
        [
            ("regulator", 1),
            ("jiuzhou", 2),
            ("shanxi", 4),
            ("tunhui", 1)
        ]
    );
    assert!(report.text().contains("result: CLEAN (exit code 0)"));
    assert_eq!(report.json()["result"], "clean");
}

#[test]
fn a_bad_signature_is_an_integrity_failure() {
    let mut book = Plan::clean().sign();
    let last = book.logs.get_mut("shanxi").unwrap().last_mut().unwrap();
    last.signature[5] ^= 0x01;
    let report = book.audit();
    assert_found(&report, &[F::BadSignature]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
    let finding = &report.findings[0];
    assert_eq!(
        (finding.entries[0].log.as_str(), finding.entries[0].seq),
        ("shanxi", 4)
    );
}

#[test]
fn a_changed_body_fails_its_signature() {
    let mut book = Plan::clean().sign();
    let first = &mut book.logs.get_mut("jiuzhou").unwrap()[0];
    let at = first.body.len() - 3;
    first.body[at] ^= 0x10;
    let report = book.audit();
    assert!(report.kinds().contains(&F::BadSignature) || report.kinds().contains(&F::Undecodable));
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
}

#[test]
fn a_broken_link_is_an_integrity_failure() {
    let mut plan = Plan::clean();
    plan.at("shanxi", 4).tweak = Some(Box::new(|e, book| e.prev_hash = book.hash("shanxi", 2)));
    let report = plan.sign().audit();
    assert_found(&report, &[F::BrokenLink]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
}

#[test]
fn a_wrong_sequence_number_is_an_integrity_failure() {
    let mut plan = Plan::clean();
    plan.at("shanxi", 4).tweak = Some(Box::new(|e, _| e.seq = 5));
    let report = plan.sign().audit();
    assert_found(&report, &[F::WrongSeq]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
}

#[test]
fn an_entry_by_a_non_member_is_an_integrity_failure() {
    let mut plan = Plan::clean();
    plan.push(item(
        "market9",
        testkit::issue(testkit::sample_report(T0)),
        T0 + MINUTE_MS,
    ));
    let report = plan.sign().audit();
    assert_found(&report, &[F::NonMember]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
    assert_eq!(report.findings[0].entries[0].log, "market9");
}

#[test]
fn an_entry_after_its_authors_suspension_is_an_integrity_failure() {
    let mut plan = Plan::clean();
    plan.push(item(
        REGULATOR_LOG,
        testkit::suspend("tunhui", 2),
        T0 + 3 * HOUR_MS,
    ));
    plan.push(item(
        "tunhui",
        reject("shanxi-2", Reason::PositiveResult, 3),
        T0 + 5 * HOUR_MS,
    ));
    let report = plan.sign().audit();
    assert_found(&report, &[F::SuspendedSigner]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
    assert_eq!(report.findings[0].entries[0].seq, 2);
}

fn rotation_plan(sign_with_new_key: bool) -> Plan {
    let new_key = testkit::key("shanxi-rotated");
    let mut plan = Plan::clean();
    plan.push(item(
        REGULATOR_LOG,
        testkit::rotate("shanxi", &new_key, 4),
        T0 + 3 * HOUR_MS,
    ));
    if sign_with_new_key {
        plan.at("shanxi", 4).key = Some(new_key);
    }
    plan
}

#[test]
fn an_entry_signed_with_a_rotated_out_key_is_an_integrity_failure() {
    let report = rotation_plan(false).sign().audit();
    assert_found(&report, &[F::RotatedOutKey]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
}

#[test]
fn the_new_key_signs_from_its_effective_seq_on() {
    let report = rotation_plan(true).sign().audit();
    assert_found(&report, &[]);
}

#[test]
fn a_clock_far_before_its_predecessor_is_a_rule_finding() {
    let mut plan = Plan::clean();
    plan.push(item(
        "tunhui",
        reject("shanxi-2", Reason::PositiveResult, 3),
        T0 + 3 * HOUR_MS - 11 * MINUTE_MS,
    ));
    let report = plan.sign().audit();
    assert_found(&report, &[F::ClockRegression]);
    assert_eq!(report.exit_code(), EXIT_RULES);
    let seqs: Vec<u64> = report.findings[0].entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2], "the entry and its predecessor");
}

#[test]
fn a_clock_slightly_before_its_predecessor_is_tolerated() {
    let mut plan = Plan::clean();
    plan.push(item(
        "tunhui",
        reject("shanxi-2", Reason::PositiveResult, 3),
        T0 + 3 * HOUR_MS - 9 * MINUTE_MS,
    ));
    assert_found(&plan.sign().audit(), &[]);
}

#[test]
fn a_clock_in_the_future_is_a_rule_finding() {
    let mut plan = Plan::clean();
    plan.push(item(
        "tunhui",
        reject("shanxi-2", Reason::PositiveResult, 3),
        NOW + HOUR_MS,
    ));
    let report = plan.sign().audit();
    assert_found(&report, &[F::ClockFuture]);
    assert_eq!(report.exit_code(), EXIT_RULES);
}

#[test]
fn an_accepted_intake_of_a_positive_report_is_a_rule_finding() {
    let mut plan = Plan::clean();
    plan.push(item(
        "tunhui",
        accept("shanxi-2", "10", 3, 1),
        T0 + 4 * HOUR_MS,
    ));
    let report = plan.sign().audit();
    assert_found(&report, &[F::InvalidIntake]);
    assert_eq!(report.exit_code(), EXIT_RULES);
    let f = &report.findings[0];
    assert!(f.detail.contains("POSITIVE_RESULT"), "{}", f.detail);
    let cited: Vec<(&str, u64)> = f.entries.iter().map(|e| (e.log.as_str(), e.seq)).collect();
    assert_eq!(cited, [("tunhui", 2), ("shanxi", 2)]);
}

#[test]
fn an_accepted_intake_after_the_validity_window_is_a_rule_finding() {
    // shanxi-1 is a vegetable: valid for 72 h from its test at T0.
    let mut plan = Plan::clean();
    plan.push(item(
        "tunhui",
        accept("shanxi-1", "10", 4, 1),
        T0 + 73 * HOUR_MS,
    ));
    let report = common::audit_bytes(&plan.sign().export(), T0 + 100 * HOUR_MS);
    assert_found(&report, &[F::InvalidIntake]);
    assert!(report.findings[0].detail.contains("EXPIRED"));
}

#[test]
fn an_intake_recording_rules_it_did_not_have_is_a_rule_finding() {
    let mut plan = Plan::clean();
    // Regulator seq 0 seen: only the built-in rules (version 0) were in force.
    plan.push(item(
        "tunhui",
        accept("shanxi-4", "10", 4, 0),
        T0 + 5 * HOUR_MS,
    ));
    let report = plan.sign().audit();
    assert_found(&report, &[F::InvalidIntake]);
    assert!(report.findings[0].detail.contains("rules version 1"));
}

#[test]
fn accepted_intakes_beyond_the_lot_are_an_overdraw() {
    let mut plan = Plan::clean();
    plan.at("tunhui", 1).kind = accept("shanxi-1", "80", 3, 1);
    let report = plan.sign().audit();
    assert_found(&report, &[F::Overdraw]);
    assert_eq!(report.exit_code(), EXIT_RULES);
    let f = &report.findings[0];
    assert!(
        f.detail.contains("110 kg from a lot of 100 kg"),
        "{}",
        f.detail
    );
    assert_eq!(f.entries.len(), 3, "the report and both intakes");
}

#[test]
fn a_positive_without_disposal_past_24_hours_is_a_rule_finding() {
    let mut plan = Plan::clean();
    plan.remove("shanxi", 3);
    // The tunhui intake saw three shanxi entries; now there are only... two before shanxi-3.
    plan.at("tunhui", 1).kind = accept("shanxi-1", "50", 2, 1);
    let report = plan.sign().audit();
    assert_found(&report, &[F::PositiveNotDisposed]);
    assert_eq!(report.exit_code(), EXIT_RULES);
}

#[test]
fn a_positive_still_inside_its_deadline_is_pending_not_a_finding() {
    let mut plan = Plan::clean();
    plan.remove("shanxi", 3);
    plan.at("tunhui", 1).kind = accept("shanxi-1", "50", 2, 1);
    let report = audit_bytes(&plan.sign().export(), T0 + 10 * HOUR_MS);
    assert_found(&report, &[]);
    assert_eq!(report.totals.positives_pending, 1);
}

#[test]
fn a_disposal_recorded_after_24_hours_is_a_rule_finding() {
    let mut plan = Plan::clean();
    let late = plan.at("shanxi", 3);
    late.kind = dispose("shanxi-2", T0 + 30 * HOUR_MS);
    late.time_ms = T0 + 30 * HOUR_MS;
    plan.at("shanxi", 4).time_ms = T0 + 30 * HOUR_MS + MINUTE_MS;
    let report = plan.sign().audit();
    assert_found(&report, &[F::PositiveNotDisposed]);
    assert!(report.findings[0].detail.contains("recorded late"));
}

fn revocation_plan(issuer_seen: u64) -> Plan {
    let mut plan = Plan::clean();
    plan.push(item(
        "shanxi",
        testkit::revoke("shanxi-4", "实验室记录错误"),
        T0 + 5 * HOUR_MS,
    ));
    plan.push(item(
        "tunhui",
        accept("shanxi-4", "10", issuer_seen, 1),
        T0 + 6 * HOUR_MS,
    ));
    plan
}

#[test]
fn an_intake_after_the_revocation_reached_the_market_is_a_rule_finding() {
    let report = revocation_plan(5).sign().audit();
    assert_found(&report, &[F::IntakeAfterRevocation]);
    assert_eq!(report.exit_code(), EXIT_RULES);
    let cited: Vec<(&str, u64)> = report.findings[0]
        .entries
        .iter()
        .map(|e| (e.log.as_str(), e.seq))
        .collect();
    assert_eq!(cited, [("tunhui", 2), ("shanxi", 5), ("shanxi", 4)]);
}

#[test]
fn an_intake_before_the_revocation_reached_the_market_is_not_a_finding() {
    assert_found(&revocation_plan(4).sign().audit(), &[]);
}

#[test]
fn an_intake_after_the_regulators_revocation_reached_the_market_is_a_rule_finding() {
    let mut plan = Plan::clean();
    plan.push(item(
        REGULATOR_LOG,
        testkit::revoke("shanxi-4", "监督抽检不合格"),
        T0 + 5 * HOUR_MS,
    ));
    plan.push(item(
        "tunhui",
        accept("shanxi-4", "10", 4, 2),
        T0 + 6 * HOUR_MS,
    ));
    let report = plan.sign().audit();
    assert_found(&report, &[F::IntakeAfterRevocation]);
}

/// The clean day plus a second, different shanxi entry at seq 4, as fork evidence.
fn fork_book(valid: bool) -> common::Book {
    let mut book = Plan::clean().sign();
    let held = book.entry("shanxi", 4).clone();
    let mut entry = format::decode_entry(&held.body).unwrap();
    entry.request_id = "the-other-history".into();
    let key = if valid {
        book.net.key("shanxi").clone()
    } else {
        book.net.key("jiuzhou").clone()
    };
    let other = format::sign_entry(&key, &entry);
    book.forks.push(ForkEvidence {
        first: Some(held),
        second: Some(other),
    });
    if valid {
        book.frozen.insert("shanxi".into());
    }
    book
}

#[test]
fn valid_fork_evidence_is_a_rule_finding_and_freezes_the_log() {
    let report = fork_book(true).audit();
    assert_found(&report, &[F::Fork]);
    assert_eq!(report.exit_code(), EXIT_RULES);
    assert_eq!(report.totals.forks, 1);
    assert!(report.findings[0]
        .detail
        .contains("shanxi signed two different entries at seq 4"));
}

#[test]
fn fork_evidence_that_does_not_hold_is_an_integrity_failure() {
    let report = fork_book(false).audit();
    assert_found(&report, &[F::BadForkEvidence]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
}

#[test]
fn a_header_claiming_a_fork_without_evidence_is_an_integrity_failure() {
    let mut book = Plan::clean().sign();
    book.frozen.insert("jiuzhou".into());
    assert_found(&book.audit(), &[F::HeadMismatch]);
}

#[test]
fn a_trust_list_not_signed_by_the_pinned_key_is_refused() {
    let book = Plan::clean().sign();
    let other = testkit::key("not-the-regulator").verifying_key();
    let options = huren_client::audit::AuditOptions::new(other, NOW);
    let report = huren_client::audit::audit_reader(
        book.export().as_slice(),
        options,
        &huren_client::audit::Silent,
    )
    .unwrap();
    assert_found(&report, &[F::TrustListRefused]);
    assert_eq!(report.exit_code(), EXIT_INTEGRITY);
}

#[test]
fn a_regulator_event_without_effect_is_a_rule_finding() {
    let mut plan = Plan::clean();
    let net = testkit::Network::new();
    let again = testkit::market("tunhui", net.key("tunhui"));
    plan.push(item(
        REGULATOR_LOG,
        huren_client::regulator::market_admitted(again),
        T0,
    ));
    assert_found(&plan.sign().audit(), &[F::RegulatorEventNoEffect]);
}

/// Positions to flip: every byte of the magic line; and in every record (the trust list, each
/// log header, each entry, the trailer) its kind byte, its four length bytes, and the first,
/// middle and last byte of its payload. Each flip hits a different bit.
fn flip_positions(bytes: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut reader = ExportReader::new(bytes);
    loop {
        starts.push(reader.offset() as usize);
        if reader.next_record().unwrap().is_none() {
            break;
        }
    }
    let mut out: Vec<usize> = (0..16).collect();
    for (n, start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
        let start = (*start).max(16);
        if start + 5 >= end {
            continue;
        }
        out.extend(start..start + 5);
        out.extend([start + 5, (start + 5 + end) / 2, end - 1]);
    }
    out.sort();
    out.dedup();
    out
}

#[test]
fn a_one_bit_change_anywhere_in_an_export_is_caught() {
    let bytes = Plan::clean().sign().export();
    let positions = flip_positions(&bytes);
    assert!(positions.len() > 100, "{} positions", positions.len());
    for i in positions {
        let mut changed = bytes.clone();
        changed[i] ^= 1 << (i % 8);
        let report = audit_bytes(&changed, NOW);
        assert!(
            report.integrity_failures() > 0 && report.exit_code() == EXIT_INTEGRITY,
            "a flip of byte {i} of {} went unnoticed:\n{}",
            bytes.len(),
            report.text()
        );
    }
}

/// Rewrites an export record by record through `change`, with a fresh trailer digest: what a
/// forger who recomputes the digest would produce.
fn rewrite(bytes: &[u8], change: &mut dyn FnMut(usize, &mut Record)) -> Vec<u8> {
    let mut reader = ExportReader::new(bytes);
    let mut writer = ExportWriter::new(Vec::new()).unwrap();
    let mut n = 0;
    while let Some(mut record) = reader.next_record().unwrap() {
        change(n, &mut record);
        n += 1;
        match &record {
            Record::TrustList(t) => writer.trust_list(t).unwrap(),
            Record::Log(h) => writer.log(h).unwrap(),
            Record::Entry(e) => writer.entry(e).unwrap(),
            Record::Fork(f) => writer.fork(f).unwrap(),
        }
    }
    writer.finish().unwrap().0
}

#[test]
fn a_one_bit_change_in_signed_bytes_is_caught_even_with_a_recomputed_digest() {
    let bytes = Plan::clean().sign().export();
    let records = {
        let mut reader = ExportReader::new(bytes.as_slice());
        let mut v = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            v.push(r);
        }
        v
    };
    for (target, record) in records.iter().enumerate() {
        // The signed parts: the trust list, and each entry's body and signature.
        let lengths: Vec<usize> = match record {
            Record::TrustList(t) => vec![t.body.len(), t.signature.len()],
            Record::Entry(e) => vec![e.body.len(), e.signature.len()],
            _ => continue,
        };
        for (part, len) in lengths.into_iter().enumerate() {
            for at in (0..len).step_by(29) {
                let bit = 1u8 << ((at + part) % 8);
                let changed = rewrite(&bytes, &mut |n, r| {
                    if n != target {
                        return;
                    }
                    let field = match (r, part) {
                        (Record::TrustList(t), 0) => &mut t.body,
                        (Record::TrustList(t), _) => &mut t.signature,
                        (Record::Entry(e), 0) => &mut e.body,
                        (Record::Entry(e), _) => &mut e.signature,
                        _ => unreachable!("only signed records are changed"),
                    };
                    field[at] ^= bit;
                });
                let report = audit_bytes(&changed, NOW);
                assert_eq!(
                    report.exit_code(),
                    EXIT_INTEGRITY,
                    "record {target} part {part} byte {at}:\n{}",
                    report.text()
                );
            }
        }
    }
}

#[test]
fn a_changed_log_header_is_caught_even_with_a_recomputed_digest() {
    // (A changed entry count cannot even be written: the reader and the writer both refuse a
    // log whose entries do not match its header's count.)
    let bytes = Plan::clean().sign().export();
    type Change = fn(&mut huren_proto::pb::Head);
    let changes: [(&str, Change); 2] = [
        ("hash", |h| h.hash[0] ^= 1),
        ("frozen", |h| h.frozen = true),
    ];
    for (what, change) in changes {
        let changed = rewrite(&bytes, &mut |_, r| {
            if let Record::Log(h) = r {
                if h.log == "shanxi" {
                    change(h);
                }
            }
        });
        let report = audit_bytes(&changed, NOW);
        assert_eq!(
            report.exit_code(),
            EXIT_INTEGRITY,
            "{what}: {}",
            report.text()
        );
        assert_found(&report, &[F::HeadMismatch]);
    }
}

#[test]
fn an_export_audits_the_same_from_a_file_as_from_memory() {
    let bytes = Plan::clean().sign().export();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.huren");
    std::fs::write(&path, &bytes).unwrap();
    let options =
        huren_client::audit::AuditOptions::new(testkit::regulator_key().verifying_key(), NOW);
    let from_file =
        huren_client::audit::audit_file(&path, options, &huren_client::audit::Silent).unwrap();
    assert_eq!(from_file, audit_bytes(&bytes, NOW));
}

#[test]
fn an_integrity_failure_early_in_a_log_is_reported_once_not_as_missing_reports() {
    // shanxi's first entry is damaged: its later entries, and the intakes that draw on its
    // reports, cannot be judged; the one finding is the damage.
    let mut book = Plan::clean().sign();
    book.logs.get_mut("shanxi").unwrap()[0].signature[0] ^= 0x80;
    let report = book.audit();
    assert_found(&report, &[F::BadSignature]);
    assert_eq!(report.findings.len(), 1, "{}", report.text());
    let shanxi = report.logs.iter().find(|l| l.log == "shanxi").unwrap();
    assert_eq!((shanxi.checked, shanxi.unchecked), (0, 4));
}
