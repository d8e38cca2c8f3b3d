//! The export file: the whole ledger a node holds, in one self-contained file that anyone can
//! audit with nothing but the regulator's public key and docs/FORMAT.md ("Export file"). This
//! module owns that byte layout (a magic line, framed records, a SHA-256 trailer), a streaming
//! writer and reader that enforce it, and `huren export`, which reads a node in bounded
//! batches and writes the file under a temporary name, renaming it only once it is complete.
//!
//! It never re-encodes a signed body: entries and the trust list are written with the bytes the
//! node sent. It checks framing, order and the trailer, and nothing else: whether the entries
//! are any good is the auditor's question ([`crate::audit`]).

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use sha2::{Digest, Sha256};

use huren_proto::ids::REGULATOR_LOG;
use huren_proto::pb::{ForkEvidence, Head, SignedEntry, SignedTrustList};

use crate::audit::Progress;
use crate::connect::{Client, ClientError};

/// The first 16 bytes of every export file, version 1.
pub const MAGIC: &[u8; 16] = b"HUREN-EXPORT v1\n";
/// Largest record payload a reader accepts, bytes. An entry is at most 16 KiB; a trust list
/// or a fork evidence stays far below this.
pub const MAX_RECORD_LEN: u32 = 1 << 20;
/// Entries asked of the node in one `ReadLog` call.
pub const EXPORT_BATCH: u32 = 5_000;

/// Record kind: the signed trust list (an encoded `SignedTrustList`).
pub const KIND_TRUST_LIST: u8 = 0x01;
/// Record kind: a log header (an encoded `Head`); `seq` entries of that log follow.
pub const KIND_LOG: u8 = 0x02;
/// Record kind: one entry (an encoded `SignedEntry`).
pub const KIND_ENTRY: u8 = 0x03;
/// Record kind: fork evidence (an encoded `ForkEvidence`).
pub const KIND_FORK: u8 = 0x04;
/// Record kind: the trailer, whose 32-byte payload is SHA-256 of every byte before it.
pub const KIND_END: u8 = 0xFF;

/// Why an export could not be written, or a file is not a well-formed export. Reader errors
/// carry the byte offset of the record at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The output exists and `--force` was not given.
    #[error("{0} already exists; use --force to replace it")]
    Exists(String),
    /// The node failed or went away during the export.
    #[error("reading the node")]
    Node(#[from] ClientError),
    /// The node's answers do not add up (for example a log shorter than its own head).
    #[error("the node's answers are inconsistent: {0}")]
    Inconsistent(String),
    /// The file does not start with [`MAGIC`].
    #[error(
        "not a Huren export file version 1 (the first 16 bytes are not {:?})",
        "HUREN-EXPORT v1\\n"
    )]
    BadMagic,
    /// The file ends inside a record, or before the trailer.
    #[error("at byte {offset}: the file ends before {what}")]
    Truncated {
        /// Offset of the record that is cut short.
        offset: u64,
        /// What was expected.
        what: &'static str,
    },
    /// A record's kind byte is not one of the kinds above.
    #[error("at byte {offset}: unknown record kind 0x{kind:02x}")]
    UnknownKind {
        /// Offset of the record.
        offset: u64,
        /// The kind byte.
        kind: u8,
    },
    /// A record's declared length is over [`MAX_RECORD_LEN`], or wrong for its kind.
    #[error("at byte {offset}: record length {len} is not allowed here")]
    BadLength {
        /// Offset of the record.
        offset: u64,
        /// The declared length.
        len: u32,
    },
    /// A record's payload does not decode as its kind's message.
    #[error("at byte {offset}: {what} does not decode: {message}")]
    Undecodable {
        /// Offset of the record.
        offset: u64,
        /// The record kind, in words.
        what: &'static str,
        /// The decoder's message.
        message: String,
    },
    /// Records are not in the order the format prescribes.
    #[error("at byte {offset}: {message}")]
    Order {
        /// Offset of the record.
        offset: u64,
        /// What is out of place.
        message: String,
    },
    /// The trailer's SHA-256 is not that of the bytes before it: the file was changed or
    /// damaged somewhere.
    #[error("the SHA-256 in the trailer does not match the file: the file was changed or damaged")]
    DigestMismatch,
    /// Bytes follow the trailer.
    #[error("at byte {offset}: bytes follow the trailer")]
    TrailingBytes {
        /// Offset of the first byte after the trailer.
        offset: u64,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One record of an export, decoded from its framing (the signed bytes inside are verbatim).
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// The signed trust list.
    TrustList(SignedTrustList),
    /// A log header: `seq` is the number of entries of `log` that follow, `hash` the hash of
    /// the last of them, `frozen` whether the node held the log frozen by a fork.
    Log(Head),
    /// One entry of the log whose header came last.
    Entry(SignedEntry),
    /// Fork evidence.
    Fork(ForkEvidence),
}

