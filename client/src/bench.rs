//! The project's own load generator and the baselines it is measured against, for
//! `huren bench issue` and for the node's benchmark targets (`cargo bench -p huren-node`).
//!
//! It owns three things: a closed-loop issue load (N concurrent gRPC clients, each with one
//! report in flight, counting only acknowledged appends, which the node sends only once they
//! are durable), raw sled insert-and-flush of the very entry bytes the node returned (with the
//! node store's sled mode and key format, in a temporary folder it removes), and single-thread
//! Ed25519 signing of those entries. Every loop is bounded in count and in time. It measures;
//! it never passes or fails anything, and it never prints or stores the token it is given.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prost::Message as _;
use serde_json::{json, Value};

use huren_proto::pb;

use crate::connect::{Client, ClientError, Timeouts};

/// A set of measured durations, summarised by percentiles.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    micros: Vec<u64>,
    sorted: bool,
}

/// Percentiles of a [`Latencies`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
    /// Largest sample.
    pub max: Duration,
    /// Arithmetic mean.
    pub mean: Duration,
}

impl Latencies {
    /// Adds one sample.
    pub fn record(&mut self, d: Duration) {
        self.micros
            .push(d.as_micros().min(u128::from(u64::MAX)) as u64);
        self.sorted = false;
    }

    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
        self.sorted = false;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The `p`-th percentile (0 to 100) by nearest rank; zero when empty.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.micros.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        let n = self.micros.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        Duration::from_micros(self.micros[rank.clamp(1, n) - 1])
    }

    /// p50, p99, max and mean.
    pub fn summary(&mut self) -> Summary {
        let count = self.micros.len();
        let mean = if count == 0 {
            Duration::ZERO
        } else {
            Duration::from_micros(self.micros.iter().sum::<u64>() / count as u64)
        };
        Summary {
            count,
            p50: self.percentile(50.0),
            p99: self.percentile(99.0),
            max: self.percentile(100.0),
            mean,
        }
    }
}

impl Summary {
    /// "p50 1.23 ms  p99 4.56 ms  max 7.89 ms".
    pub fn text(&self) -> String {
        format!(
            "p50 {}  p99 {}  max {}",
            ms(self.p50),
            ms(self.p99),
            ms(self.max)
        )
    }

    /// The figures in milliseconds, as JSON.
    pub fn json(&self) -> Value {
        let f = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
        json!({"count": self.count, "p50_ms": f(self.p50), "p99_ms": f(self.p99),
               "max_ms": f(self.max), "mean_ms": f(self.mean)})
    }
}

/// A duration in milliseconds with three decimals, e.g. "1.234 ms".
pub fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// The machine's load average (1, 5, 15 minutes) as `/proc/loadavg` gives it; empty where
/// there is no such file.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Logical CPUs this process may use.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What an issue load does.
#[derive(Debug, Clone)]
pub struct IssueLoad {
    /// Concurrent clients, each with one request in flight.
    pub clients: usize,
    /// Stop after this many requests have been sent.
    pub reports: u64,
    /// Stop sending after this long, whatever the count.
    pub duration: Duration,
    /// Seed of the sample reports.
    pub seed: u64,
    /// Keep up to this many acknowledged entries' bytes for the baselines.
    pub keep_entries: usize,
}

impl Default for IssueLoad {
    fn default() -> Self {
        Self {
            clients: 64,
            reports: 100_000,
            duration: Duration::from_secs(30),
            seed: 2,
            keep_entries: 20_000,
        }
    }
}

/// What an issue load measured.
#[derive(Debug, Clone, Default)]
pub struct IssueOutcome {
    /// Appends the node acknowledged (durable), not counting replays.
    pub acknowledged: u64,
    /// Acknowledged replays of an earlier request id (should be zero: ids are unique).
    pub replayed: u64,
    /// Requests that failed.
    pub failed: u64,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// From the first request to the last reply.
    pub elapsed: Duration,
    /// Latency of each acknowledged append, from send to reply.
    pub latencies: Latencies,
    /// Encoded `SignedEntry` bytes of up to `keep_entries` acknowledged entries, as the node
    /// stores them.
    pub entries: Vec<Vec<u8>>,
}

impl IssueOutcome {
    /// Acknowledged appends per second.
    pub fn rate(&self) -> f64 {
        per_second(self.acknowledged, self.elapsed)
    }
}

/// `n / elapsed`, or 0 for no time.
pub fn per_second(n: u64, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        n as f64 / elapsed.as_secs_f64()
    }
}

