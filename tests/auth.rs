//! Logging in for a token (`auth: {kind: login}`) and renewing tokens on a
//! 401, through the real sync path against the mock network: the token sent
//! where the Network says, cached for its lifetime across pages and runs,
//! asked for anew when it expires or is revoked, once and never in a loop,
//! and never shown.

mod common;

use common::*;
use offersync::store::{self, Trigger};
use offersync::sync::{self, RunReport};

async fn sync_once(m: &Manifests, db: &TestDb, name: &str) -> RunReport {
    let def = m.load(name);
    let store = store::open(&db.url).expect("open the store");
    let (_, report) = sync::run(def, store, Trigger::Cli).await;
    report.expect("the run starts")
}

/// Involve Asia's shape: key and secret posted as a form, the token at
/// `$.data.token`, sent as a bearer token.
const FORM_LOGIN: &str = "{kind: login, url: \"{{ params.base_url }}/login\", form: {key: acme, secret: \"{{ params.api_key }}\"}, token: $.data.token, expires_in: $.expires_in, header: {name: Authorization, value: \"Bearer {{ token }}\"}}";

/// MaxBounty's shape, with the token in a query parameter instead: a JSON
/// body and a fixed lifetime.
const JSON_LOGIN: &str = "{kind: login, url: \"{{ params.base_url }}/login\", json: {email: acme, password: \"{{ params.api_key }}\"}, token: $.data.token, lifetime_seconds: 7200, query: {param: token}}";

async fn start(auth: &str, lifetime: u64) -> (MockNetwork, Manifests) {
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    mock.require_tokens(lifetime);
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, auth),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    (mock, m)
}

fn logins(mock: &MockNetwork) -> usize {
    mock.with_state(|s| s.logins.len())
}

fn valid_token(mock: &MockNetwork) -> String {
    mock.with_state(|s| s.valid_token.clone().expect("a token was issued").0)
}

async fn a_login_token_is_sent_in_a_header_and_kept_across_pages_and_runs(backend: Backend) {
    let (mock, m) = start(FORM_LOGIN, 7200).await;
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(logins(&mock), 1, "one login for the three pages");
    let login = mock.with_state(|s| s.logins[0].clone());
    assert_eq!(login.content_type, "application/x-www-form-urlencoded");
    let bearer = format!("Bearer {}", valid_token(&mock));
    let pages = mock.requests();
    assert_eq!(pages.len(), 3);
    assert!(
        pages
            .iter()
            .all(|r| r.headers.get("authorization") == Some(&bearer))
    );
    assert_eq!(mock.with_state(|s| s.unauthorized), 0);

    // The next run (as the daemon makes it) uses the token still valid.
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(logins(&mock), 1, "the token is kept for its lifetime");
}

async fn a_login_token_goes_in_a_query_parameter(backend: Backend) {
    let (mock, m) = start(JSON_LOGIN, 7200).await;
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(logins(&mock), 1);
    let login = mock.with_state(|s| s.logins[0].clone());
    assert_eq!(login.content_type, "application/json");
    let token = valid_token(&mock);
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.query.get("token") == Some(&token)
                && !r.headers.contains_key("authorization"))
    );
}

async fn an_expired_token_is_renewed_by_a_new_login(backend: Backend) {
    // Tokens live 1 s: the second run, 2.5 s later, logs in again before
    // it asks for a page (no 401 on the way).
    let (mock, m) = start(FORM_LOGIN, 1).await;
    let db = TestDb::new(backend);
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    assert_eq!(logins(&mock), 1);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(logins(&mock), 2);
    assert_eq!(mock.with_state(|s| s.unauthorized), 0);
}

async fn a_revoked_token_is_answered_by_exactly_one_new_login(backend: Backend) {
    let (mock, m) = start(FORM_LOGIN, 7200).await;
    let db = TestDb::new(backend);
    assert!(sync_once(&m, &db, "acme").await.succeeded());
    let first = valid_token(&mock);
    // Revoked between runs: the cached token gets a 401, then one login.
    mock.revoke_token();
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(logins(&mock), 2);
    assert_eq!(mock.with_state(|s| s.unauthorized), 1);
    assert_ne!(valid_token(&mock), first);
    // Revoked mid-run, after the first page: the same.
    mock.with_state(|s| s.revoke_after_pages = Some(1));
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(
        logins(&mock),
        3,
        "one login, however many pages were refused"
    );
    // Pages after the first may be asked for at once: each may get a 401,
    // and all of them share the one new token.
    assert!(mock.with_state(|s| s.unauthorized) >= 2);
}

