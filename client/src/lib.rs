//! huren-client: everything the `huren` CLI does that is worth testing, as a library that the
//! node's devnet and the cluster tests can call too. The binary (`src/main.rs`) only parses
//! arguments, calls these modules and prints.
//!
//! - [`bench`](mod@bench): the load generator of `huren bench issue` and the node's benches, with its
//!   raw sled and signing baselines.
//! - [`audit`]: replaying a whole ledger (a node's or an export's) and checking every entry
//!   and every decision: `huren audit`.
//! - [`export`]: the export file (one self-contained file of the whole ledger) and
//!   `huren export`.
//! - [`connect`]: the typed gRPC client of a node, with timeouts, the bearer token, and
//!   errors a person can act on.
//! - [`report_json`]: the JSON form of a report, and RFC 3339 times read and written in CST.
//! - [`sample`]: a seeded generator of a realistic market day of rapid-test reports.
//! - [`regulator`]: signing regulator-log entries offline with the root key, and submitting
//!   them.
//! - [`qr`]: a report's QR code content, drawn as PNG or SVG.
//! - [`offline`]: verifying a portable token with only a trust list and a pinned key, through
//!   the shared verdict function.
//! - [`render`]: human-readable text of node replies, aligned by display width.
//! - [`json_view`]: machine-readable JSON of node replies, for `--json`.
#![deny(missing_docs)]

pub mod audit;
pub mod bench;
pub mod connect;
pub mod export;
pub mod json_view;
pub mod offline;
pub mod qr;
pub mod regulator;
pub mod render;
pub mod report_json;
pub mod sample;

pub use connect::{Client, ClientError};
