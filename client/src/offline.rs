//! Verifying a portable report with no node: only the token, a trust list file, and the
//! regulator's public key that the verifier pinned (got from the regulator, not from the
//! file). It builds an empty `huren_proto::ledger::Ledger` over the trust list and asks the
//! one verdict function with `Knowledge::TokenOnly`.
//!
//! It must never re-implement any part of the verdict. What it cannot know it says so: it
//! sees no revocation, no suspension or key rotation after the trust list, no rules published
//! since (the built-in defaults apply), and no draws by other markets.

use std::path::Path;

use ed25519_dalek::VerifyingKey;
use prost::Message;

use huren_proto::ledger::{Knowledge, Ledger, Lot, Verdict};
use huren_proto::pb::{self, SignedTrustList};
use huren_proto::trust::Membership;

/// What an offline verdict cannot take into account, in one sentence for people.
pub const LIMITS: &str = "offline check: revocations, suspensions, key rotations and rules \
published after the trust list, and quantities drawn at other markets, are not known";

/// Why an offline check could not be made (as opposed to a verdict that says "not valid").
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The trust list file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a signed trust list.
    #[error("{0}: not a signed trust list: {1}")]
    NotATrustList(String, String),
    /// The trust list does not hold under the pinned key, or is malformed.
    #[error("trust list refused: {0}")]
    Membership(String),
    /// The regulator key is not a valid public key.
    #[error("regulator key: {0}")]
    BadKey(String),
    /// The text is not a token.
    #[error(transparent)]
    Token(#[from] huren_proto::token::TokenError),
}