async fn a_second_401_fails_the_run_and_never_loops(backend: Backend) {
    let (mock, m) = start(FORM_LOGIN, 7200).await;
    mock.with_state(|s| s.refuse_every_token = true);
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    let error = report.error.clone().expect("the run fails");
    assert!(error.contains("401"), "{error}");
    assert!(error.contains("again with a new token"), "{error}");
    assert_eq!(
        logins(&mock),
        2,
        "the first login and one more, never a loop"
    );
    assert_eq!(mock.with_state(|s| s.unauthorized), 2);
    let token = valid_token(&mock);
    assert!(!error.contains(&token), "{error}");
    assert!(!error.contains(API_KEY), "{error}");
}

async fn a_failed_login_names_the_url_and_shows_no_secret(backend: Backend) {
    let (mock, m) = start(FORM_LOGIN, 7200).await;
    // A wrong secret, which the mock echoes back in its error.
    std::fs::write(m.path().join("secrets/api.key"), "wrong-s3cret-42").unwrap();
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    let error = report.error.clone().expect("the run fails");
    assert!(error.contains("login to http://"), "{error}");
    assert!(error.contains("HTTP 401"), "{error}");
    assert!(error.contains("Invalid Credentials"), "{error}");
    assert!(!error.contains("wrong-s3cret-42"), "{error}");
    assert_eq!(logins(&mock), 1);
    assert!(mock.requests().is_empty(), "no page without a token");
}

async fn an_oauth2_token_revoked_mid_run_is_renewed_once(backend: Backend) {
    let oauth = "{kind: oauth2, token_url: \"{{ params.base_url }}/token\", client_id: acme, client_secret: \"{{ params.api_key }}\"}";
    let (mock, m) = start(oauth, 3600).await;
    std::fs::write(m.path().join("secrets/api.key"), "cs-secret-3").unwrap();
    let db = TestDb::new(backend);
    // The token is revoked after the first page: one new token, and the
    // run goes on with it.
    mock.with_state(|s| s.revoke_after_pages = Some(1));
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(mock.with_state(|s| s.token_requests), 2, "one new token");
    assert!(mock.with_state(|s| s.unauthorized) >= 1);

    mock.with_state(|s| s.refuse_every_token = true);
    let report = sync_once(&m, &db, "acme").await;
    let error = report.error.clone().expect("the run fails");
    assert!(error.contains("again with a new token"), "{error}");
    assert_eq!(mock.with_state(|s| s.token_requests), 4);
    assert!(!error.contains("tok-"), "{error}");
}

async fn per_offer_requests_share_the_token_and_its_renewal(backend: Backend) {
    let mock = MockNetwork::start(offers(1..=25), 10).await;
    mock.require_tokens(7200);
    let network = network_yaml(PAGE_PAGINATION, FORM_LOGIN)
        .replace("    tracking_url: $.tracking_url\n", "")
        + "  enrich:
    - name: tracking link
      url: '{{ params.base_url }}/links'
      method: POST
      json: {campaign_id: '{{ record.$.id }}'}
      fields:
        tracking_url: $.data.url
";
    let m = Manifests::new(&network, &integration_yaml("acme", &mock.base_url(), ""));
    let db = TestDb::new(backend);
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(logins(&mock), 1, "one login for 3 pages and 25 links");
    assert_eq!(mock.with_state(|s| s.posted.len()), 25);
    assert_eq!(mock.with_state(|s| s.unauthorized), 0);

    // Revoked among the per-offer requests (some run at once): one login,
    // and every link is fetched all the same.
    mock.with_state(|s| {
        s.posted.clear();
        s.revoke_after_pages = Some(10);
    });
    let report = sync_once(&m, &db, "acme").await;
    assert!(report.succeeded(), "{:?}", report.error);
    assert_eq!(logins(&mock), 2);
    assert!(mock.with_state(|s| s.unauthorized) >= 1);
    assert_eq!(mock.with_state(|s| s.posted.len()), 25, "no offer skipped");
}

