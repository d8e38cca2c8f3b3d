//! The byte-level rules of the log: what an author signs, how an entry is hashed, and how
//! entries link into a chain. docs/FORMAT.md is the specification; this module is its only
//! implementation in the project, and every crate checks entries through it.
//!
//! It never re-encodes a body before a check: signatures and hashes are computed over the
//! bytes exactly as they were received, and decoding happens only after the signature holds.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::pb::{Entry, SignedEntry};

/// The only format version this code writes and accepts.
pub const FORMAT_VERSION: u32 = 1;

/// Domain-separation tag for entry signatures. The signed message is `tag || 0x00 || body`.
pub const ENTRY_SIG_TAG: &[u8] = b"huren/v1/entry-sig";
/// Domain-separation tag for entry hashes. The hash is `SHA-256(tag || 0x00 || body)`.
pub const ENTRY_HASH_TAG: &[u8] = b"huren/v1/entry-hash";
/// Domain-separation tag for trust-list signatures.
pub const TRUST_LIST_SIG_TAG: &[u8] = b"huren/v1/trust-list";

/// Length of an entry hash in bytes.
pub const HASH_LEN: usize = 32;
/// The predecessor hash carried by the first entry (seq 1) of every log.
pub const GENESIS_PREV_HASH: [u8; HASH_LEN] = [0u8; HASH_LEN];
/// Largest encoded entry body a node accepts, in bytes.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// A 32-byte entry hash.
pub type Hash = [u8; HASH_LEN];

/// Why an entry failed a format check. Every variant means the entry must not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The body is larger than [`MAX_BODY_LEN`].
    #[error("entry body is {0} bytes, over the limit of {MAX_BODY_LEN}")]
    TooLarge(usize),
    /// The signature is not 64 bytes, or not a strict Ed25519 signature by the expected key.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The public key is not 32 bytes, or is a weak (small-order) or non-canonical point.
    #[error("bad public key: {0}")]
    BadKey(String),
    /// The body does not decode as an `Entry`.
    #[error("entry body does not decode: {0}")]
    Undecodable(String),
    /// The entry declares a format version this code does not know.
    #[error("unknown format version {0}")]
    UnknownVersion(u32),
    /// The entry is not the one expected at this place in its log.
    #[error("broken chain: {0}")]
    BrokenChain(String),
}

/// Parses a 32-byte Ed25519 public key, refusing weak (small-order) keys.
///
/// # Errors
/// [`FormatError::BadKey`] if the bytes are not a valid, strong public key.
pub fn parse_public_key(bytes: &[u8]) -> Result<VerifyingKey, FormatError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|_| FormatError::BadKey(format!("{} bytes, want 32", bytes.len())))?;
    let key = VerifyingKey::from_bytes(&array)
        .map_err(|_| FormatError::BadKey("not a point on the curve".into()))?;
    if key.is_weak() {
        return Err(FormatError::BadKey("small-order key".into()));
    }
    // A non-canonical encoding (y ≥ p) decompresses but re-encodes differently. Compare with
    // the point's own encoding: `key.to_bytes()` only echoes the bytes it was given.
    if key.to_edwards().compress().to_bytes() != array {
        return Err(FormatError::BadKey("non-canonical encoding".into()));
    }
    Ok(key)
}

fn tagged(tag: &[u8], body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(tag.len() + 1 + body.len());
    message.extend_from_slice(tag);
    message.push(0);
    message.extend_from_slice(body);
    message
}

/// The hash of an entry body: `SHA-256("huren/v1/entry-hash" || 0x00 || body)`.
pub fn entry_hash(body: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(ENTRY_HASH_TAG);
    hasher.update([0u8]);
    hasher.update(body);
    hasher.finalize().into()
}

/// Encodes and signs an entry. The returned bytes are what must be stored and sent.
pub fn sign_entry(key: &SigningKey, entry: &Entry) -> SignedEntry {
    let body = entry.encode_to_vec();
    let signature = key.sign(&tagged(ENTRY_SIG_TAG, &body));
    SignedEntry {
        body,
        signature: signature.to_bytes().to_vec(),
    }
}

/// Checks the signature on `signed` against `key`, strictly (RFC 8032 canonical S, no
/// small-order R or key), over the body bytes as received.
///
/// # Errors
/// [`FormatError::TooLarge`] or [`FormatError::BadSignature`].
pub fn verify_signature(key: &VerifyingKey, signed: &SignedEntry) -> Result<(), FormatError> {
    if signed.body.len() > MAX_BODY_LEN {
        return Err(FormatError::TooLarge(signed.body.len()));
    }
    let signature = parse_signature(&signed.signature)?;
    key.verify_strict(&tagged(ENTRY_SIG_TAG, &signed.body), &signature)
        .map_err(|_| FormatError::BadSignature("does not verify under the author's key".into()))
}

