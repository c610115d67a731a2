//! Loading the hashing secrets: from a secrets file kept outside the data directory (mode 0600),
//! or from the environment. The secret never appears in logs or errors.

use std::path::Path;

use anyhow::{bail, Context};
use edge_core::Secret;
use serde::Deserialize;

/// Environment variable holding the device-key secret (hex) when no secrets file is set.
pub const ENV_DEVICE_KEY_SECRET: &str = "STORE_EDGE_DEVICE_KEY_SECRET";
/// Environment variable holding the device-key secret's version.
pub const ENV_DEVICE_KEY_VERSION: &str = "STORE_EDGE_DEVICE_KEY_VERSION";
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
}

fn one() -> u32 {
    1
}

fn decode(hex_str: &str, what: &str) -> anyhow::Result<Vec<u8>> {
    let bytes = hex::decode(hex_str.trim())
        .map_err(|_| anyhow::anyhow!("{what}: device_key_secret is not hex"))?;
    if bytes.len() < MIN_SECRET_BYTES {
        bail!(
            "{what}: device_key_secret must be at least {MIN_SECRET_BYTES} bytes (32 hex digits)"
        );
    }
    Ok(bytes)
}

/// Loads the device-key secret from `file`, or the environment when `file` is `None`.
pub fn load_device_secret(file: Option<&Path>) -> anyhow::Result<Secret> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
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
        return Ok(Secret::new(
            decode(&raw.device_key_secret, &what)?,
            raw.device_key_version,
        ));
    }
    match std::env::var(ENV_DEVICE_KEY_SECRET) {
        Ok(v) => {
            let version = std::env::var(ENV_DEVICE_KEY_VERSION)
                .ok()
                .map(|v| v.parse::<u32>())
                .transpose()
                .with_context(|| format!("{ENV_DEVICE_KEY_VERSION} is not a number"))?
                .unwrap_or(1);
            Ok(Secret::new(decode(&v, ENV_DEVICE_KEY_SECRET)?, version))
        }
        Err(_) => bail!(
            "no device-key secret: set `privacy.secrets_file` in the config or the {ENV_DEVICE_KEY_SECRET} environment variable"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_secrets_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.toml");
        let table = [
            (
                format!("device_key_secret = \"{}\"\n", "ab".repeat(32)),
                Ok(1),
            ),
            (
                format!(
                    "device_key_secret = \"{}\"\ndevice_key_version = 4\n",
                    "ab".repeat(16)
                ),
                Ok(4),
            ),
            (
                "device_key_secret = \"abcd\"\n".to_string(),
                Err("at least 16 bytes"),
            ),
            ("device_key_secret = \"zz\"\n".to_string(), Err("not hex")),
            ("tenant = 1\n".to_string(), Err("unknown field")),
        ];
        for (text, want) in table {
            std::fs::write(&p, &text).unwrap();
            match (load_device_secret(Some(&p)), want) {
                (Ok(s), Ok(v)) => assert_eq!(s.version(), v),
                (Err(e), Err(msg)) => {
                    assert!(e.to_string().contains(msg), "{e}");
                    assert!(
                        !e.to_string().contains("abcd"),
                        "secret leaked into error: {e}"
                    );
                }
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }
}
