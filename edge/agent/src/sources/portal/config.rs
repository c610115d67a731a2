//! `[[sources.portal]]`: where captive-portal logins come from — a FreeRADIUS `detail` file, an
//! openNDS BinAuth log (both followed like `tail -F`), or an HTTP webhook the portal calls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, Errs};
use crate::sync::config::{validate_tokens, RawToken, Token};

/// Default openNDS field carrying the phone number: the FAS's custom string.
pub const DEFAULT_PHONE_FIELD: &str = "custom";
/// Default largest webhook body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024;

/// One `[[sources.portal]]` table as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPortal {
    /// Source name, unique among sources (defaults to the format name).
    #[serde(default)]
    pub name: Option<String>,
    /// `"freeradius-detail"`, `"opennds-binauth"` or `"webhook"`.
    pub format: String,
    /// The file to follow (`freeradius-detail`, `opennds-binauth`), relative to the config.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `host:port` the webhook listens on (`webhook`).
    #[serde(default)]
    pub listen: Option<String>,
    /// Keep reading the file as it grows, across rotation and truncation (`true`), or read it
    /// to its end and stop, for replaying a saved log (`false`). `run --once` always stops at
    /// the end.
    #[serde(default = "default_follow")]
    pub follow: bool,
    /// openNDS: the field holding the phone number — `"custom"` (the whole custom string the
    /// FAS passes), `"custom.<key>"` (a key inside an url-encoded custom string), or any other
    /// field of the log line.
    #[serde(default = "default_phone_field")]
    pub phone_field: String,
    /// Webhook bearer tokens, each named; required unless the webhook listens on loopback.
    #[serde(default)]
    pub tokens: Vec<RawToken>,
    /// Webhook: largest request body accepted, bytes (larger: 413).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
}

fn default_follow() -> bool {
    true
}
fn default_phone_field() -> String {
    DEFAULT_PHONE_FIELD.to_string()
}
fn default_max_body() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

/// The login formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortalFormat {
    /// FreeRADIUS accounting `detail` file.
    FreeradiusDetail,
    /// openNDS BinAuth log.
    OpenndsBinauth,
    /// JSON webhook.
    Webhook,
}

impl PortalFormat {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PortalFormat::FreeradiusDetail => "freeradius-detail",
            PortalFormat::OpenndsBinauth => "opennds-binauth",
            PortalFormat::Webhook => "webhook",
        }
    }
}

/// Where a portal source reads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortalInput {
    /// A file followed like `tail -F`.
    File(PathBuf),
    /// An HTTP listener.
    Listen(SocketAddr),
}

/// A validated portal source.
#[derive(Debug, Clone)]
pub struct PortalSource {
    /// Unique source name.
    pub name: String,
    /// Format.
    pub format: PortalFormat,
    /// File or listener.
    pub input: PortalInput,
    /// Follow a file as it grows.
    pub follow: bool,
    /// openNDS phone field.
    pub phone_field: String,
    /// Webhook tokens (empty: none required, loopback only).
    pub tokens: Vec<Token>,
    /// Webhook body limit.
    pub max_body_bytes: usize,
}

