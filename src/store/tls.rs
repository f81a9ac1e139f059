//! TLS to Postgres, in Rust, in front of the bundled libpq.
//!
//! The bundled libpq is built without TLS (building OpenSSL would need more
//! than the Rust toolchain), yet every managed Postgres requires TLS. So for
//! `sslmode=require`, `verify-ca` and `verify-full`, the store does what
//! libpq would: it opens the TCP connection itself, asks the server for TLS
//! (Postgres's SSLRequest), completes the handshake with rustls, verifies
//! the certificate as the mode says, and hands libpq the decrypted stream
//! through a Unix socket in a directory only this user can enter. libpq
//! talks plain protocol over that socket; nothing leaves the machine
//! unencrypted. This module owns only that: it knows nothing of diesel.
//!
//! `disable`, `allow` and `prefer` (libpq's default) go to libpq untouched:
//! the bundled libpq connects without TLS for them, as before.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, StreamOwned};

/// Postgres's SSLRequest: length 8, then the magic code 1234.5679.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Why TLS to the database could not be set up; the message says what to do.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// How the server's certificate is checked (libpq's `sslmode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Encrypted; the certificate is checked against `sslrootcert` only when
    /// one is given (as libpq does).
    Require,
    /// The certificate chains to `sslrootcert`.
    VerifyCa,
    /// The certificate chains to `sslrootcert` and names the host.
    VerifyFull,
}

/// A database URL as libpq will get it, and the tunnel that carries it when
/// TLS is on. Drop the tunnel only after the connection that uses it.
pub struct Prepared {
    pub conninfo: String,
    pub tunnel: Option<Tunnel>,
}

/// Rewrites a `postgres://` URL whose `sslmode` asks for TLS so that libpq
/// reaches the server through a TLS tunnel; other URLs pass unchanged.
/// The first handshake is made here, so a certificate or TLS problem is
/// reported at once, in words, rather than as a closed connection.
pub fn prepare(url: &str) -> Result<Prepared, TlsError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| TlsError(format!("the database URL cannot be read: {e}")))?;
    let query: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let mode = match param("sslmode") {
        Some("require") => Mode::Require,
        Some("verify-ca") => Mode::VerifyCa,
        Some("verify-full") => Mode::VerifyFull,
        _ => {
            return Ok(Prepared {
                conninfo: url.to_string(),
                tunnel: None,
            });
        }
    };
    let decode =
        |s: &str| percent_decode(s).map_err(|_| TlsError("the database URL is not UTF-8".into()));
    let host = match (param("host"), parsed.host_str()) {
        (Some(h), _) if h.starts_with('/') => {
            return Err(TlsError(format!(
                "sslmode={} asks for TLS, but host={h} is a Unix socket, which never uses TLS; remove sslmode or connect over TCP",
                mode_name(mode)
            )));
        }
        (Some(h), _) => h.to_string(),
        (None, Some(h)) if !h.is_empty() => decode(h)?,
        _ => "localhost".to_string(),
    };
    if host.contains(',') {
        return Err(TlsError(
            "several hosts with TLS are not supported; name one host".into(),
        ));
    }
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = parsed.port().unwrap_or(5432);
    let config = Arc::new(client_config(
        mode,
        param("sslrootcert"),
        param("sslcert"),
        param("sslkey"),
    )?);
    let server_name = ServerName::try_from(host.clone())
        .map_err(|_| TlsError(format!("`{host}` is not a host name or address")))?;
    let connect_timeout = param("connect_timeout")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map_or(Duration::from_secs(30), Duration::from_secs);
    let upstream = Upstream {
        host,
        port,
        server_name,
        config,
        connect_timeout,
    };
    // Fail now, and clearly, if the server or its certificate is not right.
    upstream.connect()?;

    let tunnel = Tunnel::start(upstream)?;
    let mut conninfo = vec![
        kv("host", &tunnel.dir.display().to_string()),
        kv("port", &port.to_string()),
        kv("sslmode", "disable"),
    ];
    if !parsed.username().is_empty() {
        conninfo.push(kv("user", &decode(parsed.username())?));
    }
    if let Some(password) = parsed.password() {
        conninfo.push(kv("password", &decode(password)?));
    }
    let dbname = parsed.path().trim_start_matches('/');
    if !dbname.is_empty() {
        conninfo.push(kv("dbname", &decode(dbname)?));
    }
    for (key, value) in &query {
        let tls_only =
            key.starts_with("ssl") || matches!(key.as_str(), "host" | "hostaddr" | "port");
        if !tls_only {
            conninfo.push(kv(key, value));
        }
    }
    Ok(Prepared {
        conninfo: conninfo.join(" "),
        tunnel: Some(tunnel),
    })
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Require => "require",
        Mode::VerifyCa => "verify-ca",
        Mode::VerifyFull => "verify-full",
    }
}

/// A libpq `keyword='value'` pair.
fn kv(key: &str, value: &str) -> String {
    format!(
        "{key}='{}'",
        value.replace('\\', "\\\\").replace('\'', "\\'")
    )
}

