//! systemd's service notifications (`sd_notify`): `READY=1` once the agent runs, `WATCHDOG=1`
//! at half the unit's `WatchdogSec` while the service loop turns, `STOPPING=1` at shutdown.
//! Outside systemd (no `$NOTIFY_SOCKET`) every call does nothing. The protocol is one datagram
//! per message on a Unix socket, so no library is needed.

use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where notifications go, if anywhere.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, SocketAddr)>,
    watchdog: Option<Duration>,
}

/// Reads `$NOTIFY_SOCKET` (`/path` or `@abstract`) into an address.
fn address(spec: &str) -> Option<SocketAddr> {
    if let Some(name) = spec.strip_prefix('@') {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            return SocketAddr::from_abstract_name(name.as_bytes()).ok();
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return None;
        }
    }
    SocketAddr::from_pathname(spec).ok()
}

impl Notifier {
    /// From the environment systemd gives a `Type=notify` service.
    pub fn from_env() -> Notifier {
        let target = std::env::var("NOTIFY_SOCKET")
            .ok()
            .and_then(|s| address(&s))
            .and_then(|addr| UnixDatagram::unbound().ok().map(|s| (s, addr)));
        // Only when the watchdog is meant for this process (WATCHDOG_PID absent or ours).
        let ours = std::env::var("WATCHDOG_PID")
            .ok()
            .is_none_or(|p| p.trim() == std::process::id().to_string());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|u| *u > 0 && ours)
            .map(|u| Duration::from_micros(u / 2));
        Notifier { target, watchdog }
    }

    /// How often to send `WATCHDOG=1`, if the unit has a watchdog.
    pub fn watchdog_every(&self) -> Option<Duration> {
        self.target.as_ref().and(self.watchdog)
    }

    fn send(&self, msg: &str) {
        if let Some((sock, addr)) = &self.target {
            if let Err(e) = sock.send_to_addr(msg.as_bytes(), addr) {
                tracing::debug!(error = %e, "systemd notification not sent");
            }
        }
    }

    /// The service is up.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// Still alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// Shutting down.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                address(path.to_str().unwrap()).unwrap(),
            )),
            watchdog: Some(Duration::from_secs(30)),
        };
        n.ready();
        n.watchdog();
        n.stopping();
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        for _ in 0..3 {
            let len = server.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..len]).to_string());
        }
        assert_eq!(got, ["READY=1", "WATCHDOG=1", "STOPPING=1"]);
        assert_eq!(n.watchdog_every(), Some(Duration::from_secs(30)));
        let silent = Notifier {
            target: None,
            watchdog: Some(Duration::from_secs(30)),
        };
        assert_eq!(silent.watchdog_every(), None);
        silent.ready();
    }

    #[test]
    fn abstract_and_path_addresses() {
        assert!(address("@/org/freedesktop/systemd1/notify").is_some());
        assert!(address("/run/systemd/notify").is_some());
    }
}
