//! A Postgres schema of the operator's choice (issue 27.12): libpq's
//! `options=-csearch_path%3DNAME` or offersync's `schema=NAME` shortcut in
//! the URL puts the tables and the migration table in that schema; two
//! stores in two schemas of one database stay apart, for every command and
//! the daemon; a schema that does not exist is refused before anything is
//! written.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use diesel::sql_types::{BigInt, Text};

fn offersync(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_offersync"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn all(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", all(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[derive(diesel::QueryableByName)]
struct Table {
    #[diesel(sql_type = Text)]
    table_schema: String,
    #[diesel(sql_type = Text)]
    table_name: String,
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// `schema.table` for every table of the database outside Postgres's own.
fn tables(db: &TestDb) -> Vec<String> {
    let mut all: Vec<String> = db
        .query::<Table>(
            "SELECT table_schema::text AS table_schema, table_name::text AS table_name \
             FROM information_schema.tables \
             WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
             AND table_type = 'BASE TABLE'",
        )
        .into_iter()
        .map(|t| format!("{}.{}", t.table_schema, t.table_name))
        .collect();
    all.sort();
    all
}

fn count(db: &TestDb, sql: &str) -> i64 {
    db.query::<Count>(sql)[0].n
}

#[test]
fn two_schemas_of_one_database_keep_two_stores_apart() {
    let db = TestDb::postgres();
    db.execute("CREATE SCHEMA shop_a");
    db.execute("CREATE SCHEMA shop_b");
    let work = tempfile::tempdir().unwrap();
    // The shortcut for one, libpq's own parameter for the other.
    let a = format!("{}?schema=shop_a", db.url);
    let b = format!("{}?options=-csearch_path%3Dshop_b", db.url);

    // The same integration in both: store A synced once, store B twice.
    ok(offersync(work.path(), &["demo", "--database-url", &a], &[]));
    ok(offersync(work.path(), &["demo", "--database-url", &b], &[]));
    ok(offersync(work.path(), &["demo", "--database-url", &b], &[]));

    let tables = tables(&db);
    assert!(
        tables.iter().all(|t| !t.starts_with("public.")),
        "tables in public: {tables:?}"
    );
    for schema in ["shop_a", "shop_b"] {
        for table in [
            "__diesel_schema_migrations",
            "campaigns",
            "integrations",
            "sync_runs",
        ] {
            let name = format!("{schema}.{table}");
            assert!(tables.contains(&name), "no {name} in {tables:?}");
        }
    }
    assert_eq!(count(&db, "SELECT count(*) AS n FROM shop_a.sync_runs"), 1);
    assert_eq!(count(&db, "SELECT count(*) AS n FROM shop_b.sync_runs"), 2);
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM shop_a.campaign_changes"),
        3
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM shop_b.campaign_changes"),
        3
    );

    // Every reading command sees its own schema's store, and only it.
    let runs = |url: &str| {
        let out = ok(offersync(
            work.path(),
            &[
                "runs",
                "demo-everflow",
                "--format",
                "json",
                "--database-url",
                url,
            ],
            &[],
        ));
        // JSON lines, one a run.
        out.lines()
            .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].is_number())
            .count()
    };
    assert_eq!(runs(&a), 1);
    assert_eq!(runs(&b), 2);
    let status_a = ok(offersync(
        work.path(),
        &["status", "--database-url", &a],
        &[],
    ));
    assert!(status_a.contains("demo-everflow"), "{status_a}");
    ok(offersync(
        work.path(),
        &["runs", "show", "2", "--database-url", &b],
        &[],
    ));
    let no_run_2 = offersync(
        work.path(),
        &["runs", "show", "2", "--database-url", &a],
        &[],
    );
    assert!(!no_run_2.status.success(), "{}", all(&no_run_2));
    let changes = ok(offersync(
        work.path(),
        &["changes", "--format", "json", "--database-url", &a],
        &[],
    ));
    assert_eq!(changes.lines().count(), 3, "{changes}");
    assert!(changes.contains(r#""external_id":"318""#), "{changes}");
    let campaigns = ok(offersync(
        work.path(),
        &["campaigns", "demo-everflow", "--database-url", &a],
        &[],
    ));
    assert!(campaigns.contains("GlowSkin"), "{campaigns}");

    // An operator's edit in one schema is drift there, and only there.
    db.execute("UPDATE shop_a.campaigns SET name = 'edited' WHERE external_id = '214'");
    ok(offersync(work.path(), &["demo", "--database-url", &a], &[]));
    assert_eq!(
        count(
            &db,
            "SELECT sum(drift_corrected)::bigint AS n FROM shop_a.sync_runs"
        ),
        1
    );
    assert_eq!(
        count(
            &db,
            "SELECT sum(drift_corrected)::bigint AS n FROM shop_b.sync_runs"
        ),
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS n FROM shop_a.campaigns WHERE name = 'edited'"
        ),
        0
    );
}

#[test]
fn the_daemon_honours_the_schema() {
    let db = TestDb::postgres();
    db.execute("CREATE SCHEMA ops");
    let url = format!("{}?schema=ops", db.url);
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("integrations.d")).unwrap();
    let manifest = ok(offersync(work.path(), &["demo", "--manifest"], &[]));
    std::fs::write(
        work.path().join("integrations.d/demo-everflow.yaml"),
        manifest,
    )
    .unwrap();

    // The demo network, kept serving.
    let mut api = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .args(["demo", "--serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let base_url = {
        use std::io::{BufRead, BufReader};
        let mut lines = BufReader::new(api.stdout.take().unwrap()).lines();
        let url = lines
            .by_ref()
            .map(Result::unwrap)
            .find_map(|l| l.trim().strip_prefix("base_url: ").map(str::to_string))
            .expect("demo --serve prints its base_url");
        std::thread::spawn(move || for _ in lines {});
        url
    };
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_offersync"))
        .current_dir(work.path())
        .args(["daemon", "--dir", "integrations.d"])
        .env("DATABASE_URL", &url)
        .env("OFFERSYNC_DEMO_API", &base_url)
        .env("OFFERSYNC_DEMO_API_KEY", "demo-api-key")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut succeeded = 0;
    while succeeded == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let present = count(
            &db,
            "SELECT count(*) AS n FROM information_schema.tables \
             WHERE table_schema = 'ops' AND table_name = 'sync_runs'",
        );
        if present == 1 {
            succeeded = count(
                &db,
                "SELECT count(*) AS n FROM ops.sync_runs WHERE status = 'succeeded'",
            );
        }
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = api.kill();
    let _ = api.wait();
    assert_eq!(succeeded, 1, "the daemon's run never reached schema ops");
    let tables = tables(&db);
    assert!(
        tables.iter().all(|t| t.starts_with("ops.")),
        "tables outside ops: {tables:?}"
    );
    // `status` with the same URL reads what the daemon wrote.
    let status = ok(offersync(
        work.path(),
        &["status"],
        &[("DATABASE_URL", &url)],
    ));
    assert!(status.contains("demo-everflow"), "{status}");
}

#[test]
fn a_schema_that_does_not_exist_is_refused_before_anything_is_written() {
    let db = TestDb::postgres();
    let work = tempfile::tempdir().unwrap();
    for url in [
        format!("{}?schema=shop_typo", db.url),
        format!("{}?options=-csearch_path%3Dshop_typo,public", db.url),
    ] {
        for args in [
            &["demo", "--database-url", &url][..],
            &["status", "--database-url", &url][..],
        ] {
            let out = offersync(work.path(), args, &[]);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", all(&out));
            let said = all(&out);
            assert!(
                said.contains("the schema `shop_typo`") && said.contains("CREATE SCHEMA shop_typo"),
                "{said}"
            );
        }
    }
    assert_eq!(tables(&db), Vec::<String>::new());
    // A name the shortcut cannot pass to libpq as it is: refused with the
    // parameter to use instead.
    let url = format!("{}?schema=Shop", db.url);
    let out = offersync(work.path(), &["status", "--database-url", &url], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", all(&out));
    assert!(all(&out).contains("options=-csearch_path"), "{}", all(&out));
}

#[test]
fn an_integrations_run_lock_holds_in_its_own_schema_only() {
    let db = TestDb::postgres();
    db.execute("CREATE SCHEMA shop_a");
    db.execute("CREATE SCHEMA shop_b");
    let work = tempfile::tempdir().unwrap();
    let a = format!("{}?schema=shop_a", db.url);
    let b = format!("{}?schema=shop_b", db.url);
    // A run of demo-everflow in progress in schema shop_a.
    let mut holder = offersync::store::open(&a).unwrap();
    holder.lock_run("demo-everflow").unwrap();

    let other_schema = offersync(work.path(), &["demo", "--database-url", &b], &[]);
    assert!(other_schema.status.success(), "{}", all(&other_schema));
    let same_schema = offersync(work.path(), &["demo", "--database-url", &a], &[]);
    assert!(!same_schema.status.success(), "{}", all(&same_schema));
    assert!(
        all(&same_schema).contains("another run of integration `demo-everflow` is in progress"),
        "{}",
        all(&same_schema)
    );
    // And in public, where the lock is the name alone, as it always was.
    let public = offersync(work.path(), &["demo", "--database-url", &db.url], &[]);
    assert!(public.status.success(), "{}", all(&public));
    holder.end_run().unwrap();
}
