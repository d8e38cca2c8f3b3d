//! The typed client of one node's `Ledger` gRPC service. It owns the connection (a tonic
//! channel with connect and request timeouts), the bearer token that writes need, and the
//! translation of gRPC status codes into [`ClientError`], whose one-line messages say what a
//! person can do about the failure.
//!
//! It never prints, logs or puts into an error message the token it carries, and it does not
//! retry on its own: whether a write may be repeated is the caller's call (with the same
//! request id).

use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};

use huren_proto::pb::{self, ledger_client::LedgerClient};

/// The node address used when none is given.
pub const DEFAULT_NODE: &str = "http://127.0.0.1:7101";

/// Largest reply accepted from a node, in bytes (a log range or a long report list).
pub const MAX_REPLY_BYTES: usize = 64 * 1024 * 1024;

/// How long to wait for a connection and for each call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Time allowed to open the TCP and HTTP/2 connection.
    pub connect: Duration,
    /// Time allowed for one call, from request to complete reply.
    pub request: Duration,
}

impl Default for Timeouts {
    /// 5 s to connect, 30 s per call.
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            request: Duration::from_secs(30),
        }
    }
}

/// Why a call to a node failed. Each message is one sentence naming the gRPC code where there
/// is one; none contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The node URL does not parse.
    #[error("{url:?} is not a node URL like {DEFAULT_NODE}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The token holds characters that cannot travel in an HTTP header.
    #[error("the token cannot be sent: it must be printable ASCII without spaces")]
    BadToken,
    /// No connection could be made.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The node URL.
        url: String,
        /// The transport's explanation.
        reason: String,
    },
    /// The node needs a token, or did not accept the one given.
    #[error("node refused the token (UNAUTHENTICATED): {0}")]
    Unauthenticated(String),
    /// The token is valid but its role does not allow this call.
    #[error("the token's role does not allow this (PERMISSION_DENIED): {0}")]
    PermissionDenied(String),
    /// The node found a field of the request malformed; the message names it.
    #[error("node rejected the request (INVALID_ARGUMENT): {0}")]
    InvalidArgument(String),
    /// The report, log or entry asked for is not held by the node.
    #[error("not found (NOT_FOUND): {0}")]
    NotFound(String),
    /// The request conflicts with the ledger's state (for example a log that is frozen or a
    /// chain that moved on); reading the state again and retrying may succeed.
    #[error("node refused the request ({code}): {message}")]
    Conflict {
        /// The gRPC code name (FAILED_PRECONDITION, ALREADY_EXISTS or ABORTED).
        code: &'static str,
        /// The node's message.
        message: String,
    },
    /// The node is overloaded, halted or the connection broke; retry later.
    #[error("node at {url} is unavailable (UNAVAILABLE): {message}")]
    Unavailable {
        /// The node URL.
        url: String,
        /// The node's or the transport's message.
        message: String,
    },
    /// The call broke off before the node answered (the connection dropped, or the call was
    /// cancelled): a write may or may not have been applied. Retry it with the same request id.
    #[error(
        "no answer from {url} ({code}: {message}); whether the request was applied is unknown"
    )]
    Interrupted {
        /// The node URL.
        url: String,
        /// The gRPC code name (UNKNOWN or CANCELLED).
        code: &'static str,
        /// The node's or the transport's message.
        message: String,
    },
    /// The call did not complete in time; like [`ClientError::Interrupted`], a write may or
    /// may not have been applied.
    #[error("node at {url} did not answer in time (DEADLINE_EXCEEDED): {message}")]
    Timeout {
        /// The node URL.
        url: String,
        /// The message.
        message: String,
    },
    /// The node failed in a way the caller cannot fix (INTERNAL, UNKNOWN, ...).
    #[error("node error ({code}): {message}")]
    Node {
        /// The gRPC code name.
        code: &'static str,
        /// The node's message.
        message: String,
    },
    /// The node answered, but without a part the protocol requires.
    #[error("the node's reply is incomplete: {0}")]
    BadReply(String),
}

