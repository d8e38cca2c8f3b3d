//! The node's durable store, on sled. It owns the bytes on disk: every log's signed entries,
//! verbatim, keyed by log and sequence number, and recorded fork evidence. Heads and indexes
//! (report ids, request ids) are not stored beside the entries: they are rebuilt from the
//! entries on open, so an entry and everything derived from it can never disagree after a
//! crash.
//!
//! The store never decides whether an entry may be stored; the writer does that through
//! [`huren_proto::ledger::Ledger::admit`]. It never reports a write as done before
//! [`Store::flush`] returned.

use std::path::Path;

use huren_proto::ids::REGULATOR_LOG;
use huren_proto::ledger::Ledger;
use huren_proto::pb::{ForkEvidence, SignedEntry};
use huren_proto::trust::Membership;
use prost::Message;
use rayon::prelude::*;

use crate::error::NodeError;

/// Entries verified together when replaying the store on open.
const REPLAY_CHUNK: usize = 4096;

/// The sled database of one node.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    entries: sled::Tree,
    forks: sled::Tree,
}

fn entry_key(log: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(log.len() + 9);
    key.extend_from_slice(log.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

impl Store {
    /// Opens (or creates) the store in `dir`.
    ///
    /// # Errors
    /// [`NodeError::Storage`] when sled cannot open it (for example, another process holds it).
    pub fn open(dir: &Path) -> Result<Self, NodeError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| NodeError::Storage(format!("{}: {e}", dir.display())))?;
        let db = sled::Config::new()
            .path(dir.join("sled"))
            .mode(sled::Mode::HighThroughput)
            .open()
            .map_err(|e| NodeError::Storage(format!("{}: {e}", dir.display())))?;
        let entries = db.open_tree("entries")?;
        let forks = db.open_tree("forks")?;
        Ok(Self { db, entries, forks })
    }

    /// Adds an entry to a batch of writes; nothing is written until [`Store::commit`].
    pub fn stage(batch: &mut sled::Batch, log: &str, seq: u64, signed: &SignedEntry) {
        batch.insert(entry_key(log, seq), signed.encode_to_vec());
    }

    /// Applies a batch atomically: all of its entries are written or none. Not yet durable.
    ///
    /// # Errors
    /// [`NodeError::Storage`].
    pub fn commit(&self, batch: sled::Batch) -> Result<(), NodeError> {
        Ok(self.entries.apply_batch(batch)?)
    }

    /// Makes every committed write durable. Many commits share one flush (group commit).
    ///
    /// This runs sled's blocking `flush` on a blocking thread: sled 0.34's `flush_async` can
    /// leave its future unwoken when several databases in one process flush at once (as the
    /// seven nodes of a devnet do), which hangs the writer.
    ///
    /// # Errors
    /// [`NodeError::Storage`].
    pub async fn flush(&self) -> Result<(), NodeError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| NodeError::Storage(format!("flush task failed: {e}")))??;
        Ok(())
    }

    /// One entry, verbatim.
    ///
    /// # Errors
    /// [`NodeError::Storage`] when the disk fails or the stored bytes do not decode.
    pub fn get(&self, log: &str, seq: u64) -> Result<Option<SignedEntry>, NodeError> {
        match self.entries.get(entry_key(log, seq))? {
            Some(bytes) => Ok(Some(decode_stored(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Entries `from..=upto` of `log` (at most `limit` of them and about `max_bytes`).
    ///
    /// # Errors
    /// [`NodeError::Storage`].
    pub fn range(
        &self,
        log: &str,
        from: u64,
        upto: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<SignedEntry>, NodeError> {
        let mut out = Vec::new();
        if from > upto {
            return Ok(out);
        }
        let mut bytes = 0;
        for item in self
            .entries
            .range(entry_key(log, from)..=entry_key(log, upto))
        {
            let (_, value) = item?;
            bytes += value.len();
            out.push(decode_stored(&value)?);
            if out.len() >= limit || bytes >= max_bytes {
                break;
            }
        }
        Ok(out)
    }

    /// Stores fork evidence; storing the same evidence twice keeps one copy.
    ///
    /// # Errors
    /// [`NodeError::Storage`].
    pub fn put_fork(&self, evidence: &ForkEvidence) -> Result<(), NodeError> {
        let mut bodies: Vec<&[u8]> = [&evidence.first, &evidence.second]
            .iter()
            .filter_map(|e| e.as_ref().map(|e| e.body.as_slice()))
            .collect();
        bodies.sort();
        let key = huren_proto::format::entry_hash(&bodies.concat());
        self.forks.insert(key, evidence.encode_to_vec())?;
        Ok(())
    }

    /// All recorded fork evidence.
    ///
    /// # Errors
    /// [`NodeError::Storage`].
    pub fn forks(&self) -> Result<Vec<ForkEvidence>, NodeError> {
        self.forks
            .iter()
            .values()
            .map(|v| {
                let v = v?;
                ForkEvidence::decode(v.as_ref())
                    .map_err(|e| NodeError::Storage(format!("fork evidence does not decode: {e}")))
            })
            .collect()
    }

    /// The log names that have entries in this store.
    ///
    /// # Errors
    /// [`NodeError::Storage`].
    pub fn logs(&self) -> Result<Vec<String>, NodeError> {
        let mut logs = Vec::new();
        let mut start: Vec<u8> = Vec::new();
        loop {
            let Some((key, _)) = self.entries.range(start.clone()..).next().transpose()? else {
                break;
            };
            let end = key.iter().position(|b| *b == 0).unwrap_or(key.len());
            let name = String::from_utf8_lossy(&key[..end]).into_owned();
            start = key[..end].to_vec();
            start.push(1);
            logs.push(name);
        }
        Ok(logs)
    }

    /// Rebuilds the ledger from everything stored: the regulator's log first (it decides
    /// membership), then every market's log, each from seq 1, checking every signature and
    /// every link, then the fork evidence.
    ///
    /// # Errors
    /// [`NodeError::Storage`] naming the first entry that does not verify or link; the node
    /// must not start on a store that fails this.
    pub fn replay(&self, membership: Membership) -> Result<Ledger, NodeError> {
        let mut ledger = Ledger::new(membership);
        let mut logs = self.logs()?;
        logs.sort_by_key(|l| (l != REGULATOR_LOG, l.clone()));
        for log in logs {
            let mut from = 1u64;
            loop {
                let chunk = self.range(&log, from, u64::MAX, REPLAY_CHUNK, usize::MAX)?;
                if chunk.is_empty() {
                    break;
                }
                let n = chunk.len() as u64;
                let checked: Vec<_> = chunk
                    .into_par_iter()
                    .map(|signed| ledger.restore_preverify(signed))
                    .collect();
                for (i, result) in checked.into_iter().enumerate() {
                    let at = from + i as u64;
                    let corrupt = |e: String| {
                        NodeError::Storage(format!("stored entry {log} seq {at} is corrupt: {e}"))
                    };
                    let applied = ledger.restore(result.map_err(|e| corrupt(e.to_string()))?);
                    let applied = applied.map_err(|e| corrupt(e.to_string()))?;
                    if applied.entry.log != log || applied.entry.seq != at {
                        return Err(corrupt("stored under the wrong key".into()));
                    }
                }
                from += n;
            }
        }
        for evidence in self.forks()? {
            ledger.record_fork(evidence);
        }
        Ok(ledger)
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

fn decode_stored(bytes: &[u8]) -> Result<SignedEntry, NodeError> {
    SignedEntry::decode(bytes)
        .map_err(|e| NodeError::Storage(format!("stored entry does not decode: {e}")))
}
