//! Fuzz target for the agent's config: any text goes through the same parse and validation as
//! a `--config` file or a pushed `config/desired` (`edge_agent::config::parse_with`), and
//! either fails with an error naming a reason, or gives a config whose values are in their
//! documented ranges. Never a panic.
//!
//! Input: the config text, optionally followed by a NUL byte and the bytes every file the
//! config names reads as (password and token files, TLS material, profile `.toml` files):
//! validation never touches the disk here (`FileReads::Given`). Text that is not UTF-8 is skipped, as
//! `config::load` refuses it before parsing.
#![no_main]

use std::path::Path;
use std::time::Duration;

use edge_agent::config::{self, Config, FileReads};
use libfuzzer_sys::fuzz_target;

/// Where the fuzzed config "lives": relative paths resolve under its directory.
const FILE: &str = "/fuzz/etc/config.toml";

fuzz_target!(|input: &[u8]| {
    let (text, files) = match input.iter().position(|&b| b == 0) {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    match config::parse_with(text, Path::new(FILE), FileReads::Given(files)) {
        Ok(cfg) => check(&cfg),
        Err(e) => {
            assert!(!e.reason.is_empty(), "an error without a reason: {e:?}");
            assert_eq!(e.file, Path::new(FILE));
            let _ = e.to_string();
        }
    }
});

fn valid_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The ranges `config` documents (and validation promises) for what it accepted.
fn check(cfg: &Config) {
    assert!(valid_id(&cfg.store_id), "{:?}", cfg.store_id);
    assert!(valid_id(&cfg.gateway_id), "{:?}", cfg.gateway_id);
    assert!(cfg.device_key_rotation >= Duration::from_secs(86_400));
    cfg.metrics.validate().expect("validated metric parameters");
    assert!((0..=2 * 3_600_000).contains(&cfg.attribution_grace_ms));
    let s = &cfg.storage;
    assert!(s.commit_interval >= Duration::from_millis(50));
    assert!(s.commit_interval <= Duration::from_secs(60));
    assert!(s.checkpoint_interval >= s.commit_interval);
    assert!(s.checkpoint_interval <= Duration::from_secs(3600));
    assert!(s.max_bytes >= 10_000_000);
    assert!(s.prune_interval >= Duration::from_secs(1));
    // Relative paths were resolved against the config's directory.
    assert!(s.data_dir.is_absolute(), "{}", s.data_dir.display());
    for f in [&cfg.secrets_file, &cfg.staff_phones_file]
        .into_iter()
        .flatten()
    {
        assert!(
            f.is_absolute() && !f.starts_with(&s.data_dir),
            "{}",
            f.display()
        );
    }
    assert!(cfg.zones().len() <= edge_core::MAX_ZONES);
    let mut names: Vec<&str> = Vec::new();
    let all = cfg
        .wifi
        .iter()
        .map(|w| w.name.as_str())
        .chain(cfg.portal.iter().map(|p| p.name.as_str()))
        .chain(cfg.pos.iter().map(|p| p.name.as_str()))
        .chain(cfg.counter.iter().map(|c| c.name.as_str()));
    for name in all {
        assert!(!names.contains(&name), "duplicate source name {name:?}");
        names.push(name);
    }
    for c in &cfg.counter {
        assert_eq!(c.gateway_id, cfg.gateway_id);
    }
    assert!(cfg.sync.health_interval >= Duration::from_secs(1));
    if let Some(m) = &cfg.mqtt {
        assert!(m.port > 0);
        assert!((1..=64).contains(&m.client_id.len()));
        assert!(m.client_id.chars().all(|c| c.is_ascii_graphic()));
        assert!(m.keep_alive >= Duration::from_secs(1));
        assert!(m.keep_alive <= Duration::from_secs(65_535));
        assert_eq!(m.keep_alive.subsec_nanos(), 0);
        assert!(m.telemetry_interval >= Duration::from_secs(1));
        assert!(m.counter_silence >= Duration::from_secs(1));
        assert!(m.apply_timeout >= Duration::from_secs(1));
        assert!(m.apply_timeout <= Duration::from_secs(600));
        if let Some(c) = &m.credentials {
            assert!(!c.username.is_empty() && !c.password.is_empty());
        }
    }
}
