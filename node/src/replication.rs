//! Replication between nodes. For each peer a node runs two tasks: a pusher that sends the
//! entries that entered through this node (its own and regulator submissions) as soon as they
//! are durable, and a puller that, on a timer and at once after a reconnect, compares every
//! log's head with the peer's and reads what it lacks in bounded batches, one batch at a time
//! (the next read waits until the last batch is stored: that is the backpressure). Any node
//! relays any log, because pulls cover every log, not only the peer's own.
//!
//! Every link goes through [`Faults`], so a test can cut, delay or drop traffic between two
//! named nodes deterministically while the real gRPC path stays in use.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use huren_proto::pb::{self, ledger_client::LedgerClient, replication_client::ReplicationClient};
use parking_lot::Mutex;
use rand::{Rng, SeedableRng};
use tokio::sync::{broadcast, watch, Notify};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, info, warn};

use crate::node::Node;
use crate::service::MAX_MESSAGE_BYTES;

/// What is wrong with one direction of one link.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LinkFault {
    /// Nothing gets through.
    pub cut: bool,
    /// Every call waits this long first.
    pub delay: Duration,
    /// Probability that a call is dropped, 0.0 to 1.0.
    pub loss: f64,
}

/// Faults injected on links between nodes, by (from, to) market id. Empty in production.
#[derive(Debug)]
pub struct Faults {
    links: Mutex<HashMap<(String, String), LinkFault>>,
    rng: Mutex<rand::rngs::StdRng>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::seeded(0)
    }
}

impl Faults {
    /// No faults; losses drawn from a generator seeded with `seed`, so a run can be repeated.
    pub fn seeded(seed: u64) -> Self {
        Self {
            links: Mutex::default(),
            rng: Mutex::new(rand::rngs::StdRng::seed_from_u64(seed)),
        }
    }

    /// Sets the fault on the link from `from` to `to`.
    pub fn set(&self, from: &str, to: &str, fault: LinkFault) {
        self.links.lock().insert((from.into(), to.into()), fault);
    }

    /// Cuts both directions between `a` and `b`.
    pub fn cut(&self, a: &str, b: &str) {
        let cut = LinkFault {
            cut: true,
            ..LinkFault::default()
        };
        self.set(a, b, cut);
        self.set(b, a, cut);
    }

    /// Removes every fault between `a` and `b`.
    pub fn heal(&self, a: &str, b: &str) {
        let mut links = self.links.lock();
        links.remove(&(a.to_string(), b.to_string()));
        links.remove(&(b.to_string(), a.to_string()));
    }

    /// Cuts `market` off from every other market in `all`.
    pub fn isolate(&self, market: &str, all: &[String]) {
        for other in all.iter().filter(|m| *m != market) {
            self.cut(market, other);
        }
    }

    /// Removes every fault.
    pub fn heal_all(&self) {
        self.links.lock().clear();
    }

    /// Applies the link's fault to one call: waits the delay, then fails if cut or lost.
    async fn pass(&self, from: &str, to: &str) -> Result<(), tonic::Status> {
        let fault = self
            .links
            .lock()
            .get(&(from.to_string(), to.to_string()))
            .copied();
        let Some(fault) = fault else { return Ok(()) };
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        if fault.cut {
            return Err(tonic::Status::unavailable(format!(
                "link {from} → {to} is cut (test fault)"
            )));
        }
        if fault.loss > 0.0 && self.rng.lock().gen_bool(fault.loss.clamp(0.0, 1.0)) {
            return Err(tonic::Status::unavailable(format!(
                "call {from} → {to} lost (test fault)"
            )));
        }
        Ok(())
    }
}

/// A peer to replicate with.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Its market id.
    pub market: String,
    /// Its gRPC URL.
    pub url: String,
    /// The token to present to it (role peer there).
    pub token: String,
}

/// Replication settings.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Pull timer.
    pub pull_interval: Duration,
    /// Most entries per batch.
    pub batch_entries: u32,
}