/// `offersync sync` at debug level, with a revoked token on the way and a
/// failed run: neither the secret, nor the login body, nor any token issued
/// is in stdout, stderr, `runs` or the SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_secrets_and_tokens_are_never_in_any_output() {
    let (mock, m) = start(FORM_LOGIN, 7200).await;
    let db = TestDb::new(Backend::Sqlite);
    let sync = |args: &'static [&'static str]| {
        let dir = m.path().to_path_buf();
        let url = db.url.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(binary())
                .args(args)
                .arg("--dir")
                .arg(dir)
                .env("DATABASE_URL", url)
                .env("RUST_LOG", "offersync=trace")
                .output()
                .unwrap()
        })
    };
    let mut output = String::new();
    let mut keep = |o: std::process::Output| {
        output.push_str(&String::from_utf8_lossy(&o.stdout));
        output.push_str(&String::from_utf8_lossy(&o.stderr));
        o.status.code()
    };
    mock.with_state(|s| s.revoke_after_pages = Some(1));
    assert_eq!(keep(sync(&["sync", "acme"]).await.unwrap()), Some(0));
    mock.with_state(|s| s.refuse_every_token = true);
    assert_eq!(keep(sync(&["sync", "acme"]).await.unwrap()), Some(1));
    keep(sync(&["runs", "acme"]).await.unwrap());
    assert!(output.contains("again with a new token"), "{output}");
    let tokens = mock.with_state(|s| s.issued.clone());
    assert_eq!(
        tokens.len(),
        4,
        "first, after the revocation, and twice in the failed run"
    );
    let stored = std::fs::read(db.url.trim_start_matches("sqlite://")).unwrap();
    let stored = String::from_utf8_lossy(&stored);
    for secret in tokens.iter().map(String::as_str).chain([API_KEY]) {
        assert!(
            !output.contains(secret),
            "{secret} in the output:\n{output}"
        );
        assert!(!stored.contains(secret), "{secret} in the store");
    }
}

/// A login auth that cannot work is refused when the manifests load, with
/// the field and what to write.
#[test]
fn a_login_that_cannot_work_is_a_load_error_with_a_hint() {
    for (auth, expected) in [
        (
            "{kind: login, url: \"{{ params.base_url }}/login\", token: $.token}",
            "says where the token is sent",
        ),
        (
            "{kind: login, url: \"{{ params.base_url }}/login\", token: $.token, header: {name: X-Token, value: \"Bearer\"}}",
            "does not say where the token goes",
        ),
        (
            "{kind: login, url: \"{{ params.base_url }}/login\", token: $.token, query: {param: t}, header: {name: X-Token}}",
            "header and query are both given",
        ),
        (
            "{kind: login, url: \"{{ params.base_url }}/login\", form: {a: b}, json: {c: d}, token: $.token, query: {param: t}}",
            "form and json are given",
        ),
        (
            "{kind: login, method: GET, url: \"{{ params.base_url }}/login\", form: {a: b}, token: $.token, query: {param: t}}",
            "a GET request carries no body",
        ),
        (
            "{kind: login, url: \"{{ params.base_url }}/login\", token: $.token, lifetime_seconds: 0, query: {param: t}}",
            "lifetime of 0 seconds",
        ),
        (
            "{kind: login, url: \"{{ params.nope }}/login\", token: $.token, query: {param: t}}",
            "nope",
        ),
    ] {
        let m = Manifests::new(
            &network_yaml(PAGE_PAGINATION, auth),
            &integration_yaml("acme", "http://127.0.0.1:9", ""),
        );
        let loaded = offersync::manifest::load_dir(m.path(), &|_| None);
        assert!(loaded.has_errors(), "{auth}");
        let shown = format!("{:?}", loaded.diagnostics);
        assert!(shown.contains(expected), "{auth}: {shown}");
        assert!(shown.contains("spec.auth"), "{auth}: {shown}");
    }
}

on_both_backends!(
    a_login_token_is_sent_in_a_header_and_kept_across_pages_and_runs,
    a_login_token_goes_in_a_query_parameter,
    an_expired_token_is_renewed_by_a_new_login,
    a_revoked_token_is_answered_by_exactly_one_new_login,
    a_second_401_fails_the_run_and_never_loops,
    a_failed_login_names_the_url_and_shows_no_secret,
    an_oauth2_token_revoked_mid_run_is_renewed_once,
    per_offer_requests_share_the_token_and_its_renewal,
);
