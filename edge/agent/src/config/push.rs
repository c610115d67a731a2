//! What a config pushed by the fleet (`config/desired`) may name on the gateway's disk, and
//! what the fleet is told when it is refused. The fleet may configure the gateway, never read
//! it: a push names files only inside the allowed directories (the config file's directory
//! tree and `mqtt.push_dirs`), never the secrets file, the staff list, the config file or
//! anything in the data directory, serial ports only under `/dev/`, and it never changes the
//! `iw` program the agent runs. This is checked on the pushed text before validation reads a
//! single named file. When a pushed config is refused, the reason for a key that names a file
//! is a fixed text ([`fleet_reason`]): what validation read in a file stays on the gateway.

use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

/// What a push may name, from the config file on the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPolicy {
    /// Directories (canonical) a pushed config may name files in.
    roots: Vec<PathBuf>,
    /// Files (canonical) a pushed config may never name.
    forbidden: Vec<PathBuf>,
    /// The data directory (canonical when it exists): nothing in it may be named.
    data_dir: PathBuf,
    /// The `iw` programs the local config runs (a push may not name another).
    iw: Vec<PathBuf>,
}

/// How a key's value is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A file read by the agent.
    File,
    /// A serial port: a device under `/dev/`.
    Port,
    /// `profile =`: a built-in id, or a `.toml` file.
    Profile,
    /// A program the agent runs.
    Program,
}

/// The keys, per table, whose values name something on disk. One list for the check and for
/// the redaction of refusals.
const TABLE_KEYS: &[(&str, &[(&str, Kind)])] = &[
    (
        "sources.wifi",
        &[
            ("pcap", Kind::File),
            ("pipe", Kind::File),
            ("profile", Kind::Profile),
            ("iw", Kind::Program),
        ],
    ),
    ("sources.portal", &[("path", Kind::File)]),
    (
        "sources.pos",
        &[
            ("file", Kind::File),
            ("port", Kind::Port),
            ("profile", Kind::Profile),
        ],
    ),
    (
        "sources.counter",
        &[
            ("file", Kind::File),
            ("port", Kind::Port),
            ("profile", Kind::Profile),
            ("password_file", Kind::File),
        ],
    ),
];

/// Arrays of `{token_file}` tables, with the table they belong to.
const TOKEN_TABLES: &[(&str, &str)] = &[
    ("sources.portal", "tokens"),
    ("sources.counter", "tokens"),
    ("sources.counter", "users"),
];

impl PushPolicy {
    /// The policy of the gateway whose own config (the `--config` file) is `local`.
    pub fn for_local(local: &Config) -> PushPolicy {
        let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
        let config_dir = local.file.parent().unwrap_or(Path::new("/"));
        let mut roots = vec![canon(config_dir)];
        if let Some(m) = &local.mqtt {
            roots.extend(m.push_dirs.iter().map(|d| canon(d)));
        }
        let mut forbidden = vec![canon(&local.file)];
        forbidden.extend(local.secrets_file.as_deref().map(canon));
        forbidden.extend(local.staff_phones_file.as_deref().map(canon));
        PushPolicy {
            roots,
            forbidden,
            data_dir: canon(&local.storage.data_dir),
            iw: local.wifi.iter().map(|w| w.iw.clone()).collect(),
        }
    }

