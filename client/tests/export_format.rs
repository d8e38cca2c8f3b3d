//! docs/FORMAT.md's "Export file" example is what the writer writes: the smallest export
//! (a trust list without markets, an empty regulator's log), byte for byte, and it audits
//! clean.

use huren_client::audit::{self, AuditOptions};
use huren_client::export::ExportWriter;
use huren_proto::pb::Head;
use huren_proto::testkit::{Network, T0};

fn smallest_export() -> Vec<u8> {
    let net = Network::with_markets(&[]);
    let mut writer = ExportWriter::new(Vec::new()).unwrap();
    writer.trust_list(&net.trust_list).unwrap();
    writer
        .log(&Head {
            log: "regulator".into(),
            ..Default::default()
        })
        .unwrap();
    writer.finish().unwrap().0
}

/// The hex digits between the example's markers, white space and `|` comments removed.
fn documented() -> Vec<u8> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md"))
        .expect("docs/FORMAT.md");
    let begin = doc
        .find("<!-- huren-export-example:begin -->")
        .expect("begin marker");
    let end = doc
        .find("<!-- huren-export-example:end -->")
        .expect("end marker");
    let digits: String = doc[begin..end]
        .lines()
        .skip(2)
        .filter(|l| !l.starts_with("```"))
        .map(|l| l.split('|').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(char::is_ascii_hexdigit))
        .collect();
    hex::decode(digits).expect("hex")
}

#[test]
fn the_documented_example_is_what_the_writer_writes() {
    assert_eq!(hex::encode(documented()), hex::encode(smallest_export()));
}

#[test]
fn the_documented_example_audits_clean() {
    let key = Network::with_markets(&[]).regulator.verifying_key();
    let report = audit::audit_reader(
        documented().as_slice(),
        AuditOptions::new(key, T0),
        &audit::Silent,
    )
    .unwrap();
    assert_eq!(report.exit_code(), 0, "{}", report.text());
}