/// Where a stream of records is in the prescribed order: the trust list, then each log's
/// header and its entries (the regulator's first, then markets in ascending byte order), then
/// fork evidence, then the trailer. The writer and the reader share it.
#[derive(Debug, Default)]
struct Order {
    trust_list: bool,
    last_log: Option<String>,
    entries_left: u64,
    forks: bool,
}

impl Order {
    fn check(&mut self, kind: u8, log: Option<&str>, seq: u64) -> Result<(), String> {
        match kind {
            KIND_TRUST_LIST if !self.trust_list && self.last_log.is_none() => {
                self.trust_list = true;
                Ok(())
            }
            KIND_TRUST_LIST => Err("a second trust list, or one after the logs".into()),
            _ if !self.trust_list => Err("the first record must be the trust list".into()),
            KIND_ENTRY if self.entries_left > 0 => {
                self.entries_left -= 1;
                Ok(())
            }
            KIND_ENTRY => Err("an entry beyond the count its log header declares".into()),
            _ if self.entries_left > 0 => Err(format!(
                "{} more entries of log {} were declared",
                self.entries_left,
                self.last_log.as_deref().unwrap_or("?")
            )),
            KIND_LOG if self.forks => Err("a log header after fork evidence".into()),
            KIND_LOG => {
                let log = log.unwrap_or_default();
                let in_order = match &self.last_log {
                    None => log == REGULATOR_LOG,
                    Some(last) => log != REGULATOR_LOG && (last == REGULATOR_LOG || **last < *log),
                };
                if !in_order {
                    return Err(format!(
                        "log {log:?} is out of order (the regulator's log first, then markets \
                         in ascending order, each once)"
                    ));
                }
                self.last_log = Some(log.to_string());
                self.entries_left = seq;
                Ok(())
            }
            KIND_FORK if self.last_log.is_none() => {
                Err("fork evidence before the regulator's log header".into())
            }
            KIND_FORK => {
                self.forks = true;
                Ok(())
            }
            KIND_END if self.last_log.is_none() => {
                Err("the trailer before the regulator's log header".into())
            }
            _ => Ok(()),
        }
    }
}

/// Writes an export file record by record, keeping the running SHA-256 for the trailer. It
/// refuses records out of order, so what it writes always reads back.
#[derive(Debug)]
pub struct ExportWriter<W: Write> {
    out: W,
    hasher: Sha256,
    order: Order,
    written: u64,
}

