//! The regulator's desk: building and signing entries of the regulator's log with the root
//! key, offline, and handing them to a node. The node only stores what the root key signed;
//! it never holds that key, so the chaining (next seq, previous hash) happens here, from the
//! head a node reports.
//!
//! Every event is checked with `huren_proto::validate::event` before it is signed, so a
//! malformed decision never carries the root key's signature. This module never writes the
//! key anywhere and never prints it.

use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use huren_proto::format::{self, GENESIS_PREV_HASH, HASH_LEN};
use huren_proto::ids::REGULATOR_LOG;
use huren_proto::pb::{self, event::Kind, Entry, Event, SignedEntry};

use crate::connect::{Client, ClientError};

/// Why a regulator entry could not be built, signed or stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegulatorError {
    /// The event is malformed; the message names the field.
    #[error("the event is invalid: {0}")]
    Invalid(String),
    /// The head the node reported is not usable for chaining.
    #[error("the regulator log's head is unusable: {0}")]
    BadHead(String),
    /// A markets file (for genesis) is malformed; the message names the market and field.
    #[error("markets file: {0}")]
    Markets(String),
    /// A rules file could not be read.
    #[error("rules file: {0}")]
    Rules(String),
    /// The node refused or could not be reached.
    #[error(transparent)]
    Node(#[from] ClientError),
}

/// The head of the regulator's log to chain onto: seq 0 and an empty hash for an empty log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Last sequence number held (0 for none).
    pub seq: u64,
    /// Hash of that entry.
    pub hash: [u8; HASH_LEN],
}

impl Head {
    /// The head of an empty log.
    pub fn empty() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_PREV_HASH,
        }
    }

    /// From a node's `Head` reply.
    ///
    /// # Errors
    /// [`RegulatorError::BadHead`] for a head of another log, a frozen log, or a hash that is
    /// not 32 bytes.
    pub fn from_pb(head: &pb::Head) -> Result<Self, RegulatorError> {
        if !head.log.is_empty() && head.log != REGULATOR_LOG {
            return Err(RegulatorError::BadHead(format!(
                "it is the head of log {:?}",
                head.log
            )));
        }
        if head.frozen {
            return Err(RegulatorError::BadHead(
                "the node holds a fork of the regulator's log and has frozen it".into(),
            ));
        }
        if head.seq == 0 {
            return Ok(Self::empty());
        }
        let hash: [u8; HASH_LEN] = head.hash.as_slice().try_into().map_err(|_| {
            RegulatorError::BadHead(format!("hash is {} bytes, want 32", head.hash.len()))
        })?;
        Ok(Self {
            seq: head.seq,
            hash,
        })
    }
}

/// Builds the entry that follows `head` in the regulator's log, after validating the event.
///
/// # Errors
/// [`RegulatorError::Invalid`] naming the field at fault.
pub fn next_entry(
    head: &Head,
    time_ms: i64,
    request_id: &str,
    kind: Kind,
) -> Result<Entry, RegulatorError> {
    let event = Event { kind: Some(kind) };
    huren_proto::validate::event(&event, None)
        .map_err(|e| RegulatorError::Invalid(e.to_string()))?;
    huren_proto::validate::request_id(request_id)
        .map_err(|e| RegulatorError::Invalid(e.to_string()))?;
    Ok(Entry {
        format: format::FORMAT_VERSION,
        log: REGULATOR_LOG.to_string(),
        seq: head.seq + 1,
        prev_hash: head.hash.to_vec(),
        time_ms,
        request_id: request_id.to_string(),
        event: Some(event),
    })
}

/// Signs consecutive entries for `events` after `head`, each linked to the one before, and
/// returns them with the new head.
///
/// # Errors
/// [`RegulatorError::Invalid`] if any event is malformed; nothing is signed then.
pub fn sign_chain(
    key: &SigningKey,
    head: &Head,
    time_ms: i64,
    request_id: &str,
    events: Vec<Kind>,
) -> Result<(Vec<SignedEntry>, Head), RegulatorError> {
    // Validate all first: a half-signed batch would be useless and confusing.
    for kind in &events {
        let event = Event {
            kind: Some(kind.clone()),
        };
        huren_proto::validate::event(&event, None)
            .map_err(|e| RegulatorError::Invalid(e.to_string()))?;
    }
    let mut head = head.clone();
    let mut signed = Vec::with_capacity(events.len());
    let many = events.len() > 1;
    for (n, kind) in events.into_iter().enumerate() {
        let id = match (request_id.is_empty(), many) {
            (true, _) => String::new(),
            (false, false) => request_id.to_string(),
            (false, true) => format!("{request_id}/{n}"),
        };
        let entry = next_entry(&head, time_ms, &id, kind)?;
        let s = format::sign_entry(key, &entry);
        head = Head {
            seq: entry.seq,
            hash: format::entry_hash(&s.body),
        };
        signed.push(s);
    }
    Ok((signed, head))
}

