//! The portable report: a report's signed entry, verbatim, in a form that fits a QR code and
//! survives being typed. It is `HR1` followed by the RFC 4648 base32 encoding (no padding) of
//! the protobuf-encoded `SignedEntry`. Base32's alphabet is within the QR alphanumeric set, so
//! a QR code holding `HTTP://HOST/T/<token>` is compact, opens the report page on a phone, and
//! still carries everything needed to verify the report offline.

use data_encoding::BASE32_NOPAD;
use prost::Message;

use crate::pb::SignedEntry;

/// Every token starts with this.
pub const PREFIX: &str = "HR1";
/// Longest token accepted, in characters.
pub const MAX_TOKEN_CHARS: usize = 3 + (crate::format::MAX_BODY_LEN + 128) * 8 / 5 + 8;

/// Why a text is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// It does not start with `HR1`.
    #[error("not a Huren report token (it should start with HR1)")]
    NoPrefix,
    /// Over [`MAX_TOKEN_CHARS`].
    #[error("token is too long")]
    TooLong,
    /// Not base32, or not a signed entry.
    #[error("token is damaged: {0}")]
    Damaged(String),
}

/// Encodes a signed entry as a token.
pub fn encode(signed: &SignedEntry) -> String {
    format!("{PREFIX}{}", BASE32_NOPAD.encode(&signed.encode_to_vec()))
}

/// Decodes a token, or a link whose last path segment is one (as in a scanned QR code).
/// Letter case does not matter.
///
/// # Errors
/// [`TokenError`] when the text is not a whole, undamaged token. The signature is not checked
/// here; that is the verdict's job.
pub fn decode(text: &str) -> Result<SignedEntry, TokenError> {
    let text = text.trim();
    if text.len() > MAX_TOKEN_CHARS + 256 {
        return Err(TokenError::TooLong);
    }
    let last = text.rsplit('/').next().unwrap_or(text);
    let upper = last.to_ascii_uppercase();
    let body = upper.strip_prefix(PREFIX).ok_or(TokenError::NoPrefix)?;
    if upper.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::TooLong);
    }
    let bytes = BASE32_NOPAD
        .decode(body.as_bytes())
        .map_err(|e| TokenError::Damaged(e.to_string()))?;
    let signed =
        SignedEntry::decode(bytes.as_slice()).map_err(|e| TokenError::Damaged(e.to_string()))?;
    if signed.signature.len() != 64 || signed.body.is_empty() {
        return Err(TokenError::Damaged("no signed entry inside".into()));
    }
    Ok(signed)
}

/// True when `text` looks like a token or a link to one rather than a report id.
pub fn looks_like_token(text: &str) -> bool {
    let last = text.trim().rsplit('/').next().unwrap_or("");
    last.len() > 40 && last.to_ascii_uppercase().starts_with(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_also_in_lowercase_and_inside_a_link() {
        let signed = SignedEntry {
            body: vec![1, 2, 3, 250],
            signature: vec![7; 64],
        };
        let token = encode(&signed);
        assert!(token.starts_with(PREFIX));
        assert_eq!(decode(&token), Ok(signed.clone()));
        assert_eq!(decode(&token.to_ascii_lowercase()), Ok(signed.clone()));
        assert_eq!(
            decode(&format!("HTTP://127.0.0.1:8101/T/{token}")),
            Ok(signed)
        );
    }

    #[test]
    fn damaged_tokens_are_refused() {
        assert_eq!(decode("shanxi-12"), Err(TokenError::NoPrefix));
        assert!(matches!(decode("HR1!!!"), Err(TokenError::Damaged(_))));
        let token = encode(&SignedEntry {
            body: vec![1],
            signature: vec![7; 64],
        });
        assert!(decode(&token[..token.len() - 3]).is_err());
    }
}
