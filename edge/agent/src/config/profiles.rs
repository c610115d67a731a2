//! Hardware profiles: declarative descriptions of device models (`hardware-profiles/`).
//!
//! Profiles ship inside the binary (so an installer only names one) and can also be given as a
//! path to a `.toml` file for models not yet shipped. Supporting a new model of a supported
//! protocol means adding a file here, not code.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// Profiles compiled into the binary: (id, TOML text). The id is the path under
/// `hardware-profiles/` without the extension.
pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "wifi/alfa-awus036acm",
        include_str!("../../../../hardware-profiles/wifi/alfa-awus036acm.toml"),
    ),
    (
        "wifi/alfa-awus036nha",
        include_str!("../../../../hardware-profiles/wifi/alfa-awus036nha.toml"),
    ),
    (
        "wifi/alfa-awus036axml",
        include_str!("../../../../hardware-profiles/wifi/alfa-awus036axml.toml"),
    ),
    (
        "wifi/panda-pau06",
        include_str!("../../../../hardware-profiles/wifi/panda-pau06.toml"),
    ),
    (
        "wifi/netgear-a6210",
        include_str!("../../../../hardware-profiles/wifi/netgear-a6210.toml"),
    ),
    (
        "wifi/tp-link-tl-wn722n-v1",
        include_str!("../../../../hardware-profiles/wifi/tp-link-tl-wn722n-v1.toml"),
    ),
    (
        "wifi/comfast-cf-812ac",
        include_str!("../../../../hardware-profiles/wifi/comfast-cf-812ac.toml"),
    ),
];

/// A monitor-mode Wi-Fi adapter model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WifiProfile {
    /// Always `"wifi"`.
    pub kind: String,
    /// Manufacturer.
    pub vendor: String,
    /// Model name as sold.
    pub model: String,
    /// Wi-Fi chipset.
    pub chipset: String,
    /// Linux driver that supports monitor mode for it.
    pub driver: String,
    /// Oldest Linux kernel whose in-tree driver supports monitor mode.
    pub min_kernel: String,
    /// USB vendor:product ids (`0e8d:7612`).
    pub usb_ids: Vec<String>,
    /// Bands it can receive: `"2.4GHz"`, `"5GHz"`.
    pub bands: Vec<String>,
    /// Channel plan for hopping, in order.
    pub channels: Vec<u16>,
    /// Time on each channel while hopping.
    #[serde(with = "humantime_serde")]
    pub hop_dwell: Duration,
    /// Installer notes (antenna, power, quirks).
    #[serde(default)]
    pub notes: String,
}

/// A profile problem: which profile, which key, what is wrong.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProfileError {
    /// Profile id or file.
    pub profile: String,
    /// The key.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "profile {}: {}", self.profile, self.reason)
        } else {
            write!(
                f,
                "profile {}: key `{}`: {}",
                self.profile, self.key, self.reason
            )
        }
    }
}

impl std::error::Error for ProfileError {}

fn channel_in_band(ch: u16, bands: &[String]) -> bool {
    let b24 = bands.iter().any(|b| b == "2.4GHz") && (1..=14).contains(&ch);
    let b5 = bands.iter().any(|b| b == "5GHz") && (32..=177).contains(&ch);
    b24 || b5
}

/// Parses and validates a Wi-Fi profile's text; `id` names it in errors.
pub fn parse_wifi(id: &str, text: &str) -> Result<WifiProfile, ProfileError> {
    let err = |key: &str, reason: String| ProfileError {
        profile: id.to_string(),
        key: key.to_string(),
        reason,
    };
    let de = toml::Deserializer::new(text);
    let p: WifiProfile = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        err(
            if key == "." { "" } else { &key },
            e.inner().to_string().trim_end().replace('\n', " "),
        )
    })?;
    if p.kind != "wifi" {
        return Err(err(
            "kind",
            format!("expected \"wifi\", found {:?}", p.kind),
        ));
    }
    for (key, v) in [
        ("vendor", &p.vendor),
        ("model", &p.model),
        ("chipset", &p.chipset),
        ("driver", &p.driver),
    ] {
        if v.trim().is_empty() {
            return Err(err(key, "must not be empty".into()));
        }
    }
    if p.usb_ids.is_empty() {
        return Err(err("usb_ids", "list at least one vendor:product id".into()));
    }
    for (i, id) in p.usb_ids.iter().enumerate() {
        let ok = id.len() == 9
            && id.as_bytes().get(4) == Some(&b':')
            && id
                .chars()
                .enumerate()
                .all(|(j, c)| j == 4 || c.is_ascii_hexdigit());
        if !ok {
            return Err(err(
                &format!("usb_ids[{i}]"),
                format!("{id:?} is not vvvv:pppp hex"),
            ));
        }
    }
    if p.bands.is_empty() {
        return Err(err("bands", "list at least one band".into()));
    }
    for (i, b) in p.bands.iter().enumerate() {
        if b != "2.4GHz" && b != "5GHz" {
            return Err(err(
                &format!("bands[{i}]"),
                format!("{b:?}: expected \"2.4GHz\" or \"5GHz\""),
            ));
        }
    }
    if p.channels.is_empty() {
        return Err(err("channels", "the channel plan is empty".into()));
    }
    for (i, &ch) in p.channels.iter().enumerate() {
        if !channel_in_band(ch, &p.bands) {
            return Err(err(
                &format!("channels[{i}]"),
                format!("channel {ch} is not in the adapter's bands {:?}", p.bands),
            ));
        }
    }
    if p.hop_dwell < Duration::from_millis(50) || p.hop_dwell > Duration::from_secs(10) {
        return Err(err("hop_dwell", "must be between 50ms and 10s".into()));
    }
    Ok(p)
}