/// Parses a 64-byte signature; a non-canonical `s` is refused here.
///
/// # Errors
/// [`FormatError::BadSignature`] for a wrong length or a non-canonical scalar.
pub fn parse_signature(bytes: &[u8]) -> Result<Signature, FormatError> {
    let array: [u8; 64] = bytes
        .try_into()
        .map_err(|_| FormatError::BadSignature(format!("{} bytes, want 64", bytes.len())))?;
    // from_bytes accepts any s; the strict verify below rejects non-canonical ones, and so do
    // we, before spending a verification on it.
    let s: [u8; 32] = array[32..]
        .try_into()
        .expect("a 64-byte array has 32 bytes after 32");
    if !is_canonical_scalar(&s) {
        return Err(FormatError::BadSignature("non-canonical s".into()));
    }
    Ok(Signature::from_bytes(&array))
}

/// True when the little-endian 256-bit number `s` is below the group order ℓ.
fn is_canonical_scalar(s: &[u8; 32]) -> bool {
    // ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];
    for i in (0..32).rev() {
        if s[i] != L[i] {
            return s[i] < L[i];
        }
    }
    false
}

/// Decodes a body whose signature has already been checked, and checks its version.
///
/// # Errors
/// [`FormatError::Undecodable`] or [`FormatError::UnknownVersion`].
pub fn decode_entry(body: &[u8]) -> Result<Entry, FormatError> {
    if body.len() > MAX_BODY_LEN {
        return Err(FormatError::TooLarge(body.len()));
    }
    let entry = Entry::decode(body).map_err(|e| FormatError::Undecodable(e.to_string()))?;
    if entry.format != FORMAT_VERSION {
        return Err(FormatError::UnknownVersion(entry.format));
    }
    if entry.seq == 0 {
        return Err(FormatError::Undecodable(
            "seq 0; sequence numbers start at 1".into(),
        ));
    }
    if entry.prev_hash.len() != HASH_LEN {
        return Err(FormatError::Undecodable(format!(
            "prev_hash is {} bytes, want {HASH_LEN}",
            entry.prev_hash.len()
        )));
    }
    Ok(entry)
}

/// Checks that `entry` is the next entry after a log head (`head_seq`, `head_hash`): the
/// next sequence number, and the head's hash as its predecessor. An empty log has head 0 and
/// the hash [`GENESIS_PREV_HASH`].
///
/// # Errors
/// [`FormatError::BrokenChain`] naming what does not match.
pub fn check_link(head_seq: u64, head_hash: &Hash, entry: &Entry) -> Result<(), FormatError> {
    if entry.seq != head_seq + 1 {
        return Err(FormatError::BrokenChain(format!(
            "log {} expects seq {}, entry has {}",
            entry.log,
            head_seq + 1,
            entry.seq
        )));
    }
    if entry.prev_hash.as_slice() != head_hash.as_slice() {
        return Err(FormatError::BrokenChain(format!(
            "log {} seq {}: prev_hash {} is not the hash of seq {} ({})",
            entry.log,
            entry.seq,
            hex::encode(&entry.prev_hash),
            head_seq,
            hex::encode(head_hash)
        )));
    }
    Ok(())
}

/// A verified, decoded entry together with its verbatim signed form and its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEntry {
    /// The entry as the author signed it, verbatim.
    pub signed: SignedEntry,
    /// The decoded body.
    pub entry: Entry,
    /// [`entry_hash`] of the body.
    pub hash: Hash,
}

impl VerifiedEntry {
    /// Checks `signed` against `key` and decodes it.
    ///
    /// # Errors
    /// Any [`FormatError`] from [`verify_signature`] or [`decode_entry`].
    pub fn verify(key: &VerifyingKey, signed: SignedEntry) -> Result<Self, FormatError> {
        verify_signature(key, &signed)?;
        let entry = decode_entry(&signed.body)?;
        let hash = entry_hash(&signed.body);
        Ok(Self {
            signed,
            entry,
            hash,
        })
    }

    /// Decodes an entry read back from this node's own store, where it was verified before it
    /// was written. The hash is recomputed, so a changed body still shows as a broken link.
    ///
    /// # Errors
    /// [`FormatError::Undecodable`] or [`FormatError::UnknownVersion`].
    pub fn from_trusted_store(signed: SignedEntry) -> Result<Self, FormatError> {
        let entry = decode_entry(&signed.body)?;
        let hash = entry_hash(&signed.body);
        Ok(Self {
            signed,
            entry,
            hash,
        })
    }
}

/// Signs a trust list body with the regulator's root key.
pub fn sign_trust_list(key: &SigningKey, body: Vec<u8>) -> crate::pb::SignedTrustList {
    let signature = key.sign(&tagged(TRUST_LIST_SIG_TAG, &body));
    crate::pb::SignedTrustList {
        body,
        signature: signature.to_bytes().to_vec(),
    }
}

/// Checks a trust list signature against `key`, strictly.
///
/// # Errors
/// [`FormatError::BadSignature`].
pub fn verify_trust_list_signature(
    key: &VerifyingKey,
    signed: &crate::pb::SignedTrustList,
) -> Result<(), FormatError> {
    let signature = parse_signature(&signed.signature)?;
    key.verify_strict(&tagged(TRUST_LIST_SIG_TAG, &signed.body), &signature)
        .map_err(|_| FormatError::BadSignature("trust list does not verify".into()))
}