/// Recognition rules publication.
pub fn rules_published(rules: pb::Rules) -> Kind {
    Kind::RulesPublished(pb::RulesPublished { rules: Some(rules) })
}

/// The built-in default rules (`huren_proto::rules::defaults`) published as `version`.
pub fn default_rules(version: u32) -> pb::Rules {
    pb::Rules {
        version,
        ..huren_proto::rules::defaults()
    }
}

/// A market's entries from `from_seq` on are refused.
pub fn market_suspended(market: &str, from_seq: u64, reason: &str) -> Kind {
    Kind::MarketSuspended(pb::MarketSuspended {
        market: market.into(),
        from_seq,
        reason: reason.into(),
    })
}

/// A market's entries from `effective_seq` on must be signed by `new_public_key`.
pub fn key_rotated(market: &str, new_public_key: &[u8; 32], effective_seq: u64) -> Kind {
    Kind::KeyRotated(pb::KeyRotated {
        market: market.into(),
        new_public_key: new_public_key.to_vec(),
        effective_seq,
    })
}

/// A market joins the network.
pub fn market_admitted(market: pb::Market) -> Kind {
    Kind::MarketAdmitted(pb::MarketAdmitted {
        market: Some(market),
    })
}

/// The regulator withdraws a report.
pub fn report_revoked(report_id: &str, reason: &str) -> Kind {
    Kind::ReportRevoked(pb::ReportRevoked {
        report_id: report_id.into(),
        reason: reason.into(),
    })
}

/// One category of a rules file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryJson {
    /// Category code, e.g. `leafy_vegetable`.
    pub category: String,
    /// Name in Chinese.
    #[serde(default)]
    pub name_zh: String,
    /// Validity of a pass from its test time, in hours.
    pub validity_hours: u32,
    /// Item codes a report of this category must carry.
    #[serde(default)]
    pub required_items: Vec<String>,
}

/// A rules file: `{"version": 2, "clock_skew_seconds": 300, "categories": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesJson {
    /// Publication version; must be above the version in force.
    pub version: u32,
    /// Allowed issuer clock skew, seconds (default 300).
    #[serde(default = "default_skew_seconds")]
    pub clock_skew_seconds: u32,
    /// Categories.
    pub categories: Vec<CategoryJson>,
}

fn default_skew_seconds() -> u32 {
    (huren_proto::rules::DEFAULT_CLOCK_SKEW_MS / 1000) as u32
}

impl RulesJson {
    /// The protobuf rules, validated with `huren_proto::rules::validate`.
    ///
    /// # Errors
    /// [`RegulatorError::Rules`] naming the field.
    pub fn to_pb(&self) -> Result<pb::Rules, RegulatorError> {
        let rules = pb::Rules {
            version: self.version,
            categories: self
                .categories
                .iter()
                .map(|c| pb::CategoryRule {
                    category: c.category.clone(),
                    name_zh: c.name_zh.clone(),
                    validity_ms: i64::from(c.validity_hours) * 3_600_000,
                    required_items: c.required_items.clone(),
                })
                .collect(),
            clock_skew_ms: i64::from(self.clock_skew_seconds) * 1000,
        };
        huren_proto::rules::validate(&rules).map_err(|e| RegulatorError::Rules(e.to_string()))?;
        Ok(rules)
    }
}

/// Reads a JSON rules file's text.
///
/// # Errors
/// [`RegulatorError::Rules`] naming the field or position at fault.
pub fn parse_rules(text: &str) -> Result<pb::Rules, RegulatorError> {
    let json: RulesJson =
        serde_json::from_str(text).map_err(|e| RegulatorError::Rules(e.to_string()))?;
    json.to_pb()
}

