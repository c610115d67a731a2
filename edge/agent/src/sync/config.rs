//! `[sync]`: where the pull API listens and who may use it.
//!
//! Plaintext is only allowed on a loopback address unless `allow_plaintext = true` says the
//! operator means it (for example behind a TLS-terminating tunnel); with `[sync.tls]` the server
//! speaks TLS, and with `client_ca` it also demands client certificates (mTLS). Bearer tokens are
//! named so that logs and `GetInfo` can say which client did what without showing the token.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::config::{ConfigError, Errs};

/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
/// Default time between gateway health snapshots in the outbox.
pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Shortest token accepted: a guessable token is worse than none, as it looks like security.
pub const MIN_TOKEN_LEN: usize = 16;

/// `[sync]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    /// Serve the pull API at all.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
    /// `host:port` to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Allow plaintext on a non-loopback address (off: such a config is refused).
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Bearer tokens; when there are none, requests need no token (allowed on loopback only,
    /// or with mTLS).
    #[serde(default)]
    pub tokens: Vec<RawToken>,
    /// TLS (and mTLS) settings.
    #[serde(default)]
    pub tls: Option<RawTls>,
    /// How often (in service mode) a gateway health snapshot is queued for the cloud; one is
    /// also queued at every clean shutdown.
    #[serde(default = "default_health_interval", with = "humantime_serde")]
    pub health_interval: Duration,
}

fn default_health_interval() -> Duration {
    DEFAULT_HEALTH_INTERVAL
}

fn default_enabled() -> bool {
    true
}
fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}

impl Default for RawSync {
    fn default() -> Self {
        RawSync {
            enabled: true,
            listen: default_listen(),
            allow_plaintext: false,
            tokens: Vec::new(),
            tls: None,
            health_interval: DEFAULT_HEALTH_INTERVAL,
        }
    }
}

/// One `[[sync.tokens]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    /// Who holds it (logged, never the token itself).
    pub name: String,
    /// The token, inline.
    #[serde(default)]
    pub token: Option<String>,
    /// Or a file holding it (first line; relative to the config file).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// `[sync.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Server certificate chain, PEM.
    pub cert: PathBuf,
    /// Server private key, PEM.
    pub key: PathBuf,
    /// CA bundle (PEM) that client certificates must chain to; set = mTLS.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// A named bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Holder's name.
    pub name: String,
    /// The secret.
    pub secret: String,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Token({}, redacted)", self.name)
    }
}

/// Validated TLS material (PEM bytes).
#[derive(Clone)]
pub struct Tls {
    /// Certificate chain.
    pub cert_pem: Vec<u8>,
    /// Private key.
    pub key_pem: Vec<u8>,
    /// Client CA bundle, for mTLS.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls(mtls: {})", self.client_ca_pem.is_some())
    }
}

/// Validated `[sync]`.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// Whether to serve.
    pub enabled: bool,
    /// Listen address.
    pub listen: SocketAddr,
    /// Accepted tokens (empty = none required).
    pub tokens: Vec<Token>,
    /// TLS, when configured.
    pub tls: Option<Tls>,
    /// Time between health snapshots.
    pub health_interval: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        SyncConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tokens: Vec::new(),
            tls: None,
            health_interval: DEFAULT_HEALTH_INTERVAL,
        }
    }
}

fn read(errs: &Errs<'_>, key: &str, base: &Path, p: &Path) -> Result<Vec<u8>, ConfigError> {
    let path = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    errs.read(key, &path)
}

/// Compares without an early exit, so response time does not reveal a token's prefix.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The configured token equal to `given` (the text after `Bearer `), compared in constant time.
pub fn find_token<'a>(tokens: &'a [Token], given: &str) -> Option<&'a Token> {
    tokens
        .iter()
        .find(|t| ct_eq(t.secret.as_bytes(), given.as_bytes()))
}

/// Validates named bearer tokens given at `prefix` (e.g. `sync.tokens`); relative token files
/// are read from `base`.
pub fn validate_tokens(
    errs: &Errs<'_>,
    prefix: &str,
    base: &Path,
    raw: &[RawToken],
) -> Result<Vec<Token>, ConfigError> {
    let mut tokens: Vec<Token> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let key = format!("{prefix}[{i}]");
        if t.name.trim().is_empty() {
            return Err(errs.at(format!("{key}.name"), "must not be empty"));
        }
        if tokens.iter().any(|o| o.name == t.name) {
            return Err(errs.at(
                format!("{key}.name"),
                format!("duplicate token name {:?}", t.name),
            ));
        }
        let secret = match (&t.token, &t.token_file) {
            (Some(s), None) => s.clone(),
            (None, Some(f)) => {
                let bytes = read(errs, &format!("{key}.token_file"), base, f)?;
                String::from_utf8_lossy(&bytes)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            }
            _ => return Err(errs.at(key, "set exactly one of `token` and `token_file`")),
        };
        if secret.len() < MIN_TOKEN_LEN || !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err(errs.at(
                format!("{key}.token"),
                format!(
                    "must be at least {MIN_TOKEN_LEN} printable ASCII characters without spaces"
                ),
            ));
        }
        tokens.push(Token {
            name: t.name.clone(),
            secret,
        });
    }
    Ok(tokens)
}

