//! Membership: who may sign which log, at which sequence numbers. It starts from the trust
//! list signed by the regulator's root key and moves only by entries of the regulator's log
//! (market admitted, key rotated, market suspended). Key rotations and suspensions take
//! effect at a sequence number of the market's own log, so every node and every auditor
//! reaches the same answer for an entry whatever order logs arrive in.

use std::collections::BTreeMap;

use ed25519_dalek::VerifyingKey;
use prost::Message;

use crate::format::{self, FormatError};
use crate::ids::REGULATOR_LOG;
use crate::pb::{event::Kind, Entry, Market, SignedTrustList, TrustList};

/// Why an entry's author may not sign it, or why a trust list is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The log's author is not in the trust list nor admitted since.
    #[error("{0} is not a member of the network")]
    UnknownAuthor(String),
    /// The market was suspended from a sequence number at or before this entry.
    #[error("{market} is suspended from seq {from_seq}")]
    Suspended {
        /// The market.
        market: String,
        /// First refused sequence number.
        from_seq: u64,
    },
    /// The trust list is malformed or its signature does not hold.
    #[error("trust list refused: {0}")]
    BadTrustList(String),
}

#[derive(Debug, Clone)]
struct MemberState {
    info: Market,
    /// (first seq, key), ascending by first seq.
    keys: Vec<(u64, VerifyingKey)>,
    suspended_from: Option<(u64, String)>,
}

/// The network's membership as a trust list and the regulator's log make it.
#[derive(Debug, Clone)]
pub struct Membership {
    network: String,
    regulator_key: VerifyingKey,
    members: BTreeMap<String, MemberState>,
    signed: SignedTrustList,
}

impl Membership {
    /// Checks a signed trust list against the regulator key the caller trusts (`pinned`),
    /// then builds the initial membership from it.
    ///
    /// # Errors
    /// [`MembershipError::BadTrustList`] when the document does not decode, is not signed by
    /// `pinned`, names a different regulator key, or holds a malformed or duplicate market.
    pub fn from_trust_list(
        signed: &SignedTrustList,
        pinned: &VerifyingKey,
    ) -> Result<Self, MembershipError> {
        let bad = |m: String| MembershipError::BadTrustList(m);
        format::verify_trust_list_signature(pinned, signed).map_err(|e| bad(e.to_string()))?;
        let list = TrustList::decode(signed.body.as_slice()).map_err(|e| bad(e.to_string()))?;
        if list.format != format::FORMAT_VERSION {
            return Err(bad(format!("unknown format {}", list.format)));
        }
        if list.regulator_key.as_slice() != pinned.as_bytes() {
            return Err(bad(
                "it names a different regulator key than the one pinned".into(),
            ));
        }
        let mut members = BTreeMap::new();
        for market in &list.markets {
            crate::validate::market(market).map_err(|e| bad(e.to_string()))?;
            let key =
                format::parse_public_key(&market.public_key).map_err(|e| bad(e.to_string()))?;
            let state = MemberState {
                info: market.clone(),
                keys: vec![(1, key)],
                suspended_from: None,
            };
            if members.insert(market.id.clone(), state).is_some() {
                return Err(bad(format!("market {} appears twice", market.id)));
            }
        }
        Ok(Self {
            network: list.network,
            regulator_key: *pinned,
            members,
            signed: signed.clone(),
        })
    }

    /// The signed trust list this membership started from.
    pub fn trust_list(&self) -> &SignedTrustList {
        &self.signed
    }

    /// The network's name.
    pub fn network(&self) -> &str {
        &self.network
    }

    /// The regulator's root key.
    pub fn regulator_key(&self) -> &VerifyingKey {
        &self.regulator_key
    }

    /// The key that must have signed entry `seq` of `log`.
    ///
    /// # Errors
    /// [`MembershipError::UnknownAuthor`] or [`MembershipError::Suspended`].
    pub fn key_for(&self, log: &str, seq: u64) -> Result<VerifyingKey, MembershipError> {
        if let Some((from_seq, _)) = self
            .members
            .get(log)
            .and_then(|m| m.suspended_from.as_ref())
        {
            if seq >= *from_seq {
                return Err(MembershipError::Suspended {
                    market: log.into(),
                    from_seq: *from_seq,
                });
            }
        }
        self.key_at(log, seq)
    }

    /// The key in force for entry `seq` of `log`, whether or not the market is suspended
    /// there. For replaying entries a node already accepted; new entries go through
    /// [`Membership::key_for`].
    ///
    /// # Errors
    /// [`MembershipError::UnknownAuthor`].
    pub fn key_at(&self, log: &str, seq: u64) -> Result<VerifyingKey, MembershipError> {
        if log == REGULATOR_LOG {
            return Ok(self.regulator_key);
        }
        let member = self
            .members
            .get(log)
            .ok_or_else(|| MembershipError::UnknownAuthor(log.into()))?;
        Ok(member
            .keys
            .iter()
            .rev()
            .find(|(first, _)| *first <= seq)
            .map(|(_, k)| *k)
            .unwrap_or(member.keys[0].1))
    }

