//! Postgres over TLS (issue 14.5): `sslmode=require`, `verify-ca` and
//! `verify-full` from the default build, against this machine's server with
//! TLS on, and against a TLS front the test runs with its own certificates
//! (so that each verification outcome is known), both in front of the real
//! test server.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::TestDb;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    n: i64,
}

/// How many live sessions of `application_name` the server sees as TLS.
fn tls_sessions(admin: &str, application_name: &str) -> i64 {
    let mut conn = PgConnection::establish(admin).unwrap();
    diesel::sql_query(
        "SELECT count(*)::int8 AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name = $1 AND s.ssl",
    )
    .bind::<diesel::sql_types::Text, _>(application_name)
    .get_result::<Count>(&mut conn)
    .unwrap()
    .n
}

fn with_params(url: &str, params: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{params}")
}

#[test]
fn the_store_reaches_the_local_server_over_tls_with_sslmode_require() {
    let db = TestDb::postgres();
    let name = format!("offersync-tls-{}", std::process::id());
    let url = with_params(&db.url, &format!("sslmode=require&application_name={name}"));
    let store = offersync::store::open(&url).unwrap_or_else(|e| {
        panic!(
            "sslmode=require against {} failed (is ssl on in its postgresql.conf?): {e}",
            db.url
        )
    });
    assert_eq!(
        tls_sessions(&common::admin_url(), &name),
        1,
        "the store's session is not encrypted"
    );
    drop(store);

    // The binary, as ops run it.
    let out = std::process::Command::new(common::binary())
        .args(["status", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA, and a server certificate it signed for `localhost` only.
struct Certificates {
    dir: tempfile::TempDir,
    server_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl Certificates {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca =
            rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
                .unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        // A second, unrelated authority: a server it did not sign is refused.
        let mut other = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let other = rcgen::CertifiedIssuer::self_signed(other, rcgen::KeyPair::generate().unwrap())
            .unwrap();
        std::fs::write(dir.path().join("other-ca.pem"), other.pem()).unwrap();
        Self {
            server_chain: vec![leaf.der().clone()],
            server_key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            dir,
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// A TLS front for the real test server: answers Postgres's SSLRequest
/// with `S`, terminates TLS with the test's certificate, and passes the
/// plain protocol on. Returns its port.
async fn tls_front(certs: &Certificates, backend: String) -> u16 {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs.server_chain.clone(), certs.server_key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let backend = backend.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 8];
                if client.read_exact(&mut request).await.is_err() {
                    return;
                }
                assert_eq!(request, [0, 0, 0, 8, 4, 210, 22, 47], "an SSLRequest first");
                client.write_all(b"S").await.unwrap();
                let Ok(mut tls) = acceptor.accept(client).await else {
                    return;
                };
                let mut server = tokio::net::TcpStream::connect(&backend).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
            });
        }
    });
    port
}

fn host_port(url: &str) -> String {
    let after = url.split_once("://").unwrap().1;
    let authority = after.split('/').next().unwrap();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    }
}

/// The test database's URL, reached through the front at `host:port`.
fn through(db_url: &str, host: &str, port: u16, params: &str) -> String {
    let (scheme, rest) = db_url.split_once("://").unwrap();
    let (authority, path) = rest.split_once('/').unwrap();
    let user = authority
        .rsplit_once('@')
        .map(|(u, _)| format!("{u}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{host}:{port}/{path}?{params}")
}

#[test]
fn verify_ca_and_verify_full_check_the_certificate_as_libpq_does() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let certs = Certificates::new();
    let db = TestDb::postgres();
    let port = runtime.block_on(tls_front(&certs, host_port(&db.url)));
    let ca = certs.path("ca.pem");
    let other = certs.path("other-ca.pem");
    let connects =
        |host: &str, params: String| offersync::store::open(&through(&db.url, host, port, &params));

    // verify-full: the chain and the name.
    connects("localhost", format!("sslmode=verify-full&sslrootcert={ca}"))
        .expect("verify-full with the signing CA and the certificate's name");
    let wrong_name = connects("127.0.0.1", format!("sslmode=verify-full&sslrootcert={ca}"))
        .err()
        .expect("127.0.0.1 is not the certificate's name");
    assert!(
        wrong_name.to_string().contains("certificate"),
        "{wrong_name}"
    );
    let wrong_ca = connects(
        "localhost",
        format!("sslmode=verify-full&sslrootcert={other}"),
    )
    .err()
    .expect("a certificate another authority signed");
    assert!(wrong_ca.to_string().contains("refused"), "{wrong_ca}");

    // verify-ca: the chain only.
    connects("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}"))
        .expect("verify-ca does not check the name");
    assert!(
        connects(
            "127.0.0.1",
            format!("sslmode=verify-ca&sslrootcert={other}")
        )
        .is_err()
    );

    // require: encrypted, not verified, unless a root is given.
    connects("127.0.0.1", "sslmode=require".into()).expect("require checks no certificate");
    assert!(
        connects("127.0.0.1", format!("sslmode=require&sslrootcert={other}")).is_err(),
        "require with sslrootcert verifies the chain, as libpq does"
    );

    // A root is needed to verify at all, and the message says so.
    let no_root = connects("localhost", "sslmode=verify-full".into())
        .err()
        .unwrap();
    assert!(no_root.to_string().contains("sslrootcert="), "{no_root}");
    assert!(Path::new(&ca).exists());
}