/// Signs `events` after the regulator log's head as the node at `client` reports it, and
/// submits them. If another regulator entry lands between the read and the submit, the node
/// refuses the stale chain and nothing is stored; run it again.
///
/// # Errors
/// [`RegulatorError`] from validation, the head, or the node.
pub async fn submit(
    client: &Client,
    key: &SigningKey,
    time_ms: i64,
    request_id: &str,
    events: Vec<Kind>,
) -> Result<(Vec<SignedEntry>, pb::SubmitEntriesResponse), RegulatorError> {
    let head = Head::from_pb(&client.head(REGULATOR_LOG).await?)?;
    let (signed, _) = sign_chain(key, &head, time_ms, request_id, events)?;
    let reply = client.submit_regulator_entries(signed.clone()).await?;
    Ok((signed, reply))
}

/// One `[[market]]` table of a markets file for `huren genesis`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketToml {
    /// Market id: lowercase ASCII letters and digits.
    pub id: String,
    /// Name in Chinese, e.g. 山西.
    pub name_zh: String,
    /// Name in Latin letters, e.g. Shanxi.
    pub name_latin: String,
    /// Ed25519 public key, 64 hex digits (as `huren keygen` prints it).
    pub public_key: String,
    /// gRPC address, e.g. `http://127.0.0.1:7101`.
    #[serde(default)]
    pub grpc_addr: String,
    /// HTTP address for people, e.g. `http://127.0.0.1:8101`.
    #[serde(default)]
    pub http_addr: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarketsToml {
    market: Vec<MarketToml>,
}

/// Reads a markets file (`[[market]]` tables) into validated market records.
///
/// # Errors
/// [`RegulatorError::Invalid`] naming the market and field at fault, or a duplicate id.
pub fn markets_from_toml(text: &str) -> Result<Vec<pb::Market>, RegulatorError> {
    let file: MarketsToml =
        toml::from_str(text).map_err(|e| RegulatorError::Markets(e.to_string()))?;
    let mut markets: Vec<pb::Market> = Vec::with_capacity(file.market.len());
    for (n, m) in file.market.into_iter().enumerate() {
        let at =
            |message: String| RegulatorError::Markets(format!("market[{n}] ({}): {message}", m.id));
        let key = huren_proto::keyfile::parse_public_hex(&m.public_key)
            .map_err(|e| at(format!("public_key: {e}")))?;
        let market = pb::Market {
            id: m.id.clone(),
            name_zh: m.name_zh.clone(),
            name_latin: m.name_latin.clone(),
            public_key: key.to_bytes().to_vec(),
            grpc_addr: m.grpc_addr.clone(),
            http_addr: m.http_addr.clone(),
        };
        huren_proto::validate::market(&market).map_err(|e| at(e.to_string()))?;
        if markets.iter().any(|o| o.id == market.id) {
            return Err(at("appears twice".into()));
        }
        if markets.iter().any(|o| o.public_key == market.public_key) {
            return Err(at("shares its public key with another market".into()));
        }
        markets.push(market);
    }
    if markets.is_empty() {
        return Err(RegulatorError::Markets("no [[market]] in the file".into()));
    }
    Ok(markets)
}