impl<W: Write> ExportWriter<W> {
    /// Starts an export on `out` by writing the magic line.
    ///
    /// # Errors
    /// Any I/O error of `out`.
    pub fn new(out: W) -> std::io::Result<Self> {
        let mut writer = Self {
            out,
            hasher: Sha256::new(),
            order: Order::default(),
            written: 0,
        };
        writer.put(MAGIC)?;
        Ok(writer)
    }

    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.out.write_all(bytes)?;
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn record(
        &mut self,
        kind: u8,
        log: Option<&str>,
        seq: u64,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        self.order.check(kind, log, seq).map_err(invalid)?;
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|l| *l <= MAX_RECORD_LEN)
            .ok_or_else(|| invalid(format!("a record of {} bytes", payload.len())))?;
        self.put(&[kind])?;
        self.put(&len.to_be_bytes())?;
        self.put(payload)
    }

    /// Writes the trust list record; it must come first.
    ///
    /// # Errors
    /// I/O errors, or `InvalidInput` when out of order.
    pub fn trust_list(&mut self, signed: &SignedTrustList) -> std::io::Result<()> {
        self.record(KIND_TRUST_LIST, None, 0, &signed.encode_to_vec())
    }

    /// Writes a log header; exactly `head.seq` entries of that log must follow.
    ///
    /// # Errors
    /// I/O errors, or `InvalidInput` when out of order.
    pub fn log(&mut self, head: &Head) -> std::io::Result<()> {
        self.record(KIND_LOG, Some(&head.log), head.seq, &head.encode_to_vec())
    }

    /// Writes one entry, its body and signature as given.
    ///
    /// # Errors
    /// I/O errors, or `InvalidInput` when out of order.
    pub fn entry(&mut self, signed: &SignedEntry) -> std::io::Result<()> {
        self.record(KIND_ENTRY, None, 0, &signed.encode_to_vec())
    }

    /// Writes fork evidence; it follows every log.
    ///
    /// # Errors
    /// I/O errors, or `InvalidInput` when out of order.
    pub fn fork(&mut self, evidence: &ForkEvidence) -> std::io::Result<()> {
        self.record(KIND_FORK, None, 0, &evidence.encode_to_vec())
    }

    /// Writes the trailer and returns the output, the file's digest and its length in bytes.
    ///
    /// # Errors
    /// I/O errors, or `InvalidInput` when a log's entries are missing.
    pub fn finish(mut self) -> std::io::Result<(W, [u8; 32], u64)> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        self.order.check(KIND_END, None, 0).map_err(invalid)?;
        self.put(&[KIND_END])?;
        self.put(&32u32.to_be_bytes())?;
        let digest: [u8; 32] = self.hasher.clone().finalize().into();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok((self.out, digest, self.written + 32))
    }
}

/// Reads an export record by record, checking framing and order as it goes and the trailer at
/// the end. Memory use is bounded by one record.
#[derive(Debug)]
pub struct ExportReader<R: Read> {
    input: R,
    hasher: Sha256,
    order: Order,
    offset: u64,
    started: bool,
    done: bool,
}

impl<R: Read> ExportReader<R> {
    /// A reader over `input`; nothing is read until [`ExportReader::next_record`].
    pub fn new(input: R) -> Self {
        Self {
            input,
            hasher: Sha256::new(),
            order: Order::default(),
            offset: 0,
            started: false,
            done: false,
        }
    }