/// Sample reports for `market`, valid now: a market day that started 13 hours ago.
pub fn sample_reports(market: &str, seed: u64, count: usize) -> Vec<pb::ReportIssued> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    crate::sample::day(market, seed, count.max(1), now - 13 * 3_600_000)
}

/// Opens `n` clients of one node, each on its own HTTP/2 connection.
///
/// # Errors
/// The first [`ClientError`] met while connecting.
pub async fn connect_clients(
    url: &str,
    token: Option<&str>,
    n: usize,
) -> Result<Vec<Client>, ClientError> {
    let timeouts = Timeouts {
        connect: Duration::from_secs(5),
        request: Duration::from_secs(30),
    };
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(Client::connect_with(url, token, timeouts).await?);
    }
    Ok(clients)
}

/// Runs a closed-loop issue load: each client sends a valid sample report with a unique
/// request id, waits for the reply, and sends the next, until `load.reports` requests were
/// sent or `load.duration` passed. `reports` are used in turn.
pub async fn issue_load(
    clients: &[Client],
    reports: Arc<Vec<pb::ReportIssued>>,
    load: &IssueLoad,
) -> IssueOutcome {
    let run = format!("bench-{:016x}", rand::random::<u64>());
    let next = Arc::new(AtomicU64::new(0));
    let kept = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let deadline = started + load.duration;
    let mut tasks = Vec::new();
    for client in clients.iter().take(load.clients) {
        let client = client.clone();
        let reports = Arc::clone(&reports);
        let next = Arc::clone(&next);
        let kept = Arc::clone(&kept);
        let run = run.clone();
        let (limit, keep) = (load.reports, load.keep_entries);
        tasks.push(tokio::spawn(async move {
            let mut out = IssueOutcome::default();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                let mut report = reports[(n % reports.len() as u64) as usize].clone();
                // Every request is its own lot and sample bag: a node refuses to certify a
                // bag twice, or a lot that already has a valid report.
                report.lot_id = format!("L-{run}-{n}");
                report.bag_code = format!("BAG-{run}-{n}");
                let sent = Instant::now();
                match client.issue_report(&format!("{run}-{n}"), report).await {
                    Ok(reply) if reply.replayed => out.replayed += 1,
                    Ok(reply) => {
                        out.latencies.record(sent.elapsed());
                        out.acknowledged += 1;
                        if let Some(entry) = reply.entry {
                            let mut kept = kept.lock().expect("no holder panics");
                            if kept.len() < keep {
                                kept.push(entry.encode_to_vec());
                            }
                        }
                    }
                    Err(e) => {
                        out.failed += 1;
                        out.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            out
        }));
    }
    let mut total = IssueOutcome::default();
    for task in tasks {
        match task.await {
            Ok(out) => {
                total.acknowledged += out.acknowledged;
                total.replayed += out.replayed;
                total.failed += out.failed;
                if total.first_error.is_none() {
                    total.first_error = out.first_error;
                }
                total.latencies.merge(out.latencies);
            }
            Err(e) => {
                total.failed += 1;
                total
                    .first_error
                    .get_or_insert_with(|| format!("client task: {e}"));
            }
        }
    }
    total.elapsed = started.elapsed();
    total.entries = std::mem::take(&mut *kept.lock().expect("no holder panics"));
    total
}

/// One way of writing to sled, measured.
#[derive(Debug, Clone, Default)]
pub struct SledRun {
    /// Inserts per flush.
    pub group: usize,
    /// Inserts made durable.
    pub inserts: u64,
    /// Time taken.
    pub elapsed: Duration,
    /// Time of each blocking `flush()`.
    pub flushes: Latencies,
}

impl SledRun {
    /// Durable inserts per second.
    pub fn rate(&self) -> f64 {
        per_second(self.inserts, self.elapsed)
    }
}

/// Removes a temporary folder when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The node store's key: log name, a zero byte, the big-endian sequence number.
fn store_key(log: &str, seq: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(log.len() + 9);
    key.extend_from_slice(log.as_bytes());
    key.push(0);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Raw sled insert-and-flush of `values` (cycled), in a fresh database in a temporary folder
/// with the node store's settings (`Mode::HighThroughput`, tree "entries", the store's key
/// format): each group of `group` inserts is applied as one batch and followed by one
/// blocking `flush()`, as the node's writer does. Stops after `max_inserts` or `max_time`.
/// Blocking: call it from a blocking thread.
///
/// # Errors
/// A sentence when the temporary database cannot be created or written.
pub fn sled_insert_flush(
    values: &[Vec<u8>],
    group: usize,
    max_inserts: u64,
    max_time: Duration,
) -> Result<SledRun, String> {
    if values.is_empty() {
        return Err("no entries to write".into());
    }
    let dir = TempDir(std::env::temp_dir().join(format!(
        "huren-bench-sled-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    )));
    let db = sled::Config::new()
        .path(dir.0.join("sled"))
        .mode(sled::Mode::HighThroughput)
        .open()
        .map_err(|e| format!("{}: {e}", dir.0.display()))?;
    let tree = db.open_tree("entries").map_err(|e| e.to_string())?;
    let group = group.max(1);
    let mut run = SledRun {
        group,
        ..SledRun::default()
    };
    let started = Instant::now();
    let mut seq = 0u64;
    while run.inserts < max_inserts && started.elapsed() < max_time {
        let mut batch = sled::Batch::default();
        for _ in 0..group {
            let value = &values[(seq % values.len() as u64) as usize];
            seq += 1;
            batch.insert(store_key("bench", seq), value.as_slice());
        }
        tree.apply_batch(batch).map_err(|e| e.to_string())?;
        let flush = Instant::now();
        db.flush().map_err(|e| e.to_string())?;
        run.flushes.record(flush.elapsed());
        run.inserts += group as u64;
    }
    run.elapsed = started.elapsed();
    drop(tree);
    drop(db);
    Ok(run)
}

/// Single-thread signing of the entries in `signed_entries` (encoded `SignedEntry`s): each is
/// decoded, then re-encoded and signed with a fresh key exactly as the node's writer does for
/// every append. Returns entries signed per second; stops after `max` or `max_time`.
pub fn signing_rate(signed_entries: &[Vec<u8>], max: u64, max_time: Duration) -> f64 {
    let entries: Vec<pb::Entry> = signed_entries
        .iter()
        .filter_map(|b| pb::SignedEntry::decode(b.as_slice()).ok())
        .filter_map(|s| huren_proto::format::decode_entry(&s.body).ok())
        .collect();
    if entries.is_empty() {
        return 0.0;
    }
    let key = huren_proto::keyfile::generate();
    let started = Instant::now();
    let mut n = 0u64;
    while n < max && started.elapsed() < max_time {
        let signed = huren_proto::format::sign_entry(&key, &entries[(n as usize) % entries.len()]);
        std::hint::black_box(signed);
        n += 1;
    }
    per_second(n, started.elapsed())
}

/// The baselines measured beside an issue load.
#[derive(Debug, Clone, Default)]
pub struct IssueBaseline {
    /// One `flush()` per insert.
    pub per_insert: SledRun,
    /// One `flush()` per `group` inserts.
    pub per_group: SledRun,
    /// Entries signed per second on one thread.
    pub signing: f64,
}

/// Measures [`IssueBaseline`] on the entries an issue load kept. Blocking.
///
/// # Errors
/// As [`sled_insert_flush`].
pub fn issue_baseline(
    entries: &[Vec<u8>],
    group: usize,
    max_time: Duration,
) -> Result<IssueBaseline, String> {
    Ok(IssueBaseline {
        per_insert: sled_insert_flush(entries, 1, 20_000, max_time)?,
        per_group: sled_insert_flush(entries, group, 640_000, max_time)?,
        signing: signing_rate(entries, 200_000, max_time),
    })
}

/// Sizes of kept entries: (mean, min, max) bytes.
pub fn entry_sizes(entries: &[Vec<u8>]) -> (usize, usize, usize) {
    if entries.is_empty() {
        return (0, 0, 0);
    }
    let total: usize = entries.iter().map(Vec::len).sum();
    let min = entries.iter().map(Vec::len).min().unwrap_or(0);
    let max = entries.iter().map(Vec::len).max().unwrap_or(0);
    (total / entries.len(), min, max)
}

/// Everything `huren bench issue` reports.
#[derive(Debug, Clone, Default)]
pub struct IssueReport {
    /// Node URL.
    pub node: String,
    /// Market of the node.
    pub market: String,
    /// The load as run.
    pub clients: usize,
    /// Load average before the run.
    pub load_before: String,
    /// Load average after the run.
    pub load_after: String,
    /// The load's outcome.
    pub outcome: IssueOutcome,
    /// The baselines, unless skipped.
    pub baseline: Option<IssueBaseline>,
}

impl IssueReport {
    /// Human-readable text.
    pub fn text(&self) -> String {
        let mut out = self.outcome.clone();
        let lat = out.latencies.summary();
        let (mean, min, max) = entry_sizes(&out.entries);
        let mut t = format!(
            "huren bench issue → {} (market {}), {} clients, one HTTP/2 connection each\n\
             machine: {} CPUs; load average before {}\n\
             acknowledged {} durable reports in {:.2} s: {:.0} reports/s (failed {}, replayed {})\n\
             latency per report: {}\n\
             signed entry size: mean {mean} B (min {min}, max {max})\n",
            self.node,
            self.market,
            self.clients,
            cpus(),
            self.load_before,
            out.acknowledged,
            out.elapsed.as_secs_f64(),
            out.rate(),
            out.failed,
            out.replayed,
            lat.text(),
        );
        if let Some(e) = &out.first_error {
            t.push_str(&format!("first failure: {e}\n"));
        }
        if let Some(b) = &self.baseline {
            let mut one = b.per_insert.clone();
            let mut group = b.per_group.clone();
            t.push_str(&format!(
                "baseline, same run, same entry bytes, raw sled (HighThroughput, temp db):\n  \
                 flush per insert      {:>9.0} inserts/s  (flush {})\n  \
                 flush per {:<3} inserts {:>9.0} inserts/s  (flush {})\n  \
                 ed25519 signing, one thread: {:.0} entries/s\n\
                 ratio node / sled flush-per-{}: {:.2}; node / sled flush-per-insert: {:.2}\n",
                one.rate(),
                one.flushes.summary().text(),
                group.group,
                group.rate(),
                group.flushes.summary().text(),
                b.signing,
                group.group,
                ratio(out.rate(), group.rate()),
                ratio(out.rate(), one.rate()),
            ));
        }
        t.push_str(&format!("load average after {}\n", self.load_after));
        t
    }

    /// Machine-readable JSON.
    pub fn json(&self) -> Value {
        let mut out = self.outcome.clone();
        let (mean, min, max) = entry_sizes(&out.entries);
        let baseline = self.baseline.as_ref().map(|b| {
            let mut one = b.per_insert.clone();
            let mut group = b.per_group.clone();
            json!({
                "sled_flush_per_insert": {"inserts_per_s": one.rate(),
                    "flush": one.flushes.summary().json()},
                "sled_flush_per_group": {"group": group.group, "inserts_per_s": group.rate(),
                    "flush": group.flushes.summary().json()},
                "signing_per_s_one_thread": b.signing,
                "ratio_to_group": ratio(out.rate(), group.rate()),
                "ratio_to_per_insert": ratio(out.rate(), one.rate()),
            })
        });
        json!({
            "node": self.node, "market": self.market, "clients": self.clients,
            "connections": self.clients, "cpus": cpus(),
            "load_before": self.load_before, "load_after": self.load_after,
            "acknowledged": out.acknowledged, "failed": out.failed, "replayed": out.replayed,
            "first_error": out.first_error, "elapsed_s": out.elapsed.as_secs_f64(),
            "reports_per_s": out.rate(), "latency": out.latencies.summary().json(),
            "entry_bytes": {"mean": mean, "min": min, "max": max},
            "baseline": baseline,
        })
    }
}

/// `a / b`, or 0 when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// `huren bench issue`: connects `load.clients` clients to the node at `url`, runs the
/// issue load, then (unless `baseline` is false) the sled and signing baselines on the
/// entries the node returned.
///
/// # Errors
/// [`ClientError`] when the node cannot be reached or asked its market.
pub async fn issue_command(
    url: &str,
    token: Option<&str>,
    load: IssueLoad,
    baseline: bool,
) -> Result<IssueReport, ClientError> {
    let first = Client::connect(url, token).await?;
    let market = first.status().await?.market;
    let clients = connect_clients(url, token, load.clients).await?;
    let reports = Arc::new(sample_reports(&market, load.seed, 10_000));
    let load_before = load_average();
    let outcome = issue_load(&clients, reports, &load).await;
    drop(clients);
    let baseline = if baseline && !outcome.entries.is_empty() {
        let entries = outcome.entries.clone();
        let group = load.clients;
        tokio::task::spawn_blocking(move || {
            issue_baseline(&entries, group, Duration::from_secs(10))
        })
        .await
        .ok()
        .and_then(Result::ok)
    } else {
        None
    };
    Ok(IssueReport {
        node: url.to_string(),
        market,
        clients: load.clients,
        load_before,
        load_after: load_average(),
        outcome,
        baseline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for n in 1..=100 {
            l.record(Duration::from_millis(n));
        }
        let s = l.summary();
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(Latencies::default().summary().p99, Duration::ZERO);
    }

    #[test]
    fn the_sled_baseline_writes_in_groups_and_cleans_up() {
        let values = vec![vec![7u8; 300]; 10];
        let run = sled_insert_flush(&values, 8, 64, Duration::from_secs(5)).unwrap();
        assert_eq!(run.inserts, 64);
        assert_eq!(run.flushes.len(), 8);
    }
}