impl ClientError {
    /// True when the same call may succeed later unchanged (no connection, unavailable,
    /// interrupted, timed out). A write that failed so may have been applied: retried, it
    /// must reuse its request id.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. }
                | Self::Unavailable { .. }
                | Self::Interrupted { .. }
                | Self::Timeout { .. }
        )
    }

    /// Translates a gRPC status from the node at `url`.
    pub fn from_status(url: &str, status: &Status) -> Self {
        let message = one_line(status.message());
        match status.code() {
            Code::Unauthenticated => Self::Unauthenticated(message),
            Code::PermissionDenied => Self::PermissionDenied(message),
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument(message),
            Code::NotFound => Self::NotFound(message),
            Code::FailedPrecondition | Code::AlreadyExists | Code::Aborted => Self::Conflict {
                code: code_name(status.code()),
                message,
            },
            Code::Unavailable | Code::ResourceExhausted => Self::Unavailable {
                url: url.to_string(),
                message,
            },
            // tonic reports a connection that broke mid-call as UNKNOWN "transport error":
            // that is no answer, not the node's failure.
            Code::Cancelled => Self::Interrupted {
                url: url.to_string(),
                code: code_name(Code::Cancelled),
                message,
            },
            Code::Unknown if is_transport_failure(status) => Self::Interrupted {
                url: url.to_string(),
                code: code_name(Code::Unknown),
                message,
            },
            Code::DeadlineExceeded => Self::Timeout {
                url: url.to_string(),
                message,
            },
            code => Self::Node {
                code: code_name(code),
                message,
            },
        }
    }
}

/// True when an UNKNOWN status stands for a broken connection rather than an answer: its
/// source is a tonic transport error, or its message says so.
fn is_transport_failure(status: &Status) -> bool {
    use std::error::Error as _;

    let mut next = status.source();
    while let Some(cause) = next {
        if cause.is::<tonic::transport::Error>() || cause.is::<std::io::Error>() {
            return true;
        }
        next = cause.source();
    }
    let message = status.message().to_ascii_lowercase();
    [
        "transport",
        "connection",
        "broken pipe",
        "h2 protocol error",
    ]
    .iter()
    .any(|word| message.contains(word))
}

/// The canonical upper-case name of a gRPC code, as in the gRPC specification.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

fn one_line(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(no message)".into();
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The chain of causes of an error, joined with ": ", on one line.
fn causes(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut next = error.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = cause.source();
    }
    one_line(&parts.join(": "))
}