    /// Every key a log's author has held, oldest first (the regulator's one key for its log);
    /// empty for an unknown author.
    pub fn keys_of(&self, log: &str) -> Vec<VerifyingKey> {
        if log == REGULATOR_LOG {
            return vec![self.regulator_key];
        }
        self.members
            .get(log)
            .map(|m| m.keys.iter().map(|(_, k)| *k).collect())
            .unwrap_or_default()
    }

    /// A market's record, if it is a member.
    pub fn market(&self, id: &str) -> Option<&Market> {
        self.members.get(id).map(|m| &m.info)
    }

    /// Every member market, by id.
    pub fn markets(&self) -> impl Iterator<Item = &Market> {
        self.members.values().map(|m| &m.info)
    }

    /// Every log name: the regulator's, then each market's.
    pub fn logs(&self) -> Vec<String> {
        std::iter::once(REGULATOR_LOG.to_string())
            .chain(self.members.keys().cloned())
            .collect()
    }

    /// When and why a market is suspended, if it is.
    pub fn suspension(&self, id: &str) -> Option<(u64, &str)> {
        self.members
            .get(id)?
            .suspended_from
            .as_ref()
            .map(|(s, r)| (*s, r.as_str()))
    }

    /// Applies an entry of the regulator's log that changes membership. Other entries are
    /// ignored. A rotation or suspension of an unknown market, or an admission of a known
    /// one, changes nothing and is reported as `Err` for the caller to log.
    ///
    /// # Errors
    /// A sentence saying why the event had no effect.
    pub fn apply(&mut self, entry: &Entry) -> Result<(), String> {
        if entry.log != REGULATOR_LOG {
            return Ok(());
        }
        let Some(kind) = entry.event.as_ref().and_then(|e| e.kind.as_ref()) else {
            return Ok(());
        };
        match kind {
            Kind::MarketAdmitted(admitted) => {
                let Some(market) = &admitted.market else {
                    return Err("no market".into());
                };
                if self.members.contains_key(&market.id) {
                    return Err(format!("{} is already a member", market.id));
                }
                let key =
                    format::parse_public_key(&market.public_key).map_err(|e| e.to_string())?;
                let state = MemberState {
                    info: market.clone(),
                    keys: vec![(1, key)],
                    suspended_from: None,
                };
                self.members.insert(market.id.clone(), state);
            }
            Kind::KeyRotated(rotation) => {
                let member = self
                    .members
                    .get_mut(&rotation.market)
                    .ok_or("unknown market")?;
                let key = format::parse_public_key(&rotation.new_public_key)
                    .map_err(|e| e.to_string())?;
                let last = member.keys.last().map(|(s, _)| *s).unwrap_or(1);
                if rotation.effective_seq <= last {
                    return Err(format!(
                        "rotation for {} at seq {} is not after the previous one at {last}",
                        rotation.market, rotation.effective_seq
                    ));
                }
                member.keys.push((rotation.effective_seq, key));
                member.info.public_key = rotation.new_public_key.clone();
            }
            Kind::MarketSuspended(suspension) => {
                let member = self
                    .members
                    .get_mut(&suspension.market)
                    .ok_or("unknown market")?;
                let from = match &member.suspended_from {
                    Some((earlier, _)) => (*earlier).min(suspension.from_seq),
                    None => suspension.from_seq,
                };
                member.suspended_from = Some((from, suspension.reason.clone()));
            }
            _ => {}
        }
        Ok(())
    }
}

/// Builds and signs a trust list with the regulator's key.
pub fn sign_trust_list(
    key: &ed25519_dalek::SigningKey,
    network: &str,
    markets: Vec<Market>,
    created_ms: i64,
) -> SignedTrustList {
    let list = TrustList {
        format: format::FORMAT_VERSION,
        network: network.into(),
        regulator_key: key.verifying_key().to_bytes().to_vec(),
        markets,
        created_ms,
    };
    format::sign_trust_list(key, list.encode_to_vec())
}

/// Reads a trust list's regulator key without trusting it, for callers that will then pin
/// it by comparing it with a key they got elsewhere.
///
/// # Errors
/// [`FormatError`] when the document or its key does not decode.
pub fn claimed_regulator_key(signed: &SignedTrustList) -> Result<VerifyingKey, FormatError> {
    let list = TrustList::decode(signed.body.as_slice())
        .map_err(|e| FormatError::Undecodable(e.to_string()))?;
    format::parse_public_key(&list.regulator_key)
}
