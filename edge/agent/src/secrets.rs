//! Loading the hashing secrets: from a secrets file kept outside the data directory (mode 0600),
//! or from the environment. Secrets never appear in logs or errors.
//!
//! Two secrets: the device-key secret (MAC → device key) and the tenant secret (E.164 phone
//! number → person key). The tenant secret is shared by every gateway of a retailer, so one
//! shopper has one person key in every store; the device-key secret may differ per gateway.

use std::path::Path;

use anyhow::{bail, Context};
use edge_core::Secret;
use serde::Deserialize;

/// Environment variable holding the device-key secret (hex) when no secrets file is set.
pub const ENV_DEVICE_KEY_SECRET: &str = "STORE_EDGE_DEVICE_KEY_SECRET";
/// Environment variable holding the device-key secret's version.
pub const ENV_DEVICE_KEY_VERSION: &str = "STORE_EDGE_DEVICE_KEY_VERSION";
/// Environment variable holding the tenant secret (hex) when no secrets file is set.
pub const ENV_TENANT_SECRET: &str = "STORE_EDGE_TENANT_SECRET";
/// Environment variable holding the tenant secret's version.
pub const ENV_TENANT_VERSION: &str = "STORE_EDGE_TENANT_SECRET_VERSION";
/// Fewest secret bytes accepted (128 bits).
const MIN_SECRET_BYTES: usize = 16;

/// The secrets file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    /// Device-key HMAC secret, hex (at least 32 hex digits).
    device_key_secret: String,
    /// Version of that secret; bump it when rotating the secret.
    #[serde(default = "one")]
    device_key_version: u32,
    /// Tenant HMAC secret for person keys, hex (at least 32 hex digits); needed when portal
    /// sources or a staff phone list are configured.
    #[serde(default)]
    tenant_secret: Option<String>,
    /// Version of the tenant secret.
    #[serde(default = "one")]
    tenant_secret_version: u32,
}

fn one() -> u32 {
    1
}

/// The loaded secrets.
#[derive(Clone)]
pub struct Secrets {
    /// Device-key secret.
    pub device: Secret,
    /// Tenant secret, when configured.
    pub tenant: Option<Secret>,
}

fn decode(hex_str: &str, what: &str, name: &str) -> anyhow::Result<Vec<u8>> {
    let bytes =
        hex::decode(hex_str.trim()).map_err(|_| anyhow::anyhow!("{what}: {name} is not hex"))?;
    if bytes.len() < MIN_SECRET_BYTES {
        bail!("{what}: {name} must be at least {MIN_SECRET_BYTES} bytes (32 hex digits)");
    }
    Ok(bytes)
}

fn env_version(var: &str) -> anyhow::Result<u32> {
    Ok(std::env::var(var)
        .ok()
        .map(|v| v.parse::<u32>())
        .transpose()
        .with_context(|| format!("{var} is not a number"))?
        .unwrap_or(1))
}

/// Loads the secrets from `file`, or the environment when `file` is `None`.
pub fn load(file: Option<&Path>) -> anyhow::Result<Secrets> {
    if let Some(path) = file {
        // Bounded and never waiting on a FIFO, like every file a config names.
        let text = crate::config::read_regular_text(path)
            .with_context(|| format!("cannot read secrets file {}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    tracing::warn!(file = %path.display(), "secrets file is readable by group or others; chmod 600 it");
                }
            }
        }
        let raw: RawSecrets = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!("secrets file {}: {}", path.display(), e.message().trim())
        })?;
        let what = format!("secrets file {}", path.display());
        let tenant = match &raw.tenant_secret {
            Some(t) => Some(Secret::new(
                decode(t, &what, "tenant_secret")?,
                raw.tenant_secret_version,
            )),
            None => None,
        };
        return Ok(Secrets {
            device: Secret::new(
                decode(&raw.device_key_secret, &what, "device_key_secret")?,
                raw.device_key_version,
            ),
            tenant,
        });
    }
    let device = match std::env::var(ENV_DEVICE_KEY_SECRET) {
        Ok(v) => Secret::new(
            decode(&v, ENV_DEVICE_KEY_SECRET, "the secret")?,
            env_version(ENV_DEVICE_KEY_VERSION)?,
        ),
        Err(_) => bail!(
            "no device-key secret: set `privacy.secrets_file` in the config or the {ENV_DEVICE_KEY_SECRET} environment variable"
        ),
    };
    let tenant = match std::env::var(ENV_TENANT_SECRET) {
        Ok(v) => Some(Secret::new(
            decode(&v, ENV_TENANT_SECRET, "the secret")?,
            env_version(ENV_TENANT_VERSION)?,
        )),
        Err(_) => None,
    };
    Ok(Secrets { device, tenant })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        // (file, Ok((device version, tenant version)) or Err(message part))
        let table: [(String, Result<(u32, Option<u32>), &str>); 7] = [
            (
                format!("device_key_secret = \"{}\"\n", "ab".repeat(32)),
                Ok((1, None)),
            ),
            (
                format!(
                    "device_key_secret = \"{}\"\ndevice_key_version = 4\n",
                    "ab".repeat(16)
                ),
                Ok((4, None)),
            ),
            (
                format!(
                    "device_key_secret = \"{}\"\ntenant_secret = \"{}\"\ntenant_secret_version = 3\n",
                    "ab".repeat(16),
                    "cd".repeat(32)
                ),
                Ok((1, Some(3))),
            ),
            (
                "device_key_secret = \"abcd\"\n".to_string(),
                Err("device_key_secret must be at least 16 bytes"),
            ),
            (
                format!(
                    "device_key_secret = \"{}\"\ntenant_secret = \"abcd\"\n",
                    "ab".repeat(16)
                ),
                Err("tenant_secret must be at least 16 bytes"),
            ),
            (
                "device_key_secret = \"zz\"\n".to_string(),
                Err("not hex"),
            ),
            ("tenant = 1\n".to_string(), Err("unknown field")),
        ];
        for (text, want) in table {
            std::fs::write(&p, &text).unwrap();
            match (load(Some(&p)), want) {
                (Ok(s), Ok((d, t))) => {
                    assert_eq!(s.device.version(), d);
                    assert_eq!(s.tenant.map(|t| t.version()), t);
                }
                (Err(e), Err(msg)) => {
                    assert!(e.to_string().contains(msg), "{e}");
                    assert!(
                        !e.to_string().contains("abcd"),
                        "secret leaked into error: {e}"
                    );
                }
                (got, _) => panic!("{text}: {:?}", got.map(|_| ())),
            }
        }
    }
}