/// Resolves a `profile =` value: an embedded id (`wifi/alfa-awus036acm`) or a path to a
/// `.toml` file (relative to `base`).
pub fn resolve_wifi(value: &str, base: &Path) -> Result<WifiProfile, ProfileError> {
    if let Some((_, text)) = EMBEDDED.iter().find(|(id, _)| *id == value) {
        return parse_wifi(value, text);
    }
    if value.ends_with(".toml") {
        let path = base.join(value);
        let text = std::fs::read_to_string(&path).map_err(|e| ProfileError {
            profile: path.display().to_string(),
            key: String::new(),
            reason: format!("cannot read: {e}"),
        })?;
        return parse_wifi(&path.display().to_string(), &text);
    }
    let known: Vec<&str> = EMBEDDED.iter().map(|(id, _)| *id).collect();
    Err(ProfileError {
        profile: value.to_string(),
        key: String::new(),
        reason: format!("unknown profile; built-in profiles: {}", known.join(", ")),
    })
}

/// Validates profile files (for `store-edge profiles check`). A file's kind is taken from its
/// parent directory name.
pub fn check_file(path: &Path) -> Result<(), ProfileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError {
        profile: path.display().to_string(),
        key: String::new(),
        reason: format!("cannot read: {e}"),
    })?;
    let id = path.display().to_string();
    // The `kind` key says which schema applies; read it alone first so a file in any
    // directory can be checked.
    #[derive(Deserialize)]
    struct Kind {
        kind: Option<String>,
    }
    let kind = toml::from_str::<toml::Table>(&text)
        .ok()
        .and_then(|t| Kind::deserialize(toml::Value::Table(t)).ok())
        .and_then(|k| k.kind);
    match kind.as_deref() {
        // A missing or unparsable `kind` is reported by the Wi-Fi parser with its key.
        Some("wifi") | None => parse_wifi(&id, &text).map(|_| ()),
        Some(other) => Err(ProfileError {
            profile: id,
            key: "kind".to_string(),
            reason: format!("unknown profile kind {other:?} (supported: \"wifi\")"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_profiles() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hardware-profiles")
    }

    #[test]
    fn every_profile_file_in_the_repo_is_embedded_and_valid() {
        let mut files = Vec::new();
        for kind in std::fs::read_dir(repo_profiles()).unwrap() {
            let kind = kind.unwrap().path();
            if !kind.is_dir() {
                continue;
            }
            for f in std::fs::read_dir(&kind).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "toml") {
                    files.push(f);
                }
            }
        }
        assert!(files.len() >= 5, "{files:?}");
        for f in &files {
            check_file(f).unwrap_or_else(|e| panic!("{e}"));
            let id = format!(
                "{}/{}",
                f.parent().unwrap().file_name().unwrap().to_str().unwrap(),
                f.file_stem().unwrap().to_str().unwrap()
            );
            assert!(
                EMBEDDED.iter().any(|(e, _)| *e == id),
                "{id} is not embedded"
            );
        }
        assert_eq!(files.len(), EMBEDDED.len());
        for (id, text) in EMBEDDED {
            parse_wifi(id, text).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn bad_profiles_name_the_key() {
        let (_, good) = EMBEDDED[0];
        let table = [
            (good.replace("kind = \"wifi\"", "kind = \"pos\""), "kind"),
            (format!("{good}\nextra = 1\n"), "extra"),
            (
                good.replace("hop_dwell = \"", "hop_dwell = \"x"),
                "hop_dwell",
            ),
            (
                good.replace("channels = [", "channels = [200, "),
                "channels[0]",
            ),
        ];
        for (text, key) in table {
            let e = parse_wifi("t", &text).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
    }
}
