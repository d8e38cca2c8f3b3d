//! Fixtures for tests of every Huren crate: keys derived from public seeds, a small network
//! with a signed trust list, an author that chains and signs the entries of one log, and a
//! sample rapid-test report. They live here, behind the `testkit` feature, so that the node,
//! CLI and cluster tests build the same network the format tests do.
//!
//! Nothing here may reach a running node: every secret key is derivable by anyone from the
//! seeds in this file.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::format::{self, Hash, FORMAT_VERSION, GENESIS_PREV_HASH};
use crate::ids::REGULATOR_LOG;
use crate::ledger::{Admission, AdmitError, Ledger, Lot};
use crate::pb::{
    event::Kind, Entry, Event, IntakeAccepted, KeyRotated, Market, MarketSuspended, Quantity,
    ReportIssued, ReportRevoked, SignedEntry, SignedTrustList, TestItem, TestResult,
};
use crate::trust::{self, Membership};

/// The markets of the default test network.
pub const MARKETS: [&str; 3] = ["shanxi", "jiuzhou", "tunhui"];

/// A fixed instant for tests: 2026-12-04 09:30:00 CST (01:30:00 UTC), in UTC ms.
pub const T0: i64 = 1_796_347_800_000;

/// The network name in test trust lists.
pub const NETWORK: &str = "testnet";

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

/// A signing key derived from a name: the secret is `SHA-256("huren-testkit/" || name)`.
/// The same name always gives the same key.
pub fn key(name: &str) -> SigningKey {
    let mut hasher = Sha256::new();
    hasher.update(b"huren-testkit/");
    hasher.update(name.as_bytes());
    SigningKey::from_bytes(&hasher.finalize().into())
}

/// The test regulator's root key.
pub fn regulator_key() -> SigningKey {
    key(REGULATOR_LOG)
}

/// A market record for `id` with `key`'s public half, with names and loopback addresses.
pub fn market(id: &str, key: &SigningKey) -> Market {
    Market {
        id: id.into(),
        name_zh: format!("{id}市场"),
        name_latin: id.into(),
        public_key: key.verifying_key().to_bytes().to_vec(),
        grpc_addr: "http://127.0.0.1:7101".into(),
        http_addr: "http://127.0.0.1:8101".into(),
    }
}

/// A test network: the regulator's key, each market's key, and the trust list naming them.
#[derive(Debug, Clone)]
pub struct Network {
    /// The regulator's root key.
    pub regulator: SigningKey,
    /// Each market's key, by market id.
    pub keys: BTreeMap<String, SigningKey>,
    /// The trust list, signed by `regulator`, created at [`T0`].
    pub trust_list: SignedTrustList,
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// The network of [`MARKETS`].
    pub fn new() -> Self {
        Self::with_markets(&MARKETS)
    }

    /// A network of the given market ids, each with [`key`] of its id.
    pub fn with_markets(ids: &[&str]) -> Self {
        let regulator = regulator_key();
        let keys: BTreeMap<String, SigningKey> =
            ids.iter().map(|id| (id.to_string(), key(id))).collect();
        let markets = keys.iter().map(|(id, k)| market(id, k)).collect();
        let trust_list = trust::sign_trust_list(&regulator, NETWORK, markets, T0);
        Self {
            regulator,
            keys,
            trust_list,
        }
    }

    /// The membership the trust list starts, pinned to the regulator's key.
    ///
    /// # Panics
    /// If the trust list does not verify, which would be a bug in this module.
    pub fn membership(&self) -> Membership {
        Membership::from_trust_list(&self.trust_list, &self.regulator.verifying_key())
            .expect("the testkit signs a well-formed trust list")
    }

    /// An empty ledger over [`Network::membership`], with the built-in rules.
    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.membership())
    }

    /// The key of a market of this network.
    ///
    /// # Panics
    /// If `market` is not one of the network's markets.
    pub fn key(&self, market: &str) -> &SigningKey {
        self.keys
            .get(market)
            .unwrap_or_else(|| panic!("{market} is not in the test network"))
    }

    /// An author for `log` (a market id or `regulator`) at the start of its log.
    ///
    /// # Panics
    /// If `log` is neither the regulator's nor one of the network's markets.
    pub fn author(&self, log: &str) -> Author {
        let key = if log == REGULATOR_LOG {
            self.regulator.clone()
        } else {
            self.key(log).clone()
        };
        Author::new(log, key)
    }
}

/// Writes one log: it holds the next sequence number and the previous entry's hash, and signs
/// each entry it is given as the next one.
#[derive(Debug, Clone)]
pub struct Author {
    log: String,
    key: SigningKey,
    next_seq: u64,
    prev_hash: Hash,
}

impl Author {
    /// An author of `log` signing with `key`, at seq 1.
    pub fn new(log: &str, key: SigningKey) -> Self {
        Self {
            log: log.into(),
            key,
            next_seq: 1,
            prev_hash: GENESIS_PREV_HASH,
        }
    }

