//! Who may write. Every write call carries `authorization: Bearer <token>`; the node keeps
//! only SHA-256 digests of the tokens it accepts, each with a holder name and one role.
//! Reads are open. A token never appears in a log line or an error message: the holder's
//! name does.

use std::collections::HashMap;

use crate::config::{token_digest, Role, TokenEntry};
use crate::error::NodeError;

/// The tokens a node accepts.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    by_digest: HashMap<String, (String, Role)>,
}

impl Auth {
    /// From the config's token list.
    pub fn new(tokens: &[TokenEntry]) -> Self {
        let by_digest = tokens
            .iter()
            .map(|t| (t.sha256.to_ascii_lowercase(), (t.name.clone(), t.role)))
            .collect();
        Self { by_digest }
    }

    /// Checks a request's bearer token for `role`; returns the holder's name.
    ///
    /// # Errors
    /// [`NodeError::Unauthenticated`] when there is no token or it is unknown,
    /// [`NodeError::PermissionDenied`] when its role is another.
    pub fn check(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        role: Role,
    ) -> Result<String, NodeError> {
        let header = metadata.get("authorization").ok_or_else(|| {
            NodeError::Unauthenticated(format!(
                "this call needs a bearer token with role {}",
                role.as_str()
            ))
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| {
                NodeError::Unauthenticated("authorization must be `Bearer <token>`".into())
            })?;
        let (name, held) = self
            .by_digest
            .get(&token_digest(token))
            .ok_or_else(|| NodeError::Unauthenticated("unknown token".into()))?;
        if *held != role {
            return Err(NodeError::PermissionDenied(format!(
                "token of {name} has role {}, this call needs {}",
                held.as_str(),
                role.as_str()
            )));
        }
        Ok(name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(value: Option<&str>) -> tonic::metadata::MetadataMap {
        let mut m = tonic::metadata::MetadataMap::new();
        if let Some(v) = value {
            m.insert("authorization", v.parse().unwrap());
        }
        m
    }

    #[test]
    fn a_write_needs_a_known_token_of_the_right_role() {
        let auth = Auth::new(&[TokenEntry {
            name: "lab".into(),
            role: Role::Issuer,
            sha256: token_digest("s3cret"),
        }]);
        assert_eq!(
            auth.check(&metadata(Some("Bearer s3cret")), Role::Issuer)
                .unwrap(),
            "lab"
        );
        assert!(matches!(
            auth.check(&metadata(None), Role::Issuer),
            Err(NodeError::Unauthenticated(_))
        ));
        assert!(matches!(
            auth.check(&metadata(Some("Bearer wrong")), Role::Issuer),
            Err(NodeError::Unauthenticated(_))
        ));
        let denied = auth
            .check(&metadata(Some("Bearer s3cret")), Role::Intake)
            .unwrap_err();
        assert!(matches!(denied, NodeError::PermissionDenied(_)));
        assert!(
            !denied.to_string().contains("s3cret"),
            "errors never carry the token"
        );
    }
}