impl RawPortal {
    /// Validates this table; `key` is its dotted position (`sources.portal[0]`).
    pub fn validate(
        &self,
        errs: &Errs<'_>,
        key: &str,
        base: &Path,
    ) -> Result<PortalSource, ConfigError> {
        let format = match self.format.as_str() {
            "freeradius-detail" => PortalFormat::FreeradiusDetail,
            "opennds-binauth" => PortalFormat::OpenndsBinauth,
            "webhook" => PortalFormat::Webhook,
            other => {
                return Err(errs.at(
                    format!("{key}.format"),
                    format!("unknown portal format {other:?} (known: freeradius-detail, opennds-binauth, webhook)"),
                ))
            }
        };
        let name = self
            .name
            .clone()
            .unwrap_or_else(|| format.as_str().to_string());
        if name.is_empty() || name.chars().any(|c| c.is_control()) {
            return Err(errs.at(format!("{key}.name"), "must be non-empty printable text"));
        }
        let input = match (format, &self.path, &self.listen) {
            (PortalFormat::Webhook, None, Some(l)) => {
                let addr: SocketAddr = l.parse().map_err(|_| {
                    errs.at(
                        format!("{key}.listen"),
                        format!("{l:?} is not an IP address and port (e.g. 127.0.0.1:8088)"),
                    )
                })?;
                PortalInput::Listen(addr)
            }
            (PortalFormat::Webhook, _, _) => {
                return Err(errs.at(key, "a webhook needs `listen` (and no `path`)"))
            }
            (_, Some(p), None) => PortalInput::File(if p.is_absolute() {
                p.clone()
            } else {
                base.join(p)
            }),
            (_, _, _) => {
                return Err(errs.at(
                    key,
                    format!("format {} needs `path` (and no `listen`)", format.as_str()),
                ))
            }
        };
        let tokens = validate_tokens(errs, &format!("{key}.tokens"), base, &self.tokens)?;
        if format != PortalFormat::Webhook && !tokens.is_empty() {
            return Err(errs.at(format!("{key}.tokens"), "only a webhook takes tokens"));
        }
        if let PortalInput::Listen(addr) = input {
            if tokens.is_empty() && !addr.ip().is_loopback() {
                return Err(errs.at(
                    format!("{key}.tokens"),
                    format!("{addr} is reachable from the network: configure tokens"),
                ));
            }
        }
        if self.phone_field.trim().is_empty() {
            return Err(errs.at(format!("{key}.phone_field"), "must not be empty"));
        }
        if !(256..=1 << 20).contains(&self.max_body_bytes) {
            return Err(errs.at(
                format!("{key}.max_body_bytes"),
                "must be between 256 and 1048576",
            ));
        }
        if format == PortalFormat::Webhook && !self.follow {
            return Err(errs.at(
                format!("{key}.follow"),
                "only a file can be read to its end",
            ));
        }
        Ok(PortalSource {
            name,
            format,
            input,
            follow: self.follow,
            phone_field: self.phone_field.clone(),
            tokens,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<PortalSource, ConfigError> {
        let raw: RawPortal = toml::from_str(text).unwrap();
        raw.validate(
            &Errs {
                file: Path::new("/etc/se.toml"),
                reads: crate::config::FileReads::Disk,
            },
            "sources.portal[0]",
            Path::new("/etc"),
        )
    }

    #[test]
    fn formats_inputs_and_refusals() {
        let d = check("format = \"freeradius-detail\"\npath = \"radacct/detail\"").unwrap();
        assert_eq!(d.name, "freeradius-detail");
        assert_eq!(d.input, PortalInput::File("/etc/radacct/detail".into()));
        let o = check("format = \"opennds-binauth\"\npath = \"/run/ndslog/binauthlog.log\"\nphone_field = \"custom.phone\"").unwrap();
        assert_eq!(o.phone_field, "custom.phone");
        let w = check("format = \"webhook\"\nlisten = \"127.0.0.1:8088\"").unwrap();
        assert_eq!(
            w.input,
            PortalInput::Listen("127.0.0.1:8088".parse().unwrap())
        );
        let long = "portal-token-0123456789";
        let table = [
            ("format = \"radius\"\npath = \"x\"", "sources.portal[0].format", "unknown portal format"),
            ("format = \"webhook\"\npath = \"x\"", "sources.portal[0]", "needs `listen`"),
            ("format = \"freeradius-detail\"", "sources.portal[0]", "needs `path`"),
            ("format = \"webhook\"\nlisten = \"nowhere\"", "sources.portal[0].listen", "not an IP address"),
            ("format = \"webhook\"\nlisten = \"0.0.0.0:8088\"", "sources.portal[0].tokens", "reachable from the network"),
            ("format = \"webhook\"\nlisten = \"127.0.0.1:1\"\nmax_body_bytes = 10", "sources.portal[0].max_body_bytes", "between"),
            (
                &format!("format = \"freeradius-detail\"\npath = \"x\"\n[[tokens]]\nname = \"a\"\ntoken = \"{long}\""),
                "sources.portal[0].tokens",
                "only a webhook",
            ),
            (
                "format = \"webhook\"\nlisten = \"127.0.0.1:1\"\n[[tokens]]\nname = \"a\"\ntoken = \"short\"",
                "sources.portal[0].tokens[0].token",
                "at least 16",
            ),
        ];
        for (text, key, reason) in table {
            let e = check(text).unwrap_err();
            assert_eq!(e.key, key, "{text}");
            assert!(e.reason.contains(reason), "{text}: {}", e.reason);
        }
        assert!(toml::from_str::<RawPortal>("format = \"webhook\"\nlistn = \"x\"").is_err());
    }
}