/// Reads a signed trust list file (the encoded `SignedTrustList`, as `huren genesis` writes).
///
/// # Errors
/// [`OfflineError::Io`] or [`OfflineError::NotATrustList`].
pub fn read_trust_list(path: &Path) -> Result<SignedTrustList, OfflineError> {
    let bytes = std::fs::read(path).map_err(|source| OfflineError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let signed = SignedTrustList::decode(bytes.as_slice())
        .map_err(|e| OfflineError::NotATrustList(path.display().to_string(), e.to_string()))?;
    if signed.body.is_empty() || signed.signature.is_empty() {
        return Err(OfflineError::NotATrustList(
            path.display().to_string(),
            "no body or no signature".into(),
        ));
    }
    Ok(signed)
}

/// A verifier over one trust list, checked against the pinned regulator key.
#[derive(Debug, Clone)]
pub struct OfflineVerifier {
    ledger: Ledger,
}

impl OfflineVerifier {
    /// Checks `trust_list` against `regulator_key` and prepares to judge tokens.
    ///
    /// # Errors
    /// [`OfflineError::Membership`] when the list is not signed by that key or is malformed.
    pub fn new(
        trust_list: &SignedTrustList,
        regulator_key: &VerifyingKey,
    ) -> Result<Self, OfflineError> {
        let membership = Membership::from_trust_list(trust_list, regulator_key)
            .map_err(|e| OfflineError::Membership(e.to_string()))?;
        Ok(Self {
            ledger: Ledger::new(membership),
        })
    }

    /// Reads the trust list at `path` and pins `regulator_key_hex` (64 hex digits).
    ///
    /// # Errors
    /// Any [`OfflineError`].
    pub fn from_files(path: &Path, regulator_key_hex: &str) -> Result<Self, OfflineError> {
        let key = huren_proto::keyfile::parse_public_hex(regulator_key_hex)
            .map_err(OfflineError::BadKey)?;
        Self::new(&read_trust_list(path)?, &key)
    }

    /// The membership the verifier judges by.
    pub fn membership(&self) -> &Membership {
        self.ledger.membership()
    }

    /// Judges the signed entry of a token for `lot`. Returns the report id the entry claims
    /// (empty when the entry does not decode) and the verdict.
    pub fn verify_entry(&self, signed: &pb::SignedEntry, lot: &Lot) -> (String, Verdict) {
        self.ledger
            .verdict_for_entry(signed, Knowledge::TokenOnly, lot)
    }

    /// Decodes a token (or a scanned link holding one) and judges it for `lot`.
    ///
    /// # Errors
    /// [`OfflineError::Token`] when the text is not a whole token; a token that decodes but
    /// does not verify is a verdict with `BAD_SIGNATURE`, not an error.
    pub fn verify_token(&self, token: &str, lot: &Lot) -> Result<(String, Verdict), OfflineError> {
        let signed = huren_proto::token::decode(token)?;
        Ok(self.verify_entry(&signed, lot))
    }
}

/// The report inside a token, decoded without checking its signature: for filling in a
/// lot's defaults (product, unit) before the verdict. Never use it to decide anything.
pub fn peek_report(signed: &pb::SignedEntry) -> Option<(String, pb::ReportIssued)> {
    let entry = huren_proto::format::decode_entry(&signed.body).ok()?;
    match entry.event?.kind? {
        pb::event::Kind::ReportIssued(report) => {
            Some((huren_proto::ids::report_id(&entry.log, entry.seq), report))
        }
        _ => None,
    }
}

/// Converts a verdict of the shared function into the protobuf form a node's Verify returns,
/// so that both print the same way.
pub fn verdict_to_pb(report_id: &str, verdict: &Verdict, unit: &str, at_ms: i64) -> pb::Verdict {
    pb::Verdict {
        valid: verdict.valid,
        reasons: verdict.reasons.clone(),
        rules_version: verdict.rules_version,
        report_id: report_id.to_string(),
        valid_until_ms: verdict.valid_until_ms.unwrap_or(0),
        remaining: verdict
            .remaining
            .and_then(|base| huren_proto::quantity::format_in(base, unit)),
        at_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use huren_proto::pb::Reason;

    const DAY_START: i64 = 1_796_313_600_000; // 2026-12-04T00:00:00+08:00

    struct World {
        regulator: SigningKey,
        shanxi: SigningKey,
        trust_list: SignedTrustList,
    }

    fn world() -> World {
        let regulator = SigningKey::from_bytes(&[1u8; 32]);
        let shanxi = SigningKey::from_bytes(&[2u8; 32]);
        let market = pb::Market {
            id: "shanxi".into(),
            name_zh: "山西".into(),
            name_latin: "Shanxi".into(),
            public_key: shanxi.verifying_key().to_bytes().to_vec(),
            grpc_addr: "http://127.0.0.1:7101".into(),
            http_addr: "http://127.0.0.1:8101".into(),
        };
        let trust_list =
            huren_proto::trust::sign_trust_list(&regulator, "taiyuan", vec![market], DAY_START);
        World {
            regulator,
            shanxi,
            trust_list,
        }
    }

    fn issued(key: &SigningKey, report: &pb::ReportIssued) -> pb::SignedEntry {
        let entry = pb::Entry {
            format: 1,
            log: "shanxi".into(),
            seq: 7,
            prev_hash: vec![5; 32],
            time_ms: report.tested_at_ms + 60_000,
            request_id: String::new(),
            event: Some(pb::Event {
                kind: Some(pb::event::Kind::ReportIssued(report.clone())),
            }),
        };
        huren_proto::format::sign_entry(key, &entry)
    }

    fn passing_report() -> pb::ReportIssued {
        crate::sample::day("shanxi", 5, 60, DAY_START)
            .into_iter()
            .find(|r| r.result == pb::TestResult::Negative as i32)
            .expect("most of a day passes")
    }

    fn lot(report: &pb::ReportIssued) -> Lot {
        Lot {
            product: report.product.clone(),
            category: None,
            quantity: pb::Quantity {
                amount: "1".into(),
                unit: report.quantity.as_ref().unwrap().unit.clone(),
            },
            at_ms: report.tested_at_ms + 3_600_000,
        }
    }

    fn codes(verdict: &Verdict) -> Vec<i32> {
        verdict.reasons.iter().map(|r| r.code).collect()
    }

    #[test]
    fn a_genuine_token_is_valid_offline() {
        let w = world();
        let verifier = OfflineVerifier::new(&w.trust_list, &w.regulator.verifying_key()).unwrap();
        let report = passing_report();
        let token = huren_proto::token::encode(&issued(&w.shanxi, &report));
        let (id, verdict) = verifier.verify_token(&token, &lot(&report)).unwrap();
        assert_eq!(id, "shanxi-7");
        assert!(verdict.valid, "{:?}", verdict.reasons);
        assert_eq!(verdict.rules_version, 0);
    }

    #[test]
    fn a_tampered_token_gets_bad_signature() {
        let w = world();
        let verifier = OfflineVerifier::new(&w.trust_list, &w.regulator.verifying_key()).unwrap();
        let report = passing_report();
        let mut signed = issued(&w.shanxi, &report);

        // Enlarge the lot inside the signed body, as a forger would, keeping the old signature.
        let mut entry = huren_proto::format::decode_entry(&signed.body).unwrap();
        if let Some(pb::event::Kind::ReportIssued(r)) =
            entry.event.as_mut().and_then(|e| e.kind.as_mut())
        {
            r.quantity.as_mut().unwrap().amount.insert(0, '9');
        }
        signed.body = entry.encode_to_vec();
        let token = huren_proto::token::encode(&signed);
        let (_, verdict) = verifier.verify_token(&token, &lot(&report)).unwrap();
        assert!(!verdict.valid);
        assert_eq!(codes(&verdict), vec![Reason::BadSignature as i32]);

        // A token signed by a key outside the trust list fails the same way.
        let stranger = SigningKey::from_bytes(&[7u8; 32]);
        let token = huren_proto::token::encode(&issued(&stranger, &report));
        let (_, verdict) = verifier.verify_token(&token, &lot(&report)).unwrap();
        assert_eq!(codes(&verdict), vec![Reason::BadSignature as i32]);
    }

    #[test]
    fn the_shared_verdict_still_judges_product_and_time_offline() {
        let w = world();
        let verifier = OfflineVerifier::new(&w.trust_list, &w.regulator.verifying_key()).unwrap();
        let report = passing_report();
        let token = huren_proto::token::encode(&issued(&w.shanxi, &report));
        let mut wrong = lot(&report);
        wrong.product = "不是这个".into();
        wrong.at_ms = report.tested_at_ms + 91 * 24 * 3_600_000;
        let (_, verdict) = verifier.verify_token(&token, &wrong).unwrap();
        let codes = codes(&verdict);
        assert!(codes.contains(&(Reason::ProductMismatch as i32)));
        assert!(codes.contains(&(Reason::Expired as i32)));
    }

    #[test]
    fn a_trust_list_under_another_regulator_key_is_refused() {
        let w = world();
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let e = OfflineVerifier::new(&w.trust_list, &other.verifying_key()).unwrap_err();
        assert!(matches!(e, OfflineError::Membership(_)), "{e}");
        assert!(matches!(
            OfflineVerifier::new(&w.trust_list, &w.regulator.verifying_key())
                .unwrap()
                .verify_token("shanxi-7", &lot(&passing_report())),
            Err(OfflineError::Token(_))
        ));
    }

    #[test]
    fn a_trust_list_file_round_trips() {
        let w = world();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trust-list.pb");
        std::fs::write(&path, w.trust_list.encode_to_vec()).unwrap();
        let hex = huren_proto::keyfile::public_hex(&w.regulator.verifying_key());
        let verifier = OfflineVerifier::from_files(&path, &hex).unwrap();
        assert!(verifier.membership().market("shanxi").is_some());
        std::fs::write(&path, b"not protobuf at all").unwrap();
        assert!(OfflineVerifier::from_files(&path, &hex).is_err());
    }
}
