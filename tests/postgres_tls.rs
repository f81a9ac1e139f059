//! Postgres over TLS (issues 14.5 and 30.12): the bundled libpq speaks TLS
//! itself, so `sslmode` (prefer, require, verify-ca, verify-full),
//! `sslrootcert` and `sslcert`/`sslkey` behave as libpq documents them.
//! Tested against this machine's server, and against throwaway clusters
//! made here: one with a certificate a test CA signed, one with a
//! self-signed certificate (Debian's "snakeoil" case), both accepting TLS
//! only (`hostssl`), and one that speaks no TLS at all.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestDb;
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};

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
    let out = Command::new(common::binary())
        .args(["status", "--database-url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// --- Throwaway clusters ------------------------------------------------------

/// The test's certificates: a CA and a server certificate it signed for
/// `localhost`, a self-signed server certificate for `localhost`, an
/// unrelated CA, and a client certificate for the role `certuser`.
struct Certificates {
    dir: tempfile::TempDir,
}

impl Certificates {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            // Postgres and libpq refuse keys others can read.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        };
        let authority = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap())
                .unwrap()
        };
        let ca = authority("offersync test CA");
        write("ca.pem", ca.pem());
        write("other-ca.pem", authority("another CA").pem());

        let key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        write("server.crt", leaf.pem());
        write("server.key", key.serialize_pem());

        // Like Debian's snakeoil: self-signed, for the host's name, no CA.
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        write("snakeoil.crt", params.self_signed(&key).unwrap().pem());
        write("snakeoil.key", key.serialize_pem());

        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "certuser");
        write("client.crt", params.signed_by(&key, &ca).unwrap().pem());
        write("client.key", key.serialize_pem());
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// What a throwaway cluster speaks.
enum Server<'a> {
    /// TLS only (`hostssl`) with this certificate and key; `certuser` must
    /// show a client certificate the CA signed.
    TlsOnly { cert: &'a str, key: &'a str },
    /// No TLS at all.
    Plaintext,
}

/// A Postgres cluster of its own on 127.0.0.1, stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    port: u16,
    bindir: PathBuf,
}