impl From<crate::config::ReplicationConfig> for Settings {
    fn from(c: crate::config::ReplicationConfig) -> Self {
        Self {
            pull_interval: Duration::from_millis(c.pull_interval_ms),
            batch_entries: c.batch_entries,
        }
    }
}

fn channel(url: &str) -> Result<Channel, tonic::transport::Error> {
    Ok(Endpoint::from_shared(url.to_string())?
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(30))
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true)
        .connect_lazy())
}

/// Starts the pusher and puller for every peer; they stop when `shutdown` turns true.
///
/// # Errors
/// A sentence when a peer's URL or token is malformed.
pub fn start(
    node: Arc<Node>,
    peers: Vec<Peer>,
    settings: Settings,
    faults: Arc<Faults>,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, String> {
    let mut tasks = Vec::new();
    for peer in peers {
        let channel = channel(&peer.url).map_err(|e| format!("peer {}: {e}", peer.market))?;
        let token: MetadataValue<_> = format!("Bearer {}", peer.token)
            .parse()
            .map_err(|_| format!("peer {}: token is not a valid header value", peer.market))?;
        let link = Arc::new(Link {
            node: Arc::clone(&node),
            peer: peer.market.clone(),
            reader: LedgerClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            pusher: ReplicationClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            token,
            faults: Arc::clone(&faults),
            settings,
            wake: Notify::new(),
        });
        let rx = node.subscribe();
        tasks.push(tokio::spawn(
            Arc::clone(&link).push_loop(rx, shutdown.clone()),
        ));
        tasks.push(tokio::spawn(link.pull_loop(shutdown.clone())));
    }
    Ok(tasks)
}

/// Where the writer's answer for a queued batch arrives.
type PendingIngest =
    tokio::sync::oneshot::Receiver<Result<crate::node::Ingested, crate::error::NodeError>>;

struct Link {
    node: Arc<Node>,
    peer: String,
    reader: LedgerClient<Channel>,
    pusher: ReplicationClient<Channel>,
    token: MetadataValue<tonic::metadata::Ascii>,
    faults: Arc<Faults>,
    settings: Settings,
    wake: Notify,
}

impl Link {
    fn me(&self) -> &str {
        self.node.market()
    }

    async fn push_loop(
        self: Arc<Self>,
        mut rx: broadcast::Receiver<Arc<crate::node::Committed>>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut down = false;
        loop {
            let first = tokio::select! {
                _ = shutdown.changed() => return,
                c = rx.recv() => c,
            };
            let mut commits = Vec::new();
            match first {
                Ok(c) => commits.push(c),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed commits reach the peer through its pulls and ours.
                    self.wake.notify_one();
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
            while let Ok(c) = rx.try_recv() {
                commits.push(c);
                if commits.len() >= 64 {
                    break;
                }
            }
            let mut entries = Vec::new();
            let mut forks = Vec::new();
            for c in &commits {
                for (v, local) in c.entries.iter().zip(&c.local) {
                    if *local {
                        entries.push(v.signed.clone());
                    }
                }
                forks.extend(c.forks.iter().cloned());
            }
            for chunk_start in
                (0..entries.len().max(1)).step_by(self.settings.batch_entries as usize)
            {
                let end = (chunk_start + self.settings.batch_entries as usize).min(entries.len());
                let chunk = entries[chunk_start..end].to_vec();
                let chunk_forks = if chunk_start == 0 {
                    std::mem::take(&mut forks)
                } else {
                    Vec::new()
                };
                if chunk.is_empty() && chunk_forks.is_empty() {
                    continue;
                }
                match self.push(chunk, chunk_forks).await {
                    Ok(reply) => {
                        if down {
                            info!(market = %self.me(), peer = %self.peer, "peer reachable again");
                            down = false;
                            self.wake.notify_one();
                        }
                        if reply.deferred > 0 {
                            // The peer misses earlier entries; our puller's peer will pull them.
                            debug!(market = %self.me(), peer = %self.peer, deferred = reply.deferred, "peer deferred pushed entries");
                        }
                    }
                    Err(status) => {
                        if !down {
                            warn!(market = %self.me(), peer = %self.peer, error = %status.message(), "push failed; relying on pulls");
                        }
                        down = true;
                    }
                }
            }
        }
    }

    async fn push(
        &self,
        entries: Vec<pb::SignedEntry>,
        forks: Vec<pb::ForkEvidence>,
    ) -> Result<pb::PushResponse, tonic::Status> {
        self.faults.pass(self.me(), &self.peer).await?;
        let mut request = tonic::Request::new(pb::PushRequest { entries, forks });
        request
            .metadata_mut()
            .insert("authorization", self.token.clone());
        let reply = self.pusher.clone().push(request).await?.into_inner();
        // A reply crosses the link back, and may be delayed or lost on the way.
        self.faults.pass(&self.peer, self.me()).await?;
        Ok(reply)
    }

    async fn pull_loop(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            let wait = if failures == 0 {
                self.settings.pull_interval
            } else {
                // Backoff: 2, 4, 8 ... intervals, at most 30 s, so a dead peer costs little.
                (self.settings.pull_interval * 2u32.saturating_pow(failures.min(8)))
                    .min(Duration::from_secs(30))
            };
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified() => {}
            }
            match self.pull_once().await {
                Ok(stored) => {
                    if failures > 0 {
                        info!(market = %self.me(), peer = %self.peer, stored, "pull from peer works again");
                        failures = 0;
                        // Reconnected: pull again at once in case more arrived meanwhile.
                        self.wake.notify_one();
                    }
                }
                Err(e) => {
                    if failures == 0 {
                        warn!(market = %self.me(), peer = %self.peer, error = %e, "pull failed; backing off");
                    }
                    failures = failures.saturating_add(1);
                }
            }
        }
    }

    async fn call<T>(
        &self,
        fut: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, String> {
        self.faults
            .pass(&self.peer, self.me())
            .await
            .map_err(|s| s.message().to_string())?;
        let reply = fut
            .await
            .map_err(|s| format!("{}: {}", s.code(), s.message()))?;
        Ok(reply.into_inner())
    }

    /// One anti-entropy round with the peer; returns how many entries were stored.
    async fn pull_once(&self) -> Result<u64, String> {
        self.faults
            .pass(self.me(), &self.peer)
            .await
            .map_err(|s| s.message().to_string())?;
        let heads = self
            .call(self.reader.clone().heads(pb::HeadsRequest {}))
            .await?
            .heads;
        let mut stored = 0u64;
        let mut fetch_forks = false;
        for head in heads {
            if !huren_proto::ids::valid_log_name(&head.log) {
                return Err(format!(
                    "peer sent a head for {:?}, not a log name",
                    head.log
                ));
            }
            let (mine, frozen, held_hash) = {
                let ledger = self.node.ledger();
                (
                    ledger.head(&head.log).0,
                    ledger.frozen_at(&head.log).is_some(),
                    ledger.hash_at(&head.log, head.seq),
                )
            };
            if head.frozen && !frozen {
                fetch_forks = true;
            }
            if head.seq > mine && !frozen {
                stored += self.catch_up(&head.log, mine, head.seq).await?;
            } else if head.seq > 0
                && head.seq <= mine
                && held_hash.is_some_and(|h| h.as_slice() != head.hash.as_slice())
            {
                // Same seq, different entry: fetch theirs so the fork is recorded as evidence.
                self.fetch_one(&head.log, head.seq).await?;
            }
        }
        if fetch_forks {
            let forks = self
                .call(self.reader.clone().forks(pb::ForksRequest {}))
                .await?
                .forks;
            self.node
                .ingest(Vec::new(), forks, false)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(stored)
    }

    async fn fetch_one(&self, log: &str, seq: u64) -> Result<(), String> {
        self.faults
            .pass(self.me(), &self.peer)
            .await
            .map_err(|s| s.message().to_string())?;
        let request = pb::ReadLogRequest {
            log: log.into(),
            from: seq,
            limit: 1,
        };
        let entries = self
            .call(self.reader.clone().read_log(request))
            .await?
            .entries;
        self.node
            .ingest(entries, Vec::new(), false)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Reads `log` from the peer from `mine + 1` up to `target` and stores it, as a pipeline:
    /// while the writer stores batch k, batch k+1 has its signatures checked and batch k+2 is
    /// on its way. Batches are queued to the writer in order, so none is skipped; a batch the
    /// writer cannot place yet (after a refused one) is left for the next round.
    async fn catch_up(&self, log: &str, mine: u64, target: u64) -> Result<u64, String> {
        let mut stored = 0u64;
        let mut from = mine + 1;
        let mut fetch = Some(self.spawn_read(log, from));
        let mut pending: Option<(u64, PendingIngest)> = None;
        while let Some(next) = fetch.take() {
            let entries = next.await.map_err(|e| format!("read task failed: {e}"))??;
            if entries.is_empty() {
                break;
            }
            let batch_from = from;
            from += entries.len() as u64;
            if from <= target {
                fetch = Some(self.spawn_read(log, from));
            }
            let checked = self
                .node
                .preverify(entries)
                .await
                .map_err(|e| e.to_string())?;
            let queued = self
                .node
                .enqueue_ingest(checked, Vec::new(), false)
                .await
                .map_err(|e| e.to_string())?;
            if let Some((earlier_from, earlier)) = pending.replace((batch_from, queued)) {
                match self.settle(log, earlier_from, earlier).await? {
                    Some(n) => stored += n,
                    None => return Ok(stored),
                }
            }
        }
        if let Some((earlier_from, earlier)) = pending {
            stored += self.settle(log, earlier_from, earlier).await?.unwrap_or(0);
        }
        Ok(stored)
    }

    /// Reads one batch of `log` from `from`, through the link's faults, on a task of its own.
    fn spawn_read(
        &self,
        log: &str,
        from: u64,
    ) -> tokio::task::JoinHandle<Result<Vec<pb::SignedEntry>, String>> {
        let faults = Arc::clone(&self.faults);
        let (me, peer) = (self.me().to_string(), self.peer.clone());
        let mut reader = self.reader.clone();
        let request = pb::ReadLogRequest {
            log: log.into(),
            from,
            limit: self.settings.batch_entries,
        };
        tokio::spawn(async move {
            faults
                .pass(&me, &peer)
                .await
                .map_err(|s| s.message().to_string())?;
            let reply = reader
                .read_log(request)
                .await
                .map_err(|s| format!("{}: {}", s.code(), s.message()))?;
            faults
                .pass(&peer, &me)
                .await
                .map_err(|s| s.message().to_string())?;
            Ok(reply.into_inner().entries)
        })
    }

    /// Waits for a queued batch to be stored. `Some(stored)` to go on, `None` when the batch
    /// was refused in a way that ends this round (its fork, if any, is then recorded).
    async fn settle(
        &self,
        log: &str,
        batch_from: u64,
        pending: PendingIngest,
    ) -> Result<Option<u64>, String> {
        let result = pending
            .await
            .map_err(|_| "the node is stopping".to_string())?
            .map_err(|e| e.to_string())?;
        if result.refused == 0 {
            return Ok((result.stored > 0).then_some(u64::from(result.stored)));
        }
        let why = result.first_refusal.unwrap_or_default();
        if result.stored == 0 && batch_from > 1 && why.contains("broken chain") {
            // Their next entry does not follow ours: their entry at our head differs.
            self.fetch_one(log, batch_from - 1).await?;
            return Ok(None);
        }
        warn!(market = %self.me(), peer = %self.peer, log, refused = result.refused, why = %why, "peer relayed entries that failed verification");
        Err(format!(
            "{} entries of {log} refused: {why}",
            result.refused
        ))
    }
}