fn percent_decode(text: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out)
}

fn client_config(
    mode: Mode,
    root_cert: Option<&str>,
    client_cert: Option<&str>,
    client_key: Option<&str>,
) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let roots = match root_cert {
        Some("system") => Some(system_roots()?),
        Some(path) => Some(roots_from(Path::new(path))?),
        None => default_root_file().map(|p| roots_from(&p)).transpose()?,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (Mode::Require, None) => Arc::new(EncryptOnly(provider.clone())),
        (Mode::VerifyCa | Mode::VerifyFull, None) => {
            return Err(TlsError(format!(
                "sslmode={} needs the certificate of the authority that signed the server's: add sslrootcert=/path/to/ca.pem to the URL (or sslrootcert=system to trust the system's authorities)",
                mode_name(mode)
            )));
        }
        (mode, Some(roots)) => {
            let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| TlsError(format!("the root certificates cannot be used: {e}")))?;
            if mode == Mode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (client_cert, client_key) {
        (Some(cert), Some(key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|c| c.collect::<Result<Vec<_>, _>>())
                .map_err(|e| TlsError(format!("sslcert {cert} cannot be read: {e}")))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| TlsError(format!("sslkey {key} cannot be read: {e}")))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| TlsError(format!("sslcert and sslkey do not go together: {e}")))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(TlsError(
            "a client certificate needs both sslcert and sslkey".into(),
        )),
    }
}

/// libpq's default root file, `~/.postgresql/root.crt`, when it exists.
fn default_root_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    let path = Path::new(&home).join(".postgresql/root.crt");
    path.is_file().then_some(path)
}

fn roots_from(path: &Path) -> Result<RootCertStore, TlsError> {
    let cannot = |e: &dyn std::fmt::Display| {
        TlsError(format!(
            "sslrootcert {} cannot be read: {e}",
            path.display()
        ))
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(|e| cannot(&e))? {
        roots
            .add(cert.map_err(|e| cannot(&e))?)
            .map_err(|e| cannot(&e))?;
    }
    if roots.is_empty() {
        return Err(cannot(&"it holds no PEM certificate"));
    }
    Ok(roots)
}

/// The system's trusted authorities (Debian: /etc/ssl/certs).
fn system_roots() -> Result<RootCertStore, TlsError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        return Err(TlsError(
            "sslrootcert=system, but the system has no trusted certificates (install ca-certificates)".into(),
        ));
    }
    Ok(roots)
}

/// `verify-ca`: the chain must lead to a trusted root; the name may differ
/// (a server reached by address, or behind a proxy).
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::{CertificateError, Error};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `require` with no root given: encrypted, the certificate not checked
/// (libpq's meaning of `require`); the handshake's signatures still are.
#[derive(Debug)]
struct EncryptOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Where the tunnel connects, and how.
struct Upstream {
    host: String,
    port: u16,
    server_name: ServerName<'static>,
    config: Arc<ClientConfig>,
    connect_timeout: Duration,
}

impl Upstream {
    /// A TCP connection, TLS negotiated and the handshake done.
    fn connect(&self) -> Result<StreamOwned<ClientConnection, TcpStream>, TlsError> {
        let at = format!("{}:{}", self.host, self.port);
        let addresses = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| TlsError(format!("cannot resolve {at}: {e}")))?;
        let mut last = None;
        let mut tcp = None;
        for address in addresses {
            match TcpStream::connect_timeout(&address, self.connect_timeout) {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let mut tcp = tcp.ok_or_else(|| {
            TlsError(format!(
                "cannot connect to {at}: {}",
                last.map_or("no address".to_string(), |e| e.to_string())
            ))
        })?;
        let _ = tcp.set_nodelay(true);
        tcp.set_read_timeout(Some(self.connect_timeout)).ok();
        tcp.write_all(&SSL_REQUEST)
            .map_err(|e| TlsError(format!("cannot ask {at} for TLS: {e}")))?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).map_err(|e| {
            TlsError(format!(
                "{at} closed the connection when asked for TLS: {e}"
            ))
        })?;
        if answer[0] != b'S' {
            return Err(TlsError(format!(
                "the server at {at} does not offer TLS (ssl = off in its postgresql.conf); turn it on, or connect without sslmode=require"
            )));
        }
        let connection = ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(|e| TlsError(e.to_string()))?;
        let mut stream = StreamOwned::new(connection, tcp);
        while stream.conn.is_handshaking() {
            stream
                .conn
                .complete_io(&mut stream.sock)
                .map_err(|e| TlsError(format!("TLS with {at} failed: {}", tls_reason(&e))))?;
        }
        stream.sock.set_read_timeout(None).ok();
        Ok(stream)
    }
}

fn tls_reason(error: &std::io::Error) -> String {
    match error
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(why)) => {
            format!(
                "the server's certificate was refused ({why:?}); check sslrootcert and the host name in the URL"
            )
        }
        _ => error.to_string(),
    }
}