impl RawSync {
    /// Validates `[sync]`; `base` anchors relative paths.
    pub fn validate(&self, errs: &Errs<'_>, base: &Path) -> Result<SyncConfig, ConfigError> {
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            errs.at(
                "sync.listen",
                format!(
                    "{:?} is not an IP address and port (e.g. 127.0.0.1:50051)",
                    self.listen
                ),
            )
        })?;
        let tokens = validate_tokens(errs, "sync.tokens", base, &self.tokens)?;
        let tls = match &self.tls {
            None => None,
            Some(t) => Some(Tls {
                cert_pem: read(errs, "sync.tls.cert", base, &t.cert)?,
                key_pem: read(errs, "sync.tls.key", base, &t.key)?,
                client_ca_pem: match &t.client_ca {
                    Some(p) => Some(read(errs, "sync.tls.client_ca", base, p)?),
                    None => None,
                },
            }),
        };
        if self.enabled && tls.is_none() && !listen.ip().is_loopback() && !self.allow_plaintext {
            return Err(errs.at(
                "sync.listen",
                format!(
                    "{listen} is not a loopback address and [sync.tls] is not set: refusing to serve records in plaintext (configure TLS, or set sync.allow_plaintext = true if a tunnel encrypts the link)"
                ),
            ));
        }
        let mtls = tls.as_ref().is_some_and(|t| t.client_ca_pem.is_some());
        if self.enabled && tokens.is_empty() && !listen.ip().is_loopback() && !mtls {
            return Err(errs.at(
                "sync.tokens",
                format!("{listen} is reachable from the network: configure [[sync.tokens]] or mTLS (sync.tls.client_ca)"),
            ));
        }
        if self.health_interval < Duration::from_secs(1) {
            return Err(errs.at("sync.health_interval", "must be at least 1s"));
        }
        Ok(SyncConfig {
            enabled: self.enabled,
            listen,
            tokens,
            tls,
            health_interval: self.health_interval,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<SyncConfig, ConfigError> {
        let raw: RawSync = toml::from_str(text).unwrap();
        raw.validate(
            &Errs {
                file: Path::new("/etc/se.toml"),
                reads: crate::config::FileReads::Disk,
            },
            Path::new("/etc"),
        )
    }

    #[test]
    fn defaults_listen_on_loopback_without_tokens() {
        let c = check("").unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(c.tokens.is_empty() && c.tls.is_none() && c.enabled);
    }

    #[test]
    fn refusals_name_the_key() {
        let long = "t0ken-0123456789abcdef";
        let table = [
            ("listen = \"nowhere\"", "sync.listen", "not an IP address"),
            ("listen = \"0.0.0.0:50051\"", "sync.listen", "refusing to serve records in plaintext"),
            ("listen = \"0.0.0.0:50051\"\nallow_plaintext = true", "sync.tokens", "reachable from the network"),
            ("[[tokens]]\nname = \"cloud\"\ntoken = \"short\"", "sync.tokens[0].token", "at least 16"),
            ("[[tokens]]\nname = \"cloud\"", "sync.tokens[0]", "exactly one"),
            (
                &format!("[[tokens]]\nname = \"a\"\ntoken = \"{long}\"\n[[tokens]]\nname = \"a\"\ntoken = \"{long}\""),
                "sync.tokens[1].name",
                "duplicate",
            ),
            ("[tls]\ncert = \"/nonexistent/c.pem\"\nkey = \"k.pem\"", "sync.tls.cert", "cannot read"),
            ("health_interval = \"10ms\"", "sync.health_interval", "at least 1s"),
        ];
        for (text, key, reason) in table {
            let e = check(text).unwrap_err();
            assert_eq!(e.key, key, "{text}");
            assert!(e.reason.contains(reason), "{text}: {}", e.reason);
        }
        let ok = check(&format!(
            "listen = \"0.0.0.0:50051\"\nallow_plaintext = true\n[[tokens]]\nname = \"cloud\"\ntoken = \"{long}\""
        ))
        .unwrap();
        assert_eq!(ok.tokens[0].name, "cloud");
        assert_eq!(format!("{:?}", ok.tokens[0]), "Token(cloud, redacted)");
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(toml::from_str::<RawSync>("listn = \"x\"").is_err());
    }
}
