//! The node's error type: one enum whose variants say who is at fault and what a caller can
//! do, and its mapping onto gRPC status codes. Messages name the field or the id at fault and
//! never carry a key or a token.

use huren_proto::ledger::AdmitError;
use huren_proto::validate::FieldError;

/// Anything a node operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed; `field` names the part at fault.
    #[error("{field}: {message}")]
    BadInput {
        /// Dotted field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The thing asked for does not exist here.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what is recorded (e.g. a request id reused for other data).
    #[error("{0}")]
    Conflict(String),
    /// The state does not allow it now (e.g. revoking a revoked report, a halted node).
    #[error("{0}")]
    Precondition(String),
    /// No token, or a token this node does not know.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known token without the role this call needs.
    #[error("{0}")]
    PermissionDenied(String),
    /// Try again later: shutting down, overloaded, or a peer is slowed down.
    #[error("{0}")]
    Unavailable(String),
    /// An entry failed its checks and was not stored.
    #[error("entry refused: {0}")]
    Refused(#[from] AdmitError),
    /// Our own storage failed or holds something that does not verify. Not the caller's
    /// fault; the operator must look.
    #[error("storage: {0}")]
    Storage(String),
}

impl From<FieldError> for NodeError {
    fn from(e: FieldError) -> Self {
        NodeError::BadInput {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<sled::Error> for NodeError {
    fn from(e: sled::Error) -> Self {
        NodeError::Storage(e.to_string())
    }
}

impl From<NodeError> for tonic::Status {
    fn from(e: NodeError) -> Self {
        let message = e.to_string();
        match e {
            NodeError::BadInput { .. } => tonic::Status::invalid_argument(message),
            NodeError::NotFound(_) => tonic::Status::not_found(message),
            NodeError::Conflict(_) => tonic::Status::already_exists(message),
            NodeError::Precondition(_) => tonic::Status::failed_precondition(message),
            NodeError::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            NodeError::PermissionDenied(_) => tonic::Status::permission_denied(message),
            NodeError::Unavailable(_) => tonic::Status::unavailable(message),
            NodeError::Refused(AdmitError::Invalid(_)) => tonic::Status::invalid_argument(message),
            NodeError::Refused(AdmitError::Membership(_)) => {
                tonic::Status::permission_denied(message)
            }
            NodeError::Refused(_) => tonic::Status::failed_precondition(message),
            NodeError::Storage(_) => tonic::Status::internal(message),
        }
    }
}
