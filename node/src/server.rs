//! Starting and stopping a node: the gRPC server (Ledger, Replication, health, reflection),
//! the HTTP server for people, and replication with every peer, all stopped by one signal.
//! `huren-node run`, `huren-node devnet` and the cluster tests all start nodes through here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use huren_proto::pb::{ledger_server::LedgerServer, replication_server::ReplicationServer};
use huren_proto::trust::Membership;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;
use tracing::info;

use crate::auth::Auth;
use crate::clock::Clock;
use crate::config::TokenEntry;
use crate::error::NodeError;
use crate::node::Node;
use crate::replication::{self, Faults, Peer, Settings};
use crate::service::{Service, MAX_MESSAGE_BYTES};
use crate::store::Store;

/// Everything needed to start one node.
pub struct Launch {
    /// Market id.
    pub market: String,
    /// The market's secret key.
    pub key: SigningKey,
    /// Folder of the store.
    pub data_dir: std::path::PathBuf,
    /// Membership from the verified trust list.
    pub membership: Membership,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// Accepted tokens.
    pub tokens: Vec<TokenEntry>,
    /// Bound gRPC listener.
    pub grpc: TcpListener,
    /// Bound HTTP listener, if the node serves people.
    pub http: Option<TcpListener>,
    /// Peers.
    pub peers: Vec<Peer>,
    /// Replication settings.
    pub settings: Settings,
    /// Link faults (empty in production).
    pub faults: Arc<Faults>,
}

/// A running node.
pub struct Running {
    /// The node.
    pub node: Arc<Node>,
    /// Where gRPC listens.
    pub grpc_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("market", &self.node.market())
            .field("grpc", &self.grpc_addr)
            .finish()
    }
}

/// Opens the store, replays it, and starts serving and replicating.
///
/// # Errors
/// [`NodeError`] from opening the store or a malformed peer.
pub async fn launch(l: Launch) -> Result<Running, NodeError> {
    let store = Store::open(&l.data_dir)?;
    let node = Node::open(&l.market, l.key, store, l.membership, l.clock)?;
    let (shutdown, signal) = watch::channel(false);
    let grpc_addr = l
        .grpc
        .local_addr()
        .map_err(|e| NodeError::Storage(e.to_string()))?;
    let service = Service::new(Arc::clone(&node), Auth::new(&l.tokens));

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<LedgerServer<Service>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(huren_proto::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| NodeError::Storage(format!("reflection: {e}")))?;
    let ledger = LedgerServer::new(service.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let replication = ReplicationServer::new(service)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let mut stop = signal.clone();
    // Nagle off on accepted connections, as tonic's own `serve` does (it skips this for an
    // incoming stream): a reply goes out in several small writes, and with Nagle on, the later
    // ones wait for the client's delayed ACK, about 40 ms on Linux.
    let incoming = TcpIncoming::from(l.grpc).with_nodelay(Some(true));
    let server = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .concurrency_limit_per_connection(256)
        .add_service(health)
        .add_service(reflection)
        .add_service(ledger)
        .add_service(replication)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stop.wait_for(|s| *s).await;
        });
    let market = l.market.clone();
    let mut tasks = vec![tokio::spawn(async move {
        if let Err(e) = server.await {
            tracing::error!(market = %market, error = %e, "gRPC server failed");
        }
    })];

    let http_addr = match l.http {
        Some(listener) => {
            let addr = listener
                .local_addr()
                .map_err(|e| NodeError::Storage(e.to_string()))?;
            tasks.push(crate::http::serve(
                Arc::clone(&node),
                listener,
                signal.clone(),
            ));
            Some(addr)
        }
        None => None,
    };
    let replicators = replication::start(Arc::clone(&node), l.peers, l.settings, l.faults, signal)
        .map_err(|m| NodeError::BadInput {
            field: "peers".into(),
            message: m,
        })?;
    tasks.extend(replicators);
    info!(market = %l.market, grpc = %grpc_addr, http = ?http_addr, "node started");
    Ok(Running {
        node,
        grpc_addr,
        http_addr,
        shutdown,
        tasks,
    })
}

impl Running {
    /// Stops serving and replicating, and waits for every task to end, then flushes the
    /// store.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
        }
        self.node.close().await;
        let _ = self.node.store().flush().await;
        info!(market = %self.node.market(), "node stopped");
    }
}