/// A Unix socket in a private directory; each connection libpq makes to it
/// is carried over its own TLS connection to the server.
pub struct Tunnel {
    dir: PathBuf,
    stop: Arc<AtomicBool>,
}

impl Tunnel {
    fn start(upstream: Upstream) -> Result<Self, TlsError> {
        static COUNT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "offersync-pg-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let cannot =
            |e: std::io::Error| TlsError(format!("cannot make the TLS tunnel's socket: {e}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(cannot)?;
        let socket = dir.join(format!(".s.PGSQL.{}", upstream.port));
        let listener = UnixListener::bind(&socket).map_err(cannot)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let upstream = Arc::new(upstream);
        std::thread::Builder::new()
            .name("pg-tls".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let upstream = upstream.clone();
                    let _ = std::thread::Builder::new()
                        .name("pg-tls-conn".into())
                        .spawn(move || carry(client, &upstream));
                }
            })
            .map_err(cannot)?;
        Ok(Self { dir, stop })
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the accept loop so that it sees the flag and ends.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                let _ = UnixStream::connect(entry.path());
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies one libpq connection to and from its TLS connection until either
/// side closes. One thread per direction would need the TLS state shared;
/// instead one thread polls both sockets.
fn carry(mut client: UnixStream, upstream: &Upstream) {
    let Ok(mut tls) = upstream.connect() else {
        return; // libpq sees the socket close and reports the connection lost
    };
    let mut buffer = vec![0u8; 64 * 1024];
    let _ = client.set_nonblocking(true);
    let _ = tls.sock.set_nonblocking(true);
    loop {
        // Everything libpq sent goes out encrypted.
        match client.read(&mut buffer) {
            Ok(0) => {
                tls.conn.send_close_notify();
                let _ = flush_blocking(&mut tls);
                return;
            }
            Ok(n) => {
                if tls.conn.writer().write_all(&buffer[..n]).is_err()
                    || flush_blocking(&mut tls).is_err()
                {
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        // Everything the server sent comes back decrypted.
        match tls.conn.read_tls(&mut tls.sock) {
            Ok(0) => return,
            Ok(_) => {
                if tls.conn.process_new_packets().is_err() {
                    return;
                }
                loop {
                    match tls.conn.reader().read(&mut buffer) {
                        Ok(0) => return,
                        Ok(n) => {
                            if write_blocking(&mut client, &buffer[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(_) => return,
                    }
                }
                if flush_blocking(&mut tls).is_err() {
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
        wait_readable(&client, &tls.sock);
    }
}

fn flush_blocking(tls: &mut StreamOwned<ClientConnection, TcpStream>) -> std::io::Result<()> {
    while tls.conn.wants_write() {
        match tls.conn.write_tls(&mut tls.sock) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait(tls.sock_fd(), libc::POLLOUT)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn write_blocking(client: &mut UnixStream, mut data: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while !data.is_empty() {
        match client.write(data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                wait(client.as_raw_fd(), libc::POLLOUT)
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

trait SockFd {
    fn sock_fd(&self) -> std::os::fd::RawFd;
}

impl SockFd for StreamOwned<ClientConnection, TcpStream> {
    fn sock_fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        self.sock.as_raw_fd()
    }
}

fn wait(fd: std::os::fd::RawFd, events: libc::c_short) {
    let mut poll = [libc::pollfd {
        fd,
        events,
        revents: 0,
    }];
    // SAFETY: one valid pollfd for the duration of the call.
    unsafe { libc::poll(poll.as_mut_ptr(), 1, 1000) };
}

fn wait_readable(client: &UnixStream, server: &TcpStream) {
    use std::os::fd::AsRawFd;
    let mut polls = [
        libc::pollfd {
            fd: client.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: server.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds for the duration of the call. A timeout
    // only loops back to the reads.
    unsafe { libc::poll(polls.as_mut_ptr(), 2, 60_000) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_tls_pass_to_libpq_unchanged() {
        for url in [
            "postgres://u@h/db",
            "postgres://u@h/db?sslmode=prefer",
            "postgres://u@h/db?sslmode=disable",
        ] {
            let prepared = prepare(url).unwrap();
            assert_eq!(prepared.conninfo, url);
            assert!(prepared.tunnel.is_none());
        }
    }

    #[test]
    fn verification_without_a_root_says_what_to_add() {
        let error = client_config(Mode::VerifyFull, None, None, None)
            .err()
            .unwrap();
        assert!(error.to_string().contains("add sslrootcert="), "{error}");
        assert!(client_config(Mode::Require, None, None, None).is_ok());
    }

    #[test]
    fn conninfo_values_are_quoted_and_urls_decoded() {
        assert_eq!(kv("password", "it's a\\b"), r"password='it\'s a\\b'");
        assert_eq!(percent_decode("p%40ss%2Fw").unwrap(), "p@ss/w");
    }
}
