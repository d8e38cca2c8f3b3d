//! The benchmark's generated ledger is one a correct auditor finds clean: the figures in
//! BENCHMARKS.md measure an audit that checked everything and found nothing, not one that
//! stopped at the first fault.

#[path = "../benches/support/ledger_gen.rs"]
mod ledger_gen;

use huren_client::audit::{self, AuditOptions};

#[test]
fn a_generated_ledger_of_seven_markets_audits_clean() {
    let ledger = ledger_gen::generate(1_200, 7);
    let bytes = ledger.export(Vec::new()).expect("export to memory");
    let key = ledger.net.regulator.verifying_key();
    let options = AuditOptions::new(key, ledger.end_ms + 3_600_000);
    let report = audit::audit_reader(bytes.as_slice(), options, &audit::Silent).unwrap();
    assert_eq!(report.findings, Vec::new(), "{}", report.text());
    assert_eq!(report.totals.entries as usize, ledger.entry_count());
    let t = report.totals;
    assert!(
        t.reports > 300 && t.intakes_accepted > 200 && t.intakes_rejected > 10,
        "{t:?}"
    );
    assert!(
        t.revocations > 0 && t.positives > 0 && t.disposals == t.positives,
        "{t:?}"
    );
    assert_eq!(
        report.logs.len(),
        8,
        "the regulator's log and seven markets'"
    );
}