/// Adds `authorization: Bearer <token>` to every request when a token is set.
#[derive(Clone)]
pub struct BearerAuth {
    header: Option<MetadataValue<Ascii>>,
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: show only whether there is one.
        f.debug_struct("BearerAuth")
            .field("token", &self.header.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl BearerAuth {
    /// An interceptor for `token`, or one that adds nothing.
    ///
    /// # Errors
    /// [`ClientError::BadToken`] if the token is empty or cannot be an HTTP header value.
    pub fn new(token: Option<&str>) -> Result<Self, ClientError> {
        let header = match token {
            None => None,
            Some(token) => {
                let token = token.trim();
                if token.is_empty() || token.chars().any(|c| !c.is_ascii_graphic()) {
                    return Err(ClientError::BadToken);
                }
                let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
                    .parse()
                    .map_err(|_| ClientError::BadToken)?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self { header })
    }
}

impl tonic::service::Interceptor for BearerAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.header {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The generated client with the bearer interceptor in front.
pub type RawClient = LedgerClient<InterceptedService<Channel, BearerAuth>>;

/// A connected client of one node. Cloning it is cheap and shares the connection.
#[derive(Debug, Clone)]
pub struct Client {
    url: String,
    inner: RawClient,
}

impl Client {
    /// Connects to the node at `url` (e.g. `http://127.0.0.1:7101`) with default timeouts.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`], [`ClientError::BadToken`] or [`ClientError::Unreachable`].
    pub async fn connect(url: &str, token: Option<&str>) -> Result<Self, ClientError> {
        Self::connect_with(url, token, Timeouts::default()).await
    }

    /// Connects to the node at `url` with the given timeouts.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`], [`ClientError::BadToken`] or [`ClientError::Unreachable`].
    pub async fn connect_with(
        url: &str,
        token: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        let auth = BearerAuth::new(token)?;
        let endpoint = endpoint(url, timeouts)?;
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: url.to_string(),
                reason: causes(&e),
            })?;
        Ok(Self::from_channel(url, channel, auth))
    }

    /// A client over a channel that connects on first use (no I/O here). Useful when many
    /// clients are made up front, as the devnet does.
    ///
    /// # Errors
    /// [`ClientError::BadUrl`] or [`ClientError::BadToken`].
    pub fn connect_lazy(
        url: &str,
        token: Option<&str>,
        timeouts: Timeouts,
    ) -> Result<Self, ClientError> {
        let auth = BearerAuth::new(token)?;
        let channel = endpoint(url, timeouts)?.connect_lazy();
        Ok(Self::from_channel(url, channel, auth))
    }

    fn from_channel(url: &str, channel: Channel, auth: BearerAuth) -> Self {
        let inner = LedgerClient::with_interceptor(channel, auth)
            .max_decoding_message_size(MAX_REPLY_BYTES)
            .max_encoding_message_size(MAX_REPLY_BYTES);
        Self {
            url: url.to_string(),
            inner,
        }
    }

    /// The node URL this client talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The generated client, for calls this type does not wrap.
    pub fn raw(&self) -> RawClient {
        self.inner.clone()
    }

    fn fail(&self, status: Status) -> ClientError {
        ClientError::from_status(&self.url, &status)
    }

    /// Appends a report to the node's own log (role: issuer).
    ///
    /// # Errors
    /// Any [`ClientError`]; [`ClientError::InvalidArgument`] names the field at fault.
    pub async fn issue_report(
        &self,
        request_id: &str,
        report: pb::ReportIssued,
    ) -> Result<pb::AppendResponse, ClientError> {
        let request = pb::IssueReportRequest {
            request_id: request_id.to_string(),
            report: Some(report),
        };
        let reply = self.inner.clone().issue_report(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// Revokes one of the node's own reports (role: issuer).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn revoke_report(
        &self,
        request_id: &str,
        report_id: &str,
        reason: &str,
    ) -> Result<pb::AppendResponse, ClientError> {
        let request = pb::RevokeReportRequest {
            request_id: request_id.to_string(),
            report_id: report_id.to_string(),
            reason: reason.to_string(),
        };
        let reply = self.inner.clone().revoke_report(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// Verifies a report for a lot and records the decision in the node's log (role: intake).
    ///
    /// # Errors
    /// Any [`ClientError`]. A rejection is not an error: it is a recorded verdict.
    pub async fn intake(
        &self,
        request_id: &str,
        lot: pb::LotQuery,
    ) -> Result<pb::IntakeResponse, ClientError> {
        let request = pb::IntakeRequest {
            request_id: request_id.to_string(),
            lot: Some(lot),
        };
        let reply = self.inner.clone().intake(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// Records the disposal of a positive lot (role: issuer).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn record_disposal(
        &self,
        request_id: &str,
        disposal: pb::DisposalRecorded,
    ) -> Result<pb::AppendResponse, ClientError> {
        let request = pb::RecordDisposalRequest {
            request_id: request_id.to_string(),
            disposal: Some(disposal),
        };
        let reply = self.inner.clone().record_disposal(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// Hands entries of the regulator's log, signed offline, to the node (role: regulator).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn submit_regulator_entries(
        &self,
        entries: Vec<pb::SignedEntry>,
    ) -> Result<pb::SubmitEntriesResponse, ClientError> {
        let request = pb::SubmitEntriesRequest { entries };
        let reply = self.inner.clone().submit_regulator_entries(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// One report with its current status.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown id, or any other [`ClientError`].
    pub async fn get_report(&self, report_id: &str) -> Result<pb::ReportView, ClientError> {
        let request = pb::GetReportRequest {
            report_id: report_id.to_string(),
        };
        let reply = self.inner.clone().get_report(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// Reports the node holds, newest first; `limit` 0 means the node's default.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn list_reports(
        &self,
        market: Option<&str>,
        limit: u32,
    ) -> Result<Vec<pb::ReportView>, ClientError> {
        let request = pb::ListReportsRequest {
            limit,
            market: market.unwrap_or_default().to_string(),
        };
        let reply = self.inner.clone().list_reports(request).await;
        reply
            .map(|r| r.into_inner().reports)
            .map_err(|s| self.fail(s))
    }

    /// The node's verdict on a report for a lot, recording nothing.
    ///
    /// # Errors
    /// Any [`ClientError`]. An invalid report is a verdict, not an error.
    pub async fn verify(&self, lot: pb::LotQuery) -> Result<pb::Verdict, ClientError> {
        let request = pb::VerifyRequest { lot: Some(lot) };
        let reply = self.inner.clone().verify(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// Where a report's goods went.
    ///
    /// # Errors
    /// [`ClientError::NotFound`] for an unknown id, or any other [`ClientError`].
    pub async fn trace(&self, report_id: &str) -> Result<pb::TraceResponse, ClientError> {
        let request = pb::TraceRequest {
            report_id: report_id.to_string(),
        };
        let reply = self.inner.clone().trace(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// A range of one log, verbatim; `from` 0 means 1, `limit` 0 the node's default.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn read_log(
        &self,
        log: &str,
        from: u64,
        limit: u32,
    ) -> Result<pb::ReadLogResponse, ClientError> {
        let request = pb::ReadLogRequest {
            log: log.to_string(),
            from,
            limit,
        };
        let reply = self.inner.clone().read_log(request).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// Every log's head as the node sees it.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn heads(&self) -> Result<Vec<pb::Head>, ClientError> {
        let reply = self.inner.clone().heads(pb::HeadsRequest {}).await;
        reply
            .map(|r| r.into_inner().heads)
            .map_err(|s| self.fail(s))
    }

    /// The head of one log; an empty log (or one the node does not list) has seq 0.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn head(&self, log: &str) -> Result<pb::Head, ClientError> {
        let heads = self.heads().await?;
        Ok(heads
            .into_iter()
            .find(|h| h.log == log)
            .unwrap_or_else(|| pb::Head {
                log: log.to_string(),
                ..Default::default()
            }))
    }

    /// Recorded fork evidence.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn forks(&self) -> Result<Vec<pb::ForkEvidence>, ClientError> {
        let reply = self.inner.clone().forks(pb::ForksRequest {}).await;
        reply
            .map(|r| r.into_inner().forks)
            .map_err(|s| self.fail(s))
    }

    /// The signed trust list the node runs with (its signature is not checked here).
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn trust_list(&self) -> Result<pb::SignedTrustList, ClientError> {
        let reply = self
            .inner
            .clone()
            .get_trust_list(pb::GetTrustListRequest {})
            .await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }

    /// The node's identity, heads and health.
    ///
    /// # Errors
    /// Any [`ClientError`].
    pub async fn status(&self) -> Result<pb::StatusResponse, ClientError> {
        let reply = self.inner.clone().status(pb::StatusRequest {}).await;
        reply.map(|r| r.into_inner()).map_err(|s| self.fail(s))
    }
}

fn endpoint(url: &str, timeouts: Timeouts) -> Result<Endpoint, ClientError> {
    let bad = |reason: &str| ClientError::BadUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(bad("it must start with http:// or https://"));
    }
    let endpoint = Endpoint::from_shared(url.to_string()).map_err(|e| bad(&causes(&e)))?;
    Ok(endpoint
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_become_sentences_that_name_the_code() {
        let url = "http://127.0.0.1:7101";
        let e = ClientError::from_status(url, &Status::unauthenticated("no bearer token"));
        assert_eq!(
            e.to_string(),
            "node refused the token (UNAUTHENTICATED): no bearer token"
        );
        let e = ClientError::from_status(url, &Status::unavailable("halted\nby fork"));
        assert_eq!(
            e.to_string(),
            "node at http://127.0.0.1:7101 is unavailable (UNAVAILABLE): halted by fork"
        );
        assert!(e.is_retryable());
        let e = ClientError::from_status(url, &Status::failed_precondition("frozen"));
        assert!(e.to_string().contains("FAILED_PRECONDITION"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn a_call_that_got_no_answer_is_retryable_not_a_node_failure() {
        let url = "http://127.0.0.1:7101";
        for status in [
            Status::unknown("transport error"),
            Status::unknown("error reading a body from connection: connection reset"),
            Status::cancelled("operation was canceled"),
        ] {
            let e = ClientError::from_status(url, &status);
            assert!(matches!(e, ClientError::Interrupted { .. }), "{e}");
            assert!(e.is_retryable(), "{e}");
            assert!(e
                .to_string()
                .contains("whether the request was applied is unknown"));
        }
        let e = ClientError::from_status(url, &Status::unknown("transport error"));
        assert_eq!(
            e.to_string(),
            "no answer from http://127.0.0.1:7101 (UNKNOWN: transport error); whether the \
             request was applied is unknown"
        );
        let e = ClientError::from_status(url, &Status::deadline_exceeded("timeout expired"));
        assert!(matches!(e, ClientError::Timeout { .. }) && e.is_retryable());

        // An UNKNOWN that the node itself sent is its failure, not a lost answer.
        let e = ClientError::from_status(url, &Status::unknown("panic in handler"));
        assert!(matches!(
            e,
            ClientError::Node {
                code: "UNKNOWN",
                ..
            }
        ));
        assert!(!e.is_retryable());
    }

    #[test]
    fn a_token_never_shows_in_debug_output_and_bad_ones_are_refused() {
        let auth = BearerAuth::new(Some("s3cret-token")).unwrap();
        assert!(!format!("{auth:?}").contains("s3cret"));
        assert_eq!(
            BearerAuth::new(Some("two words")).unwrap_err(),
            ClientError::BadToken
        );
        assert_eq!(
            BearerAuth::new(Some("")).unwrap_err(),
            ClientError::BadToken
        );
    }

    #[tokio::test]
    async fn an_unreachable_node_is_named_in_the_error() {
        // Port 1 on loopback: nothing listens there.
        let timeouts = Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(2),
        };
        let e = Client::connect_with("http://127.0.0.1:1", None, timeouts)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("cannot reach http://127.0.0.1:1: "),
            "{e}"
        );
        let e = Client::connect_with("127.0.0.1:7101", None, timeouts)
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::BadUrl { .. }));
    }
}
