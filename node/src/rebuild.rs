//! `huren-node rebuild`: the node's state is a projection of its logs, and this proves it on
//! demand. It replays a stopped node's store from the first entry of every log (checking every
//! signature and link) into a fresh ledger and prints what it found and a digest of the state,
//! which a running node reports too (see `Node::state_digest`), so the two can be compared.

use huren_proto::ledger::Ledger;
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::NodeError;
use crate::store::Store;

/// SHA-256 over a ledger's snapshot at `at_ms`, hex.
pub fn digest(ledger: &Ledger, at_ms: i64) -> String {
    let mut hasher = Sha256::new();
    for line in ledger.snapshot(at_ms) {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    hex::encode(hasher.finalize())
}

/// Replays the store of the node `config` describes and summarises the rebuilt state.
///
/// # Errors
/// [`NodeError`] when the store is in use, or an entry does not verify or link.
pub fn rebuild(config: &Config) -> Result<String, NodeError> {
    let membership = crate::run::load_membership(&config.trust_list, &config.regulator_key)?;
    let store = Store::open(&config.data_dir)?;
    let started = std::time::Instant::now();
    let ledger = store.replay(membership)?;
    let elapsed = started.elapsed();
    let mut out = String::new();
    let mut total = 0;
    for (log, seq, _, frozen) in ledger.heads() {
        total += seq;
        let frozen = frozen
            .map(|s| format!(" (frozen by a fork at seq {s})"))
            .unwrap_or_default();
        out.push_str(&format!("{log:<12} {seq:>9} entries{frozen}\n"));
    }
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    out.push_str(&format!(
        "replayed {total} entries in {:.2} s: {} reports, {} forks, rules version {}\nstate digest at {}: {}",
        elapsed.as_secs_f64(),
        ledger.report_count(),
        ledger.forks().len(),
        ledger.rules().version,
        huren_proto::time::cst(now),
        digest(&ledger, now)
    ));
    Ok(out)
}