    /// Bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads exactly `buf.len()` bytes; `Ok(false)` at a clean end of input before the first.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, std::io::Error> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(got == buf.len())
    }

    /// The next record; `Ok(None)` once the trailer has been read and checked.
    ///
    /// # Errors
    /// Any [`ExportError`] of framing, order, decoding or the trailer; after an error the
    /// reader returns `Ok(None)`.
    pub fn next_record(&mut self) -> Result<Option<Record>, ExportError> {
        if self.done {
            return Ok(None);
        }
        let result = self.read_record();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    fn read_record(&mut self) -> Result<Option<Record>, ExportError> {
        let at = |e: std::io::Error| ExportError::Io {
            path: "export".into(),
            source: e,
        };
        if !self.started {
            let mut magic = [0u8; 16];
            if !self.fill(&mut magic).map_err(at)? || &magic != MAGIC {
                return Err(ExportError::BadMagic);
            }
            self.hasher.update(magic);
            self.offset = 16;
            self.started = true;
        }
        let offset = self.offset;
        let mut frame = [0u8; 5];
        if !self.fill(&mut frame).map_err(at)? {
            return Err(ExportError::Truncated {
                offset,
                what: "the trailer",
            });
        }
        let kind = frame[0];
        let len = u32::from_be_bytes([frame[1], frame[2], frame[3], frame[4]]);
        let what = match kind {
            KIND_TRUST_LIST => "the trust list",
            KIND_LOG => "a log header",
            KIND_ENTRY => "an entry",
            KIND_FORK => "fork evidence",
            KIND_END => "the trailer",
            kind => return Err(ExportError::UnknownKind { offset, kind }),
        };
        if len > MAX_RECORD_LEN || (kind == KIND_END && len != 32) {
            return Err(ExportError::BadLength { offset, len });
        }
        self.hasher.update(frame);
        let mut payload = vec![0u8; len as usize];
        if !self.fill(&mut payload).map_err(at)? {
            return Err(ExportError::Truncated { offset, what });
        }
        self.offset += 5 + u64::from(len);
        let undecodable = |e: prost::DecodeError| ExportError::Undecodable {
            offset,
            what,
            message: e.to_string(),
        };
        let order = |message: String| ExportError::Order { offset, message };
        let record = match kind {
            KIND_END => {
                self.order.check(kind, None, 0).map_err(order)?;
                let digest: [u8; 32] = self.hasher.clone().finalize().into();
                if digest.as_slice() != payload.as_slice() {
                    return Err(ExportError::DigestMismatch);
                }
                let mut extra = [0u8; 1];
                if self.fill(&mut extra).map_err(at)? {
                    return Err(ExportError::TrailingBytes {
                        offset: self.offset,
                    });
                }
                return Ok(None);
            }
            KIND_TRUST_LIST => {
                Record::TrustList(SignedTrustList::decode(payload.as_slice()).map_err(undecodable)?)
            }
            KIND_LOG => Record::Log(Head::decode(payload.as_slice()).map_err(undecodable)?),
            KIND_ENTRY => {
                Record::Entry(SignedEntry::decode(payload.as_slice()).map_err(undecodable)?)
            }
            _ => Record::Fork(ForkEvidence::decode(payload.as_slice()).map_err(undecodable)?),
        };
        self.hasher.update(&payload);
        let (log, seq) = match &record {
            Record::Log(head) => (Some(head.log.as_str()), head.seq),
            _ => (None, 0),
        };
        self.order.check(kind, log, seq).map_err(order)?;
        Ok(Some(record))
    }
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    /// The file written.
    pub path: PathBuf,
    /// Logs, with their entry counts, in file order.
    pub logs: Vec<(String, u64)>,
    /// Entries in all.
    pub entries: u64,
    /// Fork evidence records.
    pub forks: usize,
    /// File length in bytes.
    pub bytes: u64,
    /// SHA-256 of the file up to its trailer (the trailer's payload), hex.
    pub digest: String,
}

/// The logs of a heads answer in export order: the regulator's first, then markets by name.
pub fn export_order(mut heads: Vec<Head>) -> Vec<Head> {
    heads.sort_by(|a, b| (a.log != REGULATOR_LOG, &a.log).cmp(&(b.log != REGULATOR_LOG, &b.log)));
    heads.dedup_by(|a, b| a.log == b.log);
    if heads.first().is_none_or(|h| h.log != REGULATOR_LOG) {
        heads.insert(
            0,
            Head {
                log: REGULATOR_LOG.into(),
                ..Default::default()
            },
        );
    }
    heads
}