    /// The log's name.
    pub fn log(&self) -> &str {
        &self.log
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Signs further entries with `key` (for example after a key rotation).
    pub fn set_key(&mut self, key: SigningKey) {
        self.key = key;
    }

    /// The next entry of the log, unsigned, carrying `kind` and the author's clock `time_ms`.
    pub fn entry(&self, kind: Kind, time_ms: i64) -> Entry {
        Entry {
            format: FORMAT_VERSION,
            log: self.log.clone(),
            seq: self.next_seq,
            prev_hash: self.prev_hash.to_vec(),
            time_ms,
            request_id: String::new(),
            event: Some(Event { kind: Some(kind) }),
        }
    }

    /// Signs `entry` as it is (whatever its seq and prev_hash say) and moves the author past
    /// it: the next entry follows `entry`.
    pub fn sign(&mut self, entry: &Entry) -> SignedEntry {
        let signed = format::sign_entry(&self.key, entry);
        self.next_seq = entry.seq + 1;
        self.prev_hash = format::entry_hash(&signed.body);
        signed
    }

    /// Builds, signs and returns the next entry.
    pub fn next(&mut self, kind: Kind, time_ms: i64) -> SignedEntry {
        let entry = self.entry(kind, time_ms);
        self.sign(&entry)
    }
}

/// `amount` of `unit`.
pub fn qty(amount: &str, unit: &str) -> Quantity {
    Quantity {
        amount: amount.into(),
        unit: unit.into(),
    }
}

/// A negative rapid-test report on 100 kg of green beans (菜豆, category `vegetable`, 72 h
/// under the default rules), sampled ten minutes before `tested_at_ms`.
pub fn sample_report(tested_at_ms: i64) -> ReportIssued {
    ReportIssued {
        stall_code: "A-017".into(),
        product: "菜豆".into(),
        category: "vegetable".into(),
        origin: "山西清徐".into(),
        lot_id: "L20261204-001".into(),
        quantity: Some(qty("100", "kg")),
        bag_code: "BAG-000123".into(),
        sampled_at_ms: tested_at_ms - 10 * 60_000,
        tested_at_ms,
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
    }
}

/// The event issuing `report`.
pub fn issue(report: ReportIssued) -> Kind {
    Kind::ReportIssued(report)
}

/// The event revoking `report_id`.
pub fn revoke(report_id: &str, reason: &str) -> Kind {
    Kind::ReportRevoked(ReportRevoked {
        report_id: report_id.into(),
        reason: reason.into(),
    })
}

/// The event accepting `amount unit` of green beans (菜豆) on `report_id`.
pub fn intake(report_id: &str, amount: &str, unit: &str) -> Kind {
    Kind::IntakeAccepted(IntakeAccepted {
        report_id: report_id.into(),
        quantity: Some(qty(amount, unit)),
        product: "菜豆".into(),
        rules_version: 0,
        issuer_seq_seen: 0,
        regulator_seq_seen: 0,
    })
}

/// The regulator's event suspending `market` from `from_seq` on.
pub fn suspend(market: &str, from_seq: u64) -> Kind {
    Kind::MarketSuspended(MarketSuspended {
        market: market.into(),
        from_seq,
        reason: "test suspension".into(),
    })
}

/// The regulator's event moving `market` to `new_key` from `effective_seq` on.
pub fn rotate(market: &str, new_key: &SigningKey, effective_seq: u64) -> Kind {
    Kind::KeyRotated(KeyRotated {
        market: market.into(),
        new_public_key: new_key.verifying_key().to_bytes().to_vec(),
        effective_seq,
    })
}

/// A lot of `amount unit` of `product`, judged at `at_ms`, with no stated category.
pub fn lot(product: &str, amount: &str, unit: &str, at_ms: i64) -> Lot {
    Lot {
        product: product.into(),
        category: None,
        quantity: qty(amount, unit),
        at_ms,
    }
}

/// Admits `signed` without clock bounds and, when it is the next entry of its log, applies
/// it. Returns what admission found.
///
/// # Errors
/// What [`Ledger::admit`] refuses.
pub fn admit(ledger: &mut Ledger, signed: SignedEntry) -> Result<Admission, AdmitError> {
    let admission = ledger.admit(signed, None)?;
    if let Admission::Next(verified) = &admission {
        ledger.apply(verified);
    }
    Ok(admission)
}

/// Admits and applies `signed`, which must be the next entry of its log.
///
/// # Panics
/// If admission refuses the entry or does not find it to be the next one.
pub fn append(ledger: &mut Ledger, signed: SignedEntry) {
    match admit(ledger, signed) {
        Ok(Admission::Next(_)) => {}
        other => panic!("expected the next entry to be admitted, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t0_is_half_past_nine_in_the_morning_cst() {
        assert_eq!(T0, crate::time::from_cst(2026, 12, 4, 9, 30, 0));
    }

    #[test]
    fn the_sample_report_is_valid() {
        assert_eq!(crate::validate::report(&sample_report(T0), None), Ok(()));
    }
}
