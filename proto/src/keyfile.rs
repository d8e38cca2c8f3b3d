//! Key files. A secret key is stored as one line, `ed25519-secret:` followed by 64 hex
//! digits, in a file only its owner may read. Public keys travel as 64 hex digits. This
//! module never prints or logs a secret; callers must not either.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};

const SECRET_PREFIX: &str = "ed25519-secret:";

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a key file of this format.
    #[error("{0}: not a Huren secret key file (expected one line ed25519-secret:<64 hex digits>)")]
    Malformed(String),
    /// The file exists and overwriting was not asked for.
    #[error("{0} already exists; refusing to overwrite a key")]
    Exists(String),
}

/// A fresh key from the operating system's random source.
pub fn generate() -> SigningKey {
    SigningKey::generate(&mut rand::rngs::OsRng)
}

/// Writes `key` to `path`, readable and writable by its owner only; never overwrites.
///
/// # Errors
/// [`KeyFileError::Exists`] or [`KeyFileError::Io`].
pub fn write_secret(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyFileError::Exists(path.display().to_string())
        } else {
            io(e)
        }
    })?;
    writeln!(file, "{SECRET_PREFIX}{}", hex::encode(key.to_bytes())).map_err(io)?;
    file.sync_all().map_err(io)
}

/// Reads a secret key file.
///
/// # Errors
/// [`KeyFileError::Io`] or [`KeyFileError::Malformed`].
pub fn read_secret(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let malformed = || KeyFileError::Malformed(path.display().to_string());
    let hex_part = text
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(malformed)?;
    let bytes: [u8; 32] = hex::decode(hex_part)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(malformed)?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A public key as 64 hex digits.
pub fn public_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Parses a public key from 64 hex digits, strictly (see [`crate::format::parse_public_key`]).
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse_public_hex(text: &str) -> Result<VerifyingKey, String> {
    let bytes = hex::decode(text.trim()).map_err(|_| "public key is not hex".to_string())?;
    crate::format::parse_public_key(&bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_and_is_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("huren-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.key");
        let _ = std::fs::remove_file(&path);
        let key = generate();
        write_secret(&path, &key).unwrap();
        assert_eq!(read_secret(&path).unwrap().to_bytes(), key.to_bytes());
        assert!(matches!(
            write_secret(&path, &generate()),
            Err(KeyFileError::Exists(_))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                mode, 0o600,
                "key files must be readable by their owner only"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
