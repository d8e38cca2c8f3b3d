//! A node's configuration file (TOML): who it is, where it keeps data, where it listens,
//! whom it replicates with, and which operator tokens it accepts. Tokens are stored only as
//! SHA-256 digests, so a config file can be read without exposing a usable token.
//!
//! ```toml
//! market = "shanxi"
//! data_dir = "/var/lib/huren/shanxi"
//! key_file = "/etc/huren/shanxi.key"
//! trust_list = "/etc/huren/trust-list.pb"
//! regulator_key = "<64 hex digits>"
//! listen = "0.0.0.0:7101"
//! http_listen = "0.0.0.0:8101"      # optional; default: gRPC port + 1000
//!
//! [[peers]]
//! market = "jiuzhou"
//! url = "http://10.0.0.2:7102"
//! token_file = "/etc/huren/peer-token"   # presented to that peer (role peer)
//!
//! [[tokens]]
//! name = "shanxi-lab"
//! role = "issuer"                  # issuer | intake | regulator | peer
//! sha256 = "<64 hex digits>"
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Issue, revoke and dispose in this market's log.
    Issuer,
    /// Record intake decisions in this market's log.
    Intake,
    /// Submit entries of the regulator's log.
    Regulator,
    /// Push replicated entries.
    Peer,
}

impl Role {
    /// The role's name as written in config files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Issuer => "issuer",
            Role::Intake => "intake",
            Role::Regulator => "regulator",
            Role::Peer => "peer",
        }
    }
}

/// An accepted token, by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds it; shows in logs instead of the token.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

/// A peer to replicate with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The peer's market id.
    pub market: String,
    /// Its gRPC URL.
    pub url: String,
    /// File holding the token to present to it (role peer there).
    pub token_file: PathBuf,
}

/// Replication tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// How often to pull from each peer, ms.
    pub pull_interval_ms: u64,
    /// Most entries per pulled or pushed batch.
    pub batch_entries: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            pull_interval_ms: 1000,
            batch_entries: 2000,
        }
    }
}

/// A node's whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This node's market id.
    pub market: String,
    /// Folder for the store.
    pub data_dir: PathBuf,
    /// The market's secret key file.
    pub key_file: PathBuf,
    /// The signed trust list.
    pub trust_list: PathBuf,
    /// The regulator's public key, hex; the trust list must be signed by it.
    pub regulator_key: String,
    /// gRPC listen address.
    pub listen: SocketAddr,
    /// HTTP listen address; default: gRPC port + 1000 on the same host.
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
    /// Peers.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
    /// Accepted tokens.
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
    /// Replication tuning.
    #[serde(default)]
    pub replication: ReplicationConfig,
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    /// The TOML is malformed or a value is out of range.
    #[error("{0}: {1}")]
    Invalid(String, String),
}

impl Config {
    /// Reads and checks a config file. Relative paths in it are taken relative to the file.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the problem.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io(name.clone(), e))?;
        let mut config: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Invalid(name.clone(), e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut config.data_dir,
            &mut config.key_file,
            &mut config.trust_list,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        for peer in &mut config.peers {
            if peer.token_file.is_relative() {
                peer.token_file = base.join(&peer.token_file);
            }
        }
        config.check().map_err(|m| ConfigError::Invalid(name, m))?;
        Ok(config)
    }

    /// Checks values that TOML types cannot.
    ///
    /// # Errors
    /// A sentence naming the setting at fault.
    pub fn check(&self) -> Result<(), String> {
        if !huren_proto::ids::is_market_id(&self.market) {
            return Err(format!("market: {:?} is not a market id", self.market));
        }
        huren_proto::keyfile::parse_public_hex(&self.regulator_key)
            .map_err(|e| format!("regulator_key: {e}"))?;
        for (i, t) in self.tokens.iter().enumerate() {
            let ok = t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(format!("tokens[{i}].sha256: want 64 hex digits"));
            }
        }
        for (i, p) in self.peers.iter().enumerate() {
            if !huren_proto::ids::is_market_id(&p.market) || p.market == self.market {
                return Err(format!(
                    "peers[{i}].market: {:?} is not another market's id",
                    p.market
                ));
            }
        }
        if self.replication.batch_entries == 0 || self.replication.batch_entries > 10_000 {
            return Err("replication.batch_entries: must be 1 to 10000".into());
        }
        if self.replication.pull_interval_ms < 10 {
            return Err("replication.pull_interval_ms: must be 10 or more".into());
        }
        Ok(())
    }

    /// The HTTP listen address: the configured one, or the gRPC port plus 1000.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_listen.unwrap_or_else(|| {
            let mut addr = self.listen;
            addr.set_port(addr.port().saturating_add(1000));
            addr
        })
    }
}

/// Hex SHA-256 of a token, as stored in [`TokenEntry::sha256`].
pub fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token: 32 bytes from the OS, hex.
pub fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_example_config_has_the_shape_nodes_read() {
        let text = include_str!("../../deploy/config.example.toml");
        let config: Config = toml::from_str(text).expect("deploy/config.example.toml parses");
        assert_eq!(config.market, "shanxi");
        assert_eq!(config.http_addr().port(), 8101);
        assert_eq!(config.tokens.len(), 4);
        // Its placeholders are not real values, and the checks say which one is missing.
        assert!(config.check().unwrap_err().starts_with("regulator_key"));
    }

    #[test]
    fn the_http_port_defaults_to_the_grpc_port_plus_1000() {
        let mut text = include_str!("../../deploy/config.example.toml").to_string();
        text = text.replace("http_listen = \"0.0.0.0:8101\"\n", "");
        let config: Config = toml::from_str(&text).unwrap();
        assert_eq!(config.http_addr().port(), 8101);
    }
}