/// The next batch of `head`'s log from `next` on (at most [`EXPORT_BATCH`] entries, never
/// beyond `head.seq`), as the node sent it.
///
/// # Errors
/// [`ExportError::Node`], or [`ExportError::Inconsistent`] when the node has nothing at `next`
/// although its head is beyond it.
pub async fn read_batch(
    client: &Client,
    head: &Head,
    next: u64,
) -> Result<Vec<SignedEntry>, ExportError> {
    let left = head.seq.saturating_sub(next - 1);
    let want = u32::try_from(left).unwrap_or(u32::MAX).min(EXPORT_BATCH);
    let mut entries = client.read_log(&head.log, next, want).await?.entries;
    if entries.is_empty() && left > 0 {
        return Err(ExportError::Inconsistent(format!(
            "log {} ends at seq {} but its head said {}",
            head.log,
            next - 1,
            head.seq
        )));
    }
    entries.truncate(usize::try_from(left).unwrap_or(usize::MAX));
    Ok(entries)
}

/// A file that is removed when dropped, unless it was renamed into place.
struct Partial {
    path: PathBuf,
    kept: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `huren export`: writes everything `client`'s node holds to `out`: its trust list, every
/// log up to the heads it reported when the export began, read in batches of
/// [`EXPORT_BATCH`], then its fork evidence. The file is written under a temporary name in
/// the same folder, flushed to disk, and renamed to `out` only when complete, so a failed
/// export leaves no partial file behind.
///
/// # Errors
/// [`ExportError::Exists`] when `out` exists and not `replace`; [`ExportError::Node`] when
/// the node fails; [`ExportError::Inconsistent`] when a log has fewer entries than its head
/// said; [`ExportError::Io`].
pub async fn export_node(
    client: &Client,
    out: &Path,
    replace: bool,
    progress: &dyn Progress,
) -> Result<ExportSummary, ExportError> {
    if !replace && out.exists() {
        return Err(ExportError::Exists(out.display().to_string()));
    }
    let trust_list = client.trust_list().await?;
    let heads = export_order(client.heads().await?);
    progress.set_total(heads.iter().map(|h| h.seq).sum());

    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = dir.join(format!(
        ".{name}.partial-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let file = File::options()
        .write(true)
        .create_new(true)
        .open(&temp)
        .map_err(io(&temp))?;
    let mut partial = Partial {
        path: temp.clone(),
        kept: false,
    };
    let mut writer =
        ExportWriter::new(BufWriter::with_capacity(1 << 20, file)).map_err(io(&temp))?;
    writer.trust_list(&trust_list).map_err(io(&temp))?;

    let mut logs = Vec::new();
    let mut total = 0;
    for head in &heads {
        writer.log(head).map_err(io(&temp))?;
        let mut next = 1u64;
        while next <= head.seq {
            let batch = read_batch(client, head, next).await?;
            for signed in &batch {
                writer.entry(signed).map_err(io(&temp))?;
            }
            next += batch.len() as u64;
            progress.advance(batch.len() as u64);
        }
        logs.push((head.log.clone(), head.seq));
        total += head.seq;
    }
    let forks = client.forks().await?;
    for evidence in &forks {
        writer.fork(evidence).map_err(io(&temp))?;
    }
    let (buffered, digest, bytes) = writer.finish().map_err(io(&temp))?;
    let file = buffered
        .into_inner()
        .map_err(|e| io(&temp)(e.into_error()))?;
    file.sync_all().map_err(io(&temp))?;
    drop(file);
    std::fs::rename(&temp, out).map_err(io(out))?;
    partial.kept = true;
    // The rename is durable once the folder is; not every platform lets a folder be synced.
    if let Ok(d) = File::open(&dir) {
        let _ = d.sync_all();
    }
    progress.finish();
    Ok(ExportSummary {
        path: out.to_path_buf(),
        logs,
        entries: total,
        forks: forks.len(),
        bytes,
        digest: hex::encode(digest),
    })
}

impl ExportSummary {
    /// Lines for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (log, n) in &self.logs {
            out.push_str(&format!("{log:<12} {n:>10} entries\n"));
        }
        out.push_str(&format!(
            "exported {} entries of {} logs and {} fork evidence to {} ({} bytes, sha-256 {})\n",
            self.entries,
            self.logs.len(),
            self.forks,
            self.path.display(),
            self.bytes,
            self.digest
        ));
        out
    }

    /// JSON for `--json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.path.display().to_string(),
            "logs": self.logs.iter().map(|(log, n)| serde_json::json!({"log": log, "entries": n}))
                .collect::<Vec<_>>(),
            "entries": self.entries,
            "forks": self.forks,
            "bytes": self.bytes,
            "sha256": self.digest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(log: &str, seq: u64) -> Head {
        Head {
            log: log.into(),
            seq,
            ..Default::default()
        }
    }

    fn entry(n: u8) -> SignedEntry {
        SignedEntry {
            body: vec![n; 10],
            signature: vec![n; 64],
        }
    }

    fn sample() -> Vec<u8> {
        let mut w = ExportWriter::new(Vec::new()).unwrap();
        w.trust_list(&SignedTrustList {
            body: vec![1, 2, 3],
            signature: vec![9; 64],
        })
        .unwrap();
        w.log(&head(REGULATOR_LOG, 1)).unwrap();
        w.entry(&entry(1)).unwrap();
        w.log(&head("jiuzhou", 0)).unwrap();
        w.log(&head("shanxi", 2)).unwrap();
        w.entry(&entry(2)).unwrap();
        w.entry(&entry(3)).unwrap();
        w.finish().unwrap().0
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, ExportError> {
        let mut reader = ExportReader::new(bytes);
        let mut out = Vec::new();
        while let Some(r) = reader.next_record()? {
            out.push(r);
        }
        Ok(out)
    }

    #[test]
    fn what_the_writer_writes_reads_back_record_for_record() {
        let bytes = sample();
        assert!(bytes.starts_with(MAGIC));
        let records = read_all(&bytes).unwrap();
        assert_eq!(records.len(), 7);
        assert_eq!(records[2], Record::Entry(entry(1)));
        assert_eq!(records[4], Record::Log(head("shanxi", 2)));
    }

    #[test]
    fn every_single_bit_flip_makes_the_file_unreadable() {
        let bytes = sample();
        for i in 0..bytes.len() * 8 {
            let mut changed = bytes.clone();
            changed[i / 8] ^= 1 << (i % 8);
            assert!(
                read_all(&changed).is_err(),
                "flip of bit {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_truncated_file_or_bytes_after_the_trailer_are_refused() {
        let bytes = sample();
        for len in [0, 10, 16, 20, bytes.len() - 1] {
            assert!(read_all(&bytes[..len]).is_err(), "cut at {len}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            read_all(&longer),
            Err(ExportError::TrailingBytes { .. })
        ));
    }

    #[test]
    fn the_writer_refuses_records_out_of_order() {
        let mut w = ExportWriter::new(Vec::new()).unwrap();
        assert!(w.log(&head(REGULATOR_LOG, 0)).is_err(), "trust list first");
        let mut w = ExportWriter::new(Vec::new()).unwrap();
        w.trust_list(&SignedTrustList::default()).unwrap();
        assert!(w.log(&head("shanxi", 0)).is_err(), "regulator first");
        w.log(&head(REGULATOR_LOG, 1)).unwrap();
        assert!(w.log(&head("shanxi", 0)).is_err(), "one entry missing");
        w.entry(&entry(1)).unwrap();
        assert!(w.entry(&entry(2)).is_err(), "one entry too many");
        w.log(&head("shanxi", 0)).unwrap();
        assert!(w.log(&head("jiuzhou", 0)).is_err(), "markets in order");
        assert!(w.log(&head("shanxi", 0)).is_err(), "each log once");
    }

    #[test]
    fn export_order_puts_the_regulator_first_and_markets_by_name() {
        let order = export_order(vec![
            head("tunhui", 1),
            head("regulator", 2),
            head("jiuzhou", 3),
        ]);
        let names: Vec<&str> = order.iter().map(|h| h.log.as_str()).collect();
        assert_eq!(names, ["regulator", "jiuzhou", "tunhui"]);
        assert_eq!(export_order(vec![head("shanxi", 1)])[0].log, "regulator");
    }
}