impl Cluster {
    fn start(server: Server<'_>, certs: &Certificates) -> Self {
        let bindir = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(|v| v.ok().map(|v| v.path().join("bin")))
                    .filter(|bin| bin.join("initdb").exists())
                    .max()
            })
            .or_else(|| {
                let out = Command::new("sh")
                    .args(["-c", "command -v initdb"])
                    .output()
                    .ok()?;
                let found = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
                Some(found.parent()?.to_path_buf())
            })
            .expect("these tests make Postgres clusters: initdb must be installed");
        let dir = tempfile::tempdir().unwrap();
        let cluster = Self {
            port: free_port(),
            dir,
            bindir,
        };
        cluster.own(cluster.dir.path());
        let data = cluster.dir.path().join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                &data.display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        let mut conf = format!(
            "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nfsync = off\n",
            cluster.port,
            cluster.dir.path().display()
        );
        let hba = match server {
            Server::TlsOnly { cert, key } => {
                for (from, to) in [
                    (cert, "server.crt"),
                    (key, "server.key"),
                    ("ca.pem", "ca.pem"),
                ] {
                    let target = data.join(to);
                    std::fs::copy(certs.path(from), &target).unwrap();
                    cluster.own(&target);
                }
                conf.push_str(
                    "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n",
                );
                "local all all trust\n\
                 hostssl all certuser 127.0.0.1/32 cert\n\
                 hostssl all all 127.0.0.1/32 trust\n"
            }
            Server::Plaintext => "local all all trust\nhost all all 127.0.0.1/32 trust\n",
        };
        append(&data.join("postgresql.conf"), &conf);
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                &data.display().to_string(),
                "-l",
                &cluster.dir.path().join("server.log").display().to_string(),
                "-w",
                "-t",
                "120",
                "start",
            ],
        );
        // The client-certificate role, over the local socket.
        let admin = format!(
            "postgres://postgres@/postgres?host={}&port={}",
            cluster.dir.path().display(),
            cluster.port
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut conn = loop {
            match PgConnection::establish(&admin) {
                Ok(conn) => break conn,
                Err(e) if Instant::now() > deadline => panic!("the cluster never answered: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        };
        diesel::sql_query("CREATE ROLE certuser LOGIN SUPERUSER")
            .execute(&mut conn)
            .unwrap();
        cluster
    }

    /// A URL of this cluster's `postgres` database at `host`.
    fn url(&self, user: &str, host: &str, params: &str) -> String {
        format!("postgres://{user}@{host}:{}/postgres?{params}", self.port)
    }

    /// initdb refuses to run as root: the cluster belongs to `postgres`
    /// (or `nobody`) when the tests run as root.
    fn owner() -> Option<&'static str> {
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let postgres = Command::new("id").arg("postgres").output();
        Some(match postgres {
            Ok(out) if out.status.success() => "postgres",
            _ => "nobody",
        })
    }

    fn own(&self, path: &Path) {
        if let Some(owner) = Self::owner() {
            let status = Command::new("chown").arg(owner).arg(path).status().unwrap();
            assert!(status.success());
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bindir.join(tool);
        let mut command = match Self::owner() {
            Some(owner) => {
                let mut c = Command::new("runuser");
                c.args(["-u", owner, "--"]).arg(program);
                c
            }
            None => Command::new(program),
        };
        let out = command.args(args).output().unwrap();
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        assert!(
            out.status.success(),
            "{tool}: {}{}\n{log}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data").display().to_string();
        let program = self.bindir.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = match Self::owner() {
            Some(owner) => Command::new("runuser")
                .args(["-u", owner, "--"])
                .arg(program)
                .args(args)
                .output(),
            None => Command::new(program).args(args).output(),
        };
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Opens the store at `url`: `Ok` or the error's text.
fn open(url: &str) -> Result<(), String> {
    offersync::store::open(url)
        .map(drop)
        .map_err(|e| e.to_string())
}

#[track_caller]
fn connects(url: &str) {
    if let Err(e) = open(url) {
        panic!("{url} should connect: {e}");
    }
}

#[track_caller]
fn refused(url: &str, because: &str) -> String {
    match open(url) {
        Ok(()) => panic!("{url} should be refused ({because})"),
        Err(e) => {
            assert!(e.contains(because), "{url}: expected `{because}` in: {e}");
            e
        }
    }
}

#[test]
fn a_server_whose_certificate_a_ca_signed_is_verified_as_libpq_documents() {
    let certs = Certificates::new();
    let server = Cluster::start(
        Server::TlsOnly {
            cert: "server.crt",
            key: "server.key",
        },
        &certs,
    );
    let ca = certs.path("ca.pem");
    let other = certs.path("other-ca.pem");
    let url = |host: &str, params: &str| server.url("postgres", host, params);
    let unverified = "certificate verify failed";

    // prefer (libpq's default) tries TLS first: this server accepts nothing else.
    connects(&url("localhost", ""));
    connects(&url("127.0.0.1", "sslmode=prefer"));
    refused(&url("127.0.0.1", "sslmode=disable"), "no encryption");

    // require: encrypted, not verified, unless a root is given (then as verify-ca).
    connects(&url("127.0.0.1", "sslmode=require"));
    connects(&url(
        "127.0.0.1",
        &format!("sslmode=require&sslrootcert={ca}"),
    ));
    refused(
        &url("127.0.0.1", &format!("sslmode=require&sslrootcert={other}")),
        unverified,
    );

    // verify-ca: the chain only, whatever the name.
    connects(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    ));
    refused(
        &url(
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={other}"),
        ),
        unverified,
    );

    // verify-full: the chain and the name.
    connects(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ));
    refused(
        &url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        "does not match host name",
    );
    refused(
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={other}"),
        ),
        unverified,
    );

    // Verifying needs a root, and libpq says where to put one.
    let no_root = refused(
        &url(
            "localhost",
            "sslmode=verify-full&sslrootcert=/nonexistent/root.crt",
        ),
        "root certificate file",
    );
    assert!(no_root.contains("sslrootcert=system"), "{no_root}");

    // A client certificate (sslcert/sslkey) for the role the server asks one of.
    let client = format!(
        "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
        certs.path("client.crt"),
        certs.path("client.key")
    );
    connects(&server.url("certuser", "localhost", &client));
    refused(
        &server.url(
            "certuser",
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}&sslcert=/nonexistent.crt"),
        ),
        "requires a valid client certificate",
    );

    // A password in the URL never reaches an error.
    let error = refused(
        &server.url("postgres:hunter2", "127.0.0.1", "sslmode=verify-full"),
        "cannot connect",
    );
    assert!(!error.contains("hunter2"), "{error}");

    // The binary, with sslrootcert=system: the operator's SSL_CERT_FILE wins
    // over the system's authorities.
    let out = Command::new(common::binary())
        .args([
            "status",
            "--database-url",
            &url("localhost", "sslrootcert=system"),
        ])
        .env("SSL_CERT_FILE", &ca)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_self_signed_server_certificate_given_as_sslrootcert_passes_verify_full() {
    let certs = Certificates::new();
    let server = Cluster::start(
        Server::TlsOnly {
            cert: "snakeoil.crt",
            key: "snakeoil.key",
        },
        &certs,
    );
    let snakeoil = certs.path("snakeoil.crt");
    let other = certs.path("other-ca.pem");
    let url = |host: &str, params: &str| server.url("postgres", host, params);

    connects(&url("localhost", "sslmode=prefer"));
    connects(&url("127.0.0.1", "sslmode=require"));
    connects(&url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={snakeoil}"),
    ));
    connects(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={snakeoil}"),
    ));
    refused(
        &url(
            "127.0.0.1",
            &format!("sslmode=verify-full&sslrootcert={snakeoil}"),
        ),
        "does not match host name",
    );
    refused(
        &url(
            "localhost",
            &format!("sslmode=verify-ca&sslrootcert={other}"),
        ),
        "certificate verify failed",
    );
    refused(
        &url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={other}"),
        ),
        "certificate verify failed",
    );
}

#[test]
fn a_plaintext_only_server_is_reached_by_prefer_and_refused_by_every_tls_mode() {
    let certs = Certificates::new();
    let server = Cluster::start(Server::Plaintext, &certs);
    let ca = certs.path("ca.pem");
    let url = |params: &str| server.url("postgres", "localhost", params);

    // prefer falls back to plaintext; disable never tries TLS.
    connects(&url(""));
    connects(&url("sslmode=prefer"));
    connects(&url("sslmode=disable"));
    let no_tls = "does not support SSL";
    refused(&url("sslmode=require"), no_tls);
    refused(&url(&format!("sslmode=verify-ca&sslrootcert={ca}")), no_tls);
    refused(
        &url(&format!("sslmode=verify-full&sslrootcert={ca}")),
        no_tls,
    );
}