    /// Checks every path `text` (a pushed config whose relative paths resolve against `base`)
    /// names. Text that is not TOML passes: validation refuses it with its own reason.
    pub fn check(&self, text: &str, file: &Path, base: &Path) -> Result<(), ConfigError> {
        let Ok(doc) = text.parse::<toml::Table>() else {
            return Ok(());
        };
        let err = |key: String, reason: &str| ConfigError {
            file: file.to_path_buf(),
            key,
            reason: reason.to_string(),
        };
        if let Some(privacy) = doc.get("privacy").and_then(toml::Value::as_table) {
            for key in ["secrets_file", "staff_phones_file"] {
                if let Some(v) = privacy.get(key) {
                    let named = v
                        .as_str()
                        .map(|s| canon_or_self(&resolve(base, Path::new(s))));
                    if !named.is_some_and(|n| self.forbidden.contains(&n)) {
                        return Err(err(
                            format!("privacy.{key}"),
                            "cannot change over MQTT; change it in the config file on the gateway",
                        ));
                    }
                }
            }
        }
        for (table, keys) in TABLE_KEYS {
            for (i, entry) in entries(&doc, table) {
                for (key, kind) in *keys {
                    let Some(v) = entry.get(*key) else { continue };
                    let at = format!("{table}[{i}].{key}");
                    let Some(s) = v.as_str() else {
                        // The wrong type: validation says so.
                        continue;
                    };
                    match kind {
                        Kind::Profile if !s.ends_with(".toml") => {}
                        Kind::File | Kind::Profile => self.file(base, s).map_err(|r| err(at, r))?,
                        Kind::Port => {
                            let p = resolve(base, Path::new(s));
                            if !p.starts_with("/dev/")
                                || p.components().any(|c| c.as_os_str() == "..")
                            {
                                return Err(err(
                                    at,
                                    "a pushed config names serial ports under /dev/ only",
                                ));
                            }
                        }
                        Kind::Program => {
                            if !self.iw.iter().any(|w| w.as_os_str() == s) {
                                return Err(err(
                                    at,
                                    "cannot change over MQTT; change it in the config file on the gateway",
                                ));
                            }
                        }
                    }
                }
            }
        }
        for (table, array) in TOKEN_TABLES {
            for (i, entry) in entries(&doc, table) {
                self.token_files(base, entry, array, &format!("{table}[{i}].{array}"))
                    .map_err(|(k, r)| err(k, r))?;
            }
        }
        if let Some(sync) = doc.get("sync").and_then(toml::Value::as_table) {
            if let Some(tls) = sync.get("tls").and_then(toml::Value::as_table) {
                for key in ["cert", "key", "client_ca"] {
                    if let Some(s) = tls.get(key).and_then(toml::Value::as_str) {
                        self.file(base, s)
                            .map_err(|r| err(format!("sync.tls.{key}"), r))?;
                    }
                }
            }
            self.token_files(base, sync, "tokens", "sync.tokens")
                .map_err(|(k, r)| err(k, r))?;
        }
        Ok(())
    }

    /// Checks the `token_file` of each table in the array `array` of `table` (keys named from
    /// `key`, like `sync.tokens`).
    fn token_files(
        &self,
        base: &Path,
        table: &toml::Table,
        array: &str,
        key: &str,
    ) -> Result<(), (String, &'static str)> {
        let tokens = table.get(array).and_then(toml::Value::as_array);
        for (j, token) in tokens.into_iter().flatten().enumerate() {
            if let Some(s) = token.get("token_file").and_then(toml::Value::as_str) {
                self.file(base, s)
                    .map_err(|r| (format!("{key}[{j}].token_file"), r))?;
            }
        }
        Ok(())
    }

    /// Whether a pushed config may name the file `value`; the reason when not (which never
    /// names the path).
    fn file(&self, base: &Path, value: &str) -> Result<(), &'static str> {
        let path = resolve(base, Path::new(value));
        // Symbolic links and `..` are followed to where they lead. A file that does not exist
        // yet (a log the portal creates later) is judged by the directory it would be in.
        let Some(real) = real_path(&path) else {
            return Err("the file it names cannot be reached");
        };
        if !self.roots.iter().any(|r| real.starts_with(r)) {
            return Err(
                "a pushed config may only name files in the config directory or mqtt.push_dirs",
            );
        }
        if self.forbidden.contains(&real) || real.starts_with(&self.data_dir) {
            return Err("a pushed config may not name the secrets file, the staff list, the config file or the data directory");
        }
        Ok(())
    }
}

