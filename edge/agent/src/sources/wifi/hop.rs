//! Channel hopping: cycles a monitor interface over a channel plan with `iw`.
//!
//! A sniffer parked on one channel only hears phones probing on that channel; hopping over the
//! plan (dwell ~250 ms) catches a phone's scan on whichever channel it is on. A failed `iw` call
//! is counted and retried with backoff; it never stops the capture.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::config::HopPlan;
use crate::stats::SourceStats;

/// How long one `iw` call may take.
const IW_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait after repeated failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Tunes `iface` to `channel` with `iw dev IFACE set channel CH`.
pub async fn set_channel(iw: &Path, iface: &str, channel: u16) -> anyhow::Result<()> {
    let mut cmd = tokio::process::Command::new(iw);
    cmd.args(["dev", iface, "set", "channel", &channel.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(IW_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "`{} dev {iface} set channel {channel}` timed out",
                iw.display()
            )
        })?
        .map_err(|e| anyhow::anyhow!("cannot run {}: {e}", iw.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "`{} dev {iface} set channel {channel}` failed ({}): {}",
            iw.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Hops until cancelled.
pub async fn run(
    iw: std::path::PathBuf,
    iface: String,
    plan: HopPlan,
    stats: Arc<SourceStats>,
    cancel: CancellationToken,
) {
    let mut backoff = Duration::ZERO;
    for channel in plan.channels.iter().copied().cycle() {
        let wait = match set_channel(&iw, &iface, channel).await {
            Ok(()) => {
                backoff = Duration::ZERO;
                plan.dwell
            }
            Err(e) => {
                stats.hop_errors.fetch_add(1, Ordering::Relaxed);
                backoff = (backoff * 2).clamp(Duration::from_millis(500), MAX_BACKOFF);
                tracing::warn!(source = %stats.name, error = %e, retry_in = ?backoff, "channel change failed");
                backoff
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn hops_over_the_plan_with_iw() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls");
        let iw = dir.path().join("iw");
        std::fs::write(
            &iw,
            format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
        )
        .unwrap();
        std::fs::set_permissions(&iw, std::fs::Permissions::from_mode(0o755)).unwrap();
        let stats = SourceStats::new("t");
        let cancel = CancellationToken::new();
        let plan = HopPlan {
            channels: vec![1, 6, 11],
            dwell: Duration::from_millis(50),
        };
        let task = tokio::spawn(run(iw, "mon0".into(), plan, stats.clone(), cancel.clone()));
        // Wait until at least 4 calls were made (bounded), then stop.
        for _ in 0..200 {
            let n = std::fs::read_to_string(&log)
                .map(|s| s.lines().count())
                .unwrap_or(0);
            if n >= 4 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        let calls = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = calls.lines().take(4).collect();
        assert_eq!(
            lines,
            vec![
                "dev mon0 set channel 1",
                "dev mon0 set channel 6",
                "dev mon0 set channel 11",
                "dev mon0 set channel 1"
            ]
        );
        assert_eq!(stats.hop_errors.load(Ordering::Relaxed), 0);
    }

    #[tokio::test]
    async fn failing_iw_is_counted_and_reported() {
        let e = set_channel(Path::new("/nonexistent/iw"), "mon0", 6)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("cannot run"), "{e}");
        let e = set_channel(Path::new("/bin/false"), "mon0", 6)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("failed"), "{e}");
    }
}
