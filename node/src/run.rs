//! `huren-node run --config FILE`: one market's node as a long-running process, configured
//! from a file, stopped by Ctrl-C or SIGTERM.

use std::path::Path;
use std::sync::Arc;

use huren_proto::pb::SignedTrustList;
use huren_proto::trust::Membership;
use prost::Message;

use crate::clock::SystemClock;
use crate::config::Config;
use crate::error::NodeError;
use crate::replication::{Faults, Peer};
use crate::server::{self, Launch, Running};

/// Reads a signed trust list file and checks it against the pinned regulator key (hex).
///
/// # Errors
/// [`NodeError::BadInput`] naming the file and the problem.
pub fn load_membership(path: &Path, regulator_key_hex: &str) -> Result<Membership, NodeError> {
    let bad = |m: String| NodeError::BadInput {
        field: "trust_list".into(),
        message: m,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
    let signed = SignedTrustList::decode(bytes.as_slice())
        .map_err(|e| bad(format!("{}: not a signed trust list: {e}", path.display())))?;
    let pinned = huren_proto::keyfile::parse_public_hex(regulator_key_hex).map_err(bad)?;
    Membership::from_trust_list(&signed, &pinned)
        .map_err(|e| bad(format!("{}: {e}", path.display())))
}

/// Reads a token file (one line), refusing an empty one.
///
/// # Errors
/// [`NodeError::BadInput`].
pub fn read_token(path: &Path) -> Result<String, NodeError> {
    let text = std::fs::read_to_string(path).map_err(|e| NodeError::BadInput {
        field: "token_file".into(),
        message: format!("{}: {e}", path.display()),
    })?;
    let token = text.trim().to_string();
    if token.is_empty() {
        return Err(NodeError::BadInput {
            field: "token_file".into(),
            message: format!("{} is empty", path.display()),
        });
    }
    Ok(token)
}

/// Starts the node a config file describes.
///
/// # Errors
/// [`NodeError`] for an unreadable key, trust list or token file, a port in use, or a store
/// that does not open or verify.
pub async fn start(config: &Config) -> Result<Running, NodeError> {
    let key =
        huren_proto::keyfile::read_secret(&config.key_file).map_err(|e| NodeError::BadInput {
            field: "key_file".into(),
            message: e.to_string(),
        })?;
    let membership = load_membership(&config.trust_list, &config.regulator_key)?;
    let bind = |addr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| NodeError::Unavailable(format!("cannot listen on {addr}: {e}")))
    };
    let grpc = bind(config.listen).await?;
    let http = bind(config.http_addr()).await?;
    let peers = config
        .peers
        .iter()
        .map(|p| {
            Ok(Peer {
                market: p.market.clone(),
                url: p.url.clone(),
                token: read_token(&p.token_file)?,
            })
        })
        .collect::<Result<Vec<_>, NodeError>>()?;
    server::launch(Launch {
        market: config.market.clone(),
        key,
        data_dir: config.data_dir.clone(),
        membership,
        clock: Arc::new(SystemClock),
        tokens: config.tokens.clone(),
        grpc,
        http: Some(http),
        peers,
        settings: config.replication.into(),
        faults: Arc::new(Faults::default()),
    })
    .await
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn stop_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler succeeds on unix");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
