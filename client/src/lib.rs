//! huren-client: everything the `huren` CLI does that is worth testing, as a library that the
//! node's devnet and the cluster tests can call too. The binary (`src/main.rs`) only parses
//! arguments, calls these modules and prints.
//!
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

pub mod connect;
pub mod json_view;
pub mod offline;
pub mod qr;
pub mod regulator;
pub mod render;
pub mod report_json;
pub mod sample;

pub use connect::{Client, ClientError};