/// The entries of an array of tables (`[[sources.pos]]`) at dotted `table`.
fn entries<'a>(doc: &'a toml::Table, table: &str) -> Vec<(usize, &'a toml::Table)> {
    let mut parts = table.split('.');
    let Some(first) = parts.next() else {
        return Vec::new();
    };
    let mut v = doc.get(first);
    for p in parts {
        v = v.and_then(|t| t.get(p));
    }
    v.and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter_map(|(i, e)| e.as_table().map(|t| (i, t)))
        .collect()
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Where `path` leads: its canonical form, or for a file that does not exist, the canonical
/// form of its nearest existing ancestor with the rest appended (`None` when the rest holds
/// `..`, which cannot be judged before it exists).
fn real_path(path: &Path) -> Option<PathBuf> {
    if let Ok(p) = path.canonicalize() {
        return Some(p);
    }
    let mut rest = Vec::new();
    let mut at = path;
    loop {
        let name = at.file_name()?;
        rest.push(name.to_os_string());
        at = at.parent()?;
        if let Ok(mut p) = at.canonicalize() {
            for part in rest.iter().rev() {
                if part == ".." || part == "." {
                    return None;
                }
                p.push(part);
            }
            return Some(p);
        }
    }
}

fn canon_or_self(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Whether the key `key` (dotted, with indices) names a file, a port, a profile or a program.
pub fn names_a_file(key: &str) -> bool {
    let plain: String = {
        // `sources.pos[0].profile` → `sources.pos.profile`.
        let mut out = String::new();
        let mut skip = false;
        for c in key.chars() {
            match c {
                '[' => skip = true,
                ']' => skip = false,
                _ if !skip => out.push(c),
                _ => {}
            }
        }
        out
    };
    let last = plain.rsplit('.').next().unwrap_or("");
    last.ends_with("_file")
        || matches!(last, "cert" | "key" | "client_ca")
        || TABLE_KEYS.iter().any(|(table, keys)| {
            plain
                .strip_prefix(table)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|rest| keys.iter().any(|(k, _)| *k == rest))
        })
        || plain.starts_with("privacy.")
}

/// What the fleet is told of a config validation refused: the key and the reason, except for
/// keys that name a file (and a token, which may come from one), whose reason may carry what
/// was read in the file; those get a fixed text. The config file's path is never part of it.
pub fn fleet_reason(e: &ConfigError) -> String {
    if e.key.is_empty() {
        return e.reason.clone();
    }
    if names_a_file(&e.key) || e.key.ends_with(".token") {
        return format!(
            "key `{}`: the file it names cannot be used for it (missing, unreadable, too large, not a regular file, or not valid for this key; what it holds is never sent: check it on the gateway)",
            e.key
        );
    }
    format!("key `{}`: {}", e.key, e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_are_known_by_table() {
        for key in [
            "sources.pos[0].profile",
            "sources.pos[1].file",
            "sources.pos[0].port",
            "sources.wifi[2].pcap",
            "sources.wifi[0].iw",
            "sources.portal[0].path",
            "sources.counter[0].password_file",
            "sources.counter[0].tokens[1].token_file",
            "sync.tls.key",
            "sync.tokens[0].token_file",
            "privacy.secrets_file",
            "mqtt.tls.ca_file",
        ] {
            assert!(names_a_file(key), "{key}");
        }
        // A counter's `path` is the URL path it is pushed to, not a file.
        for key in [
            "sources.counter[0].path",
            "sources.pos[0].listen",
            "store.store_id",
            "metrics.inside_dbm",
        ] {
            assert!(!names_a_file(key), "{key}");
        }
    }

    #[test]
    fn refusals_at_file_keys_never_carry_what_was_read() {
        let e = ConfigError {
            file: "/etc/store-edge/config.toml".into(),
            key: "sources.pos[0].profile".into(),
            reason: "TOML parse error at line 1: device_key_secret = \"367e…\"".into(),
        };
        let r = fleet_reason(&e);
        assert!(
            !r.contains("367e") && !r.contains("device_key_secret") && !r.contains("/etc"),
            "{r}"
        );
        assert!(r.contains("sources.pos[0].profile"), "{r}");
        let e = ConfigError {
            file: "/etc/store-edge/config.toml".into(),
            key: "metrics.inside_dbm".into(),
            reason: "must be between -100 and 0".into(),
        };
        assert_eq!(
            fleet_reason(&e),
            "key `metrics.inside_dbm`: must be between -100 and 0"
        );
    }
}
