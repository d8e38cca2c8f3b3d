//! huren-node: one market's node.
//!
//! - [`config`]: the TOML config file, roles and token digests.
//! - [`clock`]: the system clock and a manual clock for tests.
//! - [`error`]: the node's error enum and its gRPC status codes.
//! - [`store`]: the sled store of signed entries and fork evidence; replay on open.
//! - [`node`]: the live ledger and the single writer with group commit.
//! - [`auth`]: bearer tokens and roles.
//! - [`service`]: the gRPC services `Ledger` and `Replication`.
//! - [`views`]: report, trace and verdict answers built from the ledger.
//! - [`replication`]: push and pull between peers, through injectable link faults.
//! - [`http`]: the HTTP server: JSON API, gate board, public report page.
//! - [`server`]: starting and stopping a whole node.
//! - [`run`]: a node from a config file, until a stop signal.
//! - [`rebuild`]: replaying a store into a fresh ledger, and the state digest.
//! - [`devnet`]: seven markets on one machine with a day of rapid tests.
#![deny(missing_docs)]

pub mod auth;
pub mod clock;
pub mod config;
pub mod devnet;
pub mod error;
pub mod http;
pub mod node;
pub mod rebuild;
pub mod replication;
pub mod run;
pub mod server;
pub mod service;
pub mod store;
pub mod views;
