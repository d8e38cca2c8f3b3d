//! huren-proto: the Huren log format and the rules every party applies to it.
//!
//! Every other crate (the node, the CLI, the auditor) depends on this one, so that signing,
//! hashing, chain checks, membership, the ledger projection and the verdict exist once.
//!
//! - [`pb`]: protobuf types and gRPC stubs generated from `proto/huren/v1/*.proto`.
//! - [`format`](mod@format): signing bytes, hashing, domain separation, strict Ed25519, chains.
//! - [`ids`]: market ids, the regulator's log name, report ids.
//! - [`keyfile`]: secret key files and public keys in hex.
//! - [`quantity`]: exact quantities and unit conversion.
//! - [`validate`]: field validation of every event.
//! - [`rules`]: recognition rules and their documented defaults.
//! - [`trust`]: the signed trust list and membership over time.
//! - [`ledger`]: the projection of all logs, admission of entries, and the verdict function.
//! - [`token`]: the portable report token carried in a QR code.
//! - [`time`]: UTC instants shown in China Standard Time.
//! - `testkit` (feature `testkit`, and in this crate's tests): fixed keys and a small signed
//!   network for tests of every crate.
#![deny(missing_docs)]

/// Generated protobuf messages and gRPC clients and servers.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("huren.v1");

    /// Encoded file descriptors, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("huren_descriptor");

    impl event::Kind {
        /// The event's name as the JSON API and the auditor's summary write it, the field name
        /// in `log.proto`: `report_issued`, `intake_accepted`, ...
        pub fn name(&self) -> &'static str {
            match self {
                event::Kind::ReportIssued(_) => "report_issued",
                event::Kind::ReportRevoked(_) => "report_revoked",
                event::Kind::IntakeAccepted(_) => "intake_accepted",
                event::Kind::IntakeRejected(_) => "intake_rejected",
                event::Kind::DisposalRecorded(_) => "disposal_recorded",
                event::Kind::MarketAdmitted(_) => "market_admitted",
                event::Kind::KeyRotated(_) => "key_rotated",
                event::Kind::MarketSuspended(_) => "market_suspended",
                event::Kind::RulesPublished(_) => "rules_published",
            }
        }
    }
}

pub mod format;
pub mod ids;
pub mod keyfile;
pub mod ledger;
pub mod quantity;
pub mod rules;
pub mod time;
pub mod token;
pub mod trust;
pub mod validate;

#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