/// Signs the genesis trust list, after checking that it reads back under the same key.
///
/// # Errors
/// [`RegulatorError::Invalid`] when the network name is empty or the list does not hold.
pub fn genesis(
    key: &SigningKey,
    network: &str,
    markets: Vec<pb::Market>,
    created_ms: i64,
) -> Result<pb::SignedTrustList, RegulatorError> {
    if network.trim().is_empty() {
        return Err(RegulatorError::Invalid("network: must not be empty".into()));
    }
    let signed = huren_proto::trust::sign_trust_list(key, network, markets, created_ms);
    huren_proto::trust::Membership::from_trust_list(&signed, &key.verifying_key())
        .map_err(|e| RegulatorError::Invalid(e.to_string()))?;
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9u8; 32])
    }

    #[test]
    fn signed_entries_chain_onto_the_head_and_verify() {
        let key = key();
        let events = vec![
            rules_published(default_rules(1)),
            market_suspended("tunhui", 120, "issued false certificates"),
            report_revoked("shanxi-17", "supervisory sample confirmed the positive"),
        ];
        let (signed, head) = sign_chain(&key, &Head::empty(), 1_000, "req-1", events).unwrap();
        assert_eq!(signed.len(), 3);
        assert_eq!(head.seq, 3);

        let (mut seq, mut hash) = (0, GENESIS_PREV_HASH);
        for s in &signed {
            format::verify_signature(&key.verifying_key(), s).unwrap();
            let entry = format::decode_entry(&s.body).unwrap();
            assert_eq!(entry.log, REGULATOR_LOG);
            format::check_link(seq, &hash, &entry).unwrap();
            seq = entry.seq;
            hash = format::entry_hash(&s.body);
        }
        assert_eq!(head.hash, hash);

        // A later batch picks up from the returned head.
        let (more, _) = sign_chain(
            &key,
            &head,
            2_000,
            "",
            vec![market_suspended("jiuzhou", 5, "x")],
        )
        .unwrap();
        let entry = format::decode_entry(&more[0].body).unwrap();
        assert_eq!((entry.seq, entry.prev_hash.as_slice()), (4, &hash[..]));
        assert_eq!(entry.request_id, "");
    }

    #[test]
    fn a_malformed_event_is_never_signed() {
        let e = sign_chain(
            &key(),
            &Head::empty(),
            1,
            "",
            vec![
                rules_published(default_rules(1)),
                market_suspended("tunhui", 0, "late"),
            ],
        )
        .unwrap_err();
        assert!(e.to_string().contains("from_seq"), "{e}");
        let e = next_entry(&Head::empty(), 1, "", rules_published(default_rules(0))).unwrap_err();
        assert!(e.to_string().contains("rules.version"), "{e}");
    }

    #[test]
    fn a_head_from_the_node_must_be_the_regulators_and_whole() {
        let mut head = pb::Head {
            log: REGULATOR_LOG.into(),
            seq: 4,
            hash: vec![1; 32],
            frozen: false,
        };
        assert_eq!(Head::from_pb(&head).unwrap().seq, 4);
        head.hash = vec![1; 31];
        assert!(Head::from_pb(&head).is_err());
        head.hash = vec![1; 32];
        head.frozen = true;
        assert!(Head::from_pb(&head).is_err());
        head.frozen = false;
        head.log = "shanxi".into();
        assert!(Head::from_pb(&head).is_err());
    }

    #[test]
    fn a_rules_file_is_read_with_hours_and_checked() {
        let text = r#"{"version": 2, "categories": [
            {"category": "leafy_vegetable", "name_zh": "叶菜类", "validity_hours": 36,
             "required_items": ["op-carbamate"]}]}"#;
        let rules = parse_rules(text).unwrap();
        assert_eq!(rules.categories[0].validity_ms, 36 * 3_600_000);
        assert_eq!(rules.clock_skew_ms, 300_000);
        let e = parse_rules(&text.replace("\"version\": 2", "\"version\": 0")).unwrap_err();
        assert!(e.to_string().contains("rules.version"));
        let e = parse_rules(&text.replace("name_zh", "label")).unwrap_err();
        assert!(e.to_string().contains("unknown field `label`"));
    }

    #[test]
    fn a_markets_file_becomes_a_signed_trust_list() {
        let key = key();
        let pk = |b: u8| {
            huren_proto::keyfile::public_hex(&SigningKey::from_bytes(&[b; 32]).verifying_key())
        };
        let text = format!(
            "[[market]]\nid = \"shanxi\"\nname_zh = \"山西\"\nname_latin = \"Shanxi\"\n\
             public_key = \"{}\"\ngrpc_addr = \"http://127.0.0.1:7101\"\n\
             http_addr = \"http://127.0.0.1:8101\"\n\n\
             [[market]]\nid = \"jiuzhou\"\nname_zh = \"九州\"\nname_latin = \"Jiuzhou\"\n\
             public_key = \"{}\"\n",
            pk(2),
            pk(3)
        );
        let markets = markets_from_toml(&text).unwrap();
        assert_eq!(markets.len(), 2);
        let signed = genesis(&key, "taiyuan", markets, 1).unwrap();
        let membership =
            huren_proto::trust::Membership::from_trust_list(&signed, &key.verifying_key()).unwrap();
        assert_eq!(membership.market("shanxi").unwrap().name_zh, "山西");

        let twice = text.replace("\"jiuzhou\"", "\"shanxi\"");
        assert!(markets_from_toml(&twice)
            .unwrap_err()
            .to_string()
            .contains("twice"));
        let bad_id = text.replace("\"jiuzhou\"", "\"Jiu Zhou\"");
        assert!(markets_from_toml(&bad_id)
            .unwrap_err()
            .to_string()
            .contains("market.id"));
        let bad_key = text.replace(&pk(3), "abcd");
        assert!(markets_from_toml(&bad_key)
            .unwrap_err()
            .to_string()
            .contains("public_key"));
    }
}
