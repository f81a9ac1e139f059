//! The systemd notify protocol (sd_notify(3)): datagrams to `$NOTIFY_SOCKET`.
//!
//! A no-op when not started by systemd. The protocol is four lines of code
//! on a Unix datagram socket, so it is written here rather than pulled in.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub struct Notifier {
    socket: Option<(UnixDatagram, String)>,
}

impl Notifier {
    pub fn from_env() -> Self {
        let socket = std::env::var("NOTIFY_SOCKET").ok().and_then(|path| {
            // An abstract socket is written with a leading `@`.
            let path = match path.strip_prefix('@') {
                Some(name) => format!("\0{name}"),
                None => path,
            };
            UnixDatagram::unbound().ok().map(|s| (s, path))
        });
        Self { socket }
    }

    pub fn notify(&self, state: &str) {
        if let Some((socket, path)) = &self.socket {
            let sent = if let Some(name) = path.strip_prefix('\0') {
                send_abstract(socket, name, state)
            } else {
                socket.send_to(state.as_bytes(), path).map(|_| ())
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "cannot notify systemd");
            }
        }
    }

    /// How often to ping the watchdog: half of `$WATCHDOG_USEC`, when set for us.
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Ok(pid) = std::env::var("WATCHDOG_PID")
            && pid.parse::<u32>().ok() != Some(std::process::id())
        {
            return None;
        }
        Some(Duration::from_micros(usec / 2))
    }
}

/// `RELOADING=1` with the `CLOCK_MONOTONIC` time of the reload, which
/// `Type=notify-reload` requires (sd_notify(3)) to tell this reload from a
/// stale one.
pub fn reloading() -> String {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    let usec = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000;
    format!("RELOADING=1\nMONOTONIC_USEC={usec}")
}

#[cfg(target_os = "linux")]
fn send_abstract(socket: &UnixDatagram, name: &str, state: &str) -> std::io::Result<()> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    socket.send_to_addr(state.as_bytes(), &addr).map(|_| ())
}

#[cfg(not(target_os = "linux"))]
fn send_abstract(_: &UnixDatagram, _: &str, _: &str) -> std::io::Result<()> {
    Err(std::io::Error::other("abstract sockets are Linux-only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_states_to_the_notify_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            socket: Some((UnixDatagram::unbound().unwrap(), path.display().to_string())),
        };
        notifier.notify("READY=1");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let reload = reloading();
        let usec: u64 = reload
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap()
            .parse()
            .unwrap();
        assert!(usec > 0);
    }
}
