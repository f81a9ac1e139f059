//! `offersync studio` in a real headless browser (Debian's chromium),
//! driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! JSON messages separated by NUL on fds 3 and 4, so no websocket client
//! and no crate is needed): load, change a path and see the table update,
//! click an offer and see its trace, lock tests, save and find the file on
//! disk, read the live API without its key reaching the page; and over
//! plain HTTP, the token of a non-loopback listener, the Host check, the
//! headers and the bounds.
//!
//! Chromium gets a resolver that knows only 127.0.0.1 and a proxy that goes
//! nowhere, so the browser sends nothing beyond loopback. Without chromium
//! the browser tests are skipped with a loud message, unless CI is set:
//! then they fail.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("OFFERSYNC_CHROMIUM") {
        return Some(path.into());
    }
    let found = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the studio's browser tests need Chromium under CI: apt-get install chromium (.ci/run does)"
        );
        eprintln!(
            "\n\n!!! SKIPPED: the studio's browser test needs Chromium (apt-get install chromium, or set OFFERSYNC_CHROMIUM); under CI it fails instead !!!\n\n"
        );
    }
    found
}

/// Headless Chromium with a DevTools session on one page.
struct Browser {
    child: Child,
    to: std::fs::File,
    from: BufReader<std::fs::File>,
    next: u64,
    session: String,
    _profile: tempfile::TempDir,
}

fn pipe() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    }
}

impl Browser {
    fn start(binary: &Path) -> Self {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let profile = tempfile::tempdir().unwrap();
        let (child_reads, to) = pipe();
        let (from, child_writes) = pipe();
        let (r, w) = (child_reads.as_raw_fd(), child_writes.as_raw_fd());
        let mut command = Command::new(binary);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--proxy-server=http://127.0.0.1:9",
                "--proxy-bypass-list=127.0.0.1",
                "--remote-debugging-pipe",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The protocol's pipe is fds 3 (commands in) and 4 (answers out).
        unsafe {
            command.pre_exec(move || {
                let high_r = libc::fcntl(r, libc::F_DUPFD, 10);
                let high_w = libc::fcntl(w, libc::F_DUPFD, 10);
                if high_r < 0
                    || high_w < 0
                    || libc::dup2(high_r, 3) < 0
                    || libc::dup2(high_w, 4) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(high_r);
                libc::close(high_w);
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((child_reads, child_writes));
        let mut browser = Self {
            child,
            to,
            from: BufReader::new(from),
            next: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = browser.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        browser.send("Page.enable", json!({}));
        browser.send("Runtime.enable", json!({}));
        browser
    }

    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = message.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap();
        loop {
            let mut raw = Vec::new();
            let read = self.from.read_until(0, &mut raw).unwrap();
            assert!(read > 0, "chromium closed the DevTools pipe");
            raw.pop();
            let answer: Value = serde_json::from_slice(&raw).unwrap();
            if answer["id"] == json!(id) {
                assert!(
                    answer.get("error").is_none(),
                    "{method}: {}",
                    answer["error"]
                );
                return answer["result"].clone();
            }
        }
    }

    fn send(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.call(Some(&session), method, params)
    }

    fn goto(&mut self, url: &str) {
        self.send("Page.navigate", json!({"url": url}));
        self.wait("document.readyState === 'complete'", "the page loads");
    }

    /// The value of a JavaScript expression (awaited when a promise).
    fn eval(&mut self, expression: &str) -> Value {
        let result = self.send(
            "Runtime.evaluate",
            json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {}",
            result["exceptionDetails"]
        );
        result["result"]["value"].clone()
    }

    /// Waits until `condition` holds (a deadline only for a broken page:
    /// how fast it holds is measured elsewhere, never asserted).
    fn wait(&mut self, condition: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.eval(&format!("!!({condition})")) == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.eval("document.body ? document.body.innerText : ''");
                panic!("{what}: `{condition}` never held; the page shows:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn html(&mut self) -> String {
        self.eval("document.documentElement.outerHTML")
            .as_str()
            .unwrap()
            .to_string()
    }

    fn screenshot(&mut self, path: &Path) {
        let shot = self.send("Page.captureScreenshot", json!({"format": "png"}));
        use base64::Engine;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `offersync studio` on `dir`, with `env`; its URL and the process.
struct Studio {
    child: Child,
    url: String,
    /// Kept open: the studio prints more than its first line.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Studio {
    fn start(dir: &Path, listen: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary())
            .args(["studio", "--dir"])
            .arg(dir)
            .args(["--listen", listen])
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("the studio prints its URL: {line:?}"))
            .to_string();
        Self {
            child,
            url,
            _stdout: stdout,
        }
    }

    fn base(&self) -> String {
        let rest = &self.url["http://".len()..];
        format!("http://{}", &rest[..rest.find('/').unwrap()])
    }
}

impl Drop for Studio {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client (reqwest is built without a default TLS provider).
fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// A saved page of the mock network's API.
fn page_json(ids: std::ops::RangeInclusive<u32>) -> String {
    let list = offers(ids);
    let total = list.len();
    serde_json::to_string_pretty(&json!({"offers": list, "paging": {"total_count": total}}))
        .unwrap()
}

/// The mock network, its Integration (the key in `secrets/api.key`) and a
/// saved sample, in a git work tree.
fn workspace(base_url: &str) -> Manifests {
    workspace_with(base_url, HEADER_AUTH)
}

/// The key in the query string: what a page would show if it were not
/// redacted.
const QUERY_AUTH: &str = "{kind: query, param: api_key, value: \"{{ params.api_key }}\"}";

fn workspace_with(base_url: &str, auth: &str) -> Manifests {
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, auth),
        &integration_yaml(
            "acme",
            base_url,
            "  filters:\n    countries: {allow: [US]}\n  payout: {ratio: 0.5, decimals: 2, rounding: half_up}\n",
        ),
    );
    std::fs::create_dir_all(m.path().join("samples")).unwrap();
    std::fs::write(m.path().join("samples/page1.json"), page_json(1..=6)).unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .arg("-C")
            .arg(m.path())
            .args(args)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@localhost")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@localhost")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-q", "-m", "start"]);
    m
}

/// Sets the editor's text as typing does (an `input` event).
fn type_text(b: &mut Browser, text: &str) {
    b.eval(&format!(
        "(() => {{ const t = document.getElementById('text'); t.value = {}; t.dispatchEvent(new Event('input')); }})()",
        json!(text)
    ));
}

fn shots_dir() -> PathBuf {
    std::env::var_os("OFFERSYNC_STUDIO_SHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("studio"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_browser_the_studio_maps_explains_locks_and_saves() {
    let Some(chromium) = chromium() else {
        return;
    };
    let mock = MockNetwork::start(offers(1..=14), 10).await;
    let m = workspace(&mock.base_url());
    let dir = m.path().to_path_buf();
    let base_url = mock.base_url();
    // The browser is driven from a blocking thread: the mock network is
    // served by this runtime meanwhile.
    tokio::task::spawn_blocking(move || scenario(&chromium, &dir, &base_url))
        .await
        .unwrap();
}

fn scenario(chromium: &Path, dir: &Path, _base_url: &str) {
    let studio = Studio::start(dir, "127.0.0.1:0", &[]);
    let shots = shots_dir();
    let mut b = Browser::start(chromium);
    let mut seen = String::new();

    // The list: the directory's Network and Integration.
    b.goto(&studio.url);
    b.wait(
        "document.querySelector('#networks a')",
        "the list shows the network",
    );
    let list = b.eval("document.body.innerText");
    assert!(list.as_str().unwrap().contains("mocknet"), "{list}");
    assert!(list.as_str().unwrap().contains("acme on mocknet"), "{list}");
    b.screenshot(&shots.join("1-list.png"));
    seen.push_str(&b.html());

    // The editor: the sample's offers as a table.
    b.goto(&format!("{}edit?file=networks/mocknet.yaml", studio.url));
    b.wait(
        "document.querySelectorAll('#offers tbody tr').length === 6",
        "the sample's six offers show",
    );
    assert_eq!(
        b.eval("document.querySelector('#sample').value"),
        json!("samples/page1.json")
    );
    assert_eq!(
        b.eval("document.querySelector('#offers tbody tr td:nth-child(2)').textContent"),
        json!("Offer 1")
    );
    b.screenshot(&shots.join("2-editor.png"));

    // Change a path: the names come from another key, the table follows.
    let original = b.eval("document.getElementById('text').value");
    let original = original.as_str().unwrap().to_string();
    let started = Instant::now();
    type_text(
        &mut b,
        &original.replace("name: $.name", "name: $.category"),
    );
    b.wait(
        "document.querySelector('#offers tbody tr td:nth-child(2)').textContent === 'Finance'",
        "the table shows the new path's values",
    );
    eprintln!(
        "studio: a changed path to a refreshed table in {} ms (debounce included, polled every 50 ms)",
        started.elapsed().as_millis()
    );

    // A path that selects nothing: a problem per record, and the warning
    // with a suggestion, as `map` says it.
    type_text(&mut b, &original.replace("name: $.name", "name: $.nmae"));
    b.wait(
        "document.querySelector('#summary') && document.querySelector('#summary').textContent.startsWith('0 offers, 6 problems')",
        "every record is a problem",
    );
    let results = b.eval("document.getElementById('results').innerText");
    assert!(
        results.as_str().unwrap().contains("did you mean `$.name`"),
        "{results}"
    );

    // A validation error shows at its line, in the words of `validate`.
    type_text(&mut b, &original.replace("  records:", "  recrods:"));
    b.wait(
        "document.querySelector('#gutter span.error')",
        "the gutter marks the line",
    );
    let line = original
        .lines()
        .position(|l| l.starts_with("  records:"))
        .unwrap()
        + 1;
    let marked =
        b.eval("[...document.querySelectorAll('#gutter span.error')].map(s => s.textContent)");
    assert!(
        marked
            .as_array()
            .unwrap()
            .contains(&json!(line.to_string())),
        "line {line} is marked: {marked}"
    );
    let problems = b.eval("document.getElementById('problems').innerText");
    assert!(problems.as_str().unwrap().contains("recrods"), "{problems}");
    b.screenshot(&shots.join("3-problem.png"));

    // Back to the file as written; an offer clicked shows its trace
    // through the Integration: rule, value, filters, payout arithmetic.
    type_text(&mut b, &original);
    b.wait(
        "document.querySelectorAll('#offers tbody tr').length === 6 && !document.querySelector('#gutter span.error')",
        "the file validates again",
    );
    b.eval(
        "(() => { const s = document.getElementById('integration'); s.value = 'acme'; s.dispatchEvent(new Event('change')); })()",
    );
    b.wait(
        "document.querySelector('#integration').value === 'acme'",
        "the integration is chosen",
    );
    b.eval("document.querySelector('#offers tr[data-offer=\"3\"]').click()");
    b.wait("document.querySelector('#trace-title')", "the trace shows");
    let trace = b.eval("document.getElementById('trace').innerText");
    let trace = trace.as_str().unwrap();
    assert!(trace.contains("Offer 3"), "{trace}");
    assert!(trace.contains("$.payout"), "{trace}");
    assert!(trace.contains("Through Integration acme"), "{trace}");
    assert!(trace.contains("filters.countries"), "{trace}");
    assert!(trace.contains("4.50 × 0.5 = 2.25"), "{trace}");
    b.eval("document.getElementById('trace').scrollIntoView()");
    b.screenshot(&shots.join("4-trace.png"));
    b.eval("window.scrollTo(0, 0)");

    // Lock the offers: a tests: entry with the sample relative to the
    // file, which passes at once.
    b.eval("document.getElementById('lock').click()");
    b.wait(
        "document.querySelector('#test-list li.pass')",
        "the locked test passes",
    );
    let text = b.eval("document.getElementById('text').value");
    let text = text.as_str().unwrap().to_string();
    assert!(
        text.contains("samples: [\"../samples/page1.json\"]"),
        "{text}"
    );
    assert!(text.contains("count: {offers: 6, problems: 0}"), "{text}");
    b.eval("document.getElementById('tests').scrollIntoView()");
    b.screenshot(&shots.join("5-tests.png"));

    // Save: the diff first, then the file on disk, and its git status.
    b.eval("document.getElementById('review').click()");
    b.wait("document.querySelector('#confirm')", "the diff shows");
    let diff = b.eval("document.getElementById('diff').innerText");
    assert!(
        diff.as_str()
            .unwrap()
            .contains("+     - name: \"locked in the studio: page1.json\""),
        "{diff}"
    );
    b.eval("document.querySelector('#diff .add').scrollIntoView({block: 'center'})");
    b.screenshot(&shots.join("6-diff.png"));
    b.eval("document.getElementById('confirm').click()");
    b.wait("document.querySelector('#saved')", "the file is saved");
    assert_eq!(
        std::fs::read_to_string(dir.join("networks/mocknet.yaml")).unwrap(),
        text
    );
    let git = b.eval("document.getElementById('git').innerText");
    assert!(
        git.as_str().unwrap().contains(" M networks/mocknet.yaml"),
        "{git}"
    );
    b.eval("document.getElementById('saved').scrollIntoView({block: 'center'})");
    b.screenshot(&shots.join("7-saved.png"));
    // What `offersync test` says of the saved file: the same pass.
    let out = Command::new(binary())
        .args(["test", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A live read through the Integration: the key stays on the server.
    b.eval("document.getElementById('live').click()");
    b.wait(
        "document.querySelector('#live-pages li') && document.querySelector('#sample').value === 'live:1' && document.querySelectorAll('#offers tbody tr').length === 10",
        "the first live page maps",
    );
    let log = b.eval("document.getElementById('livelog').innerText");
    let log = log.as_str().unwrap();
    assert!(log.contains("/offers?"), "{log}");
    assert!(log.contains("200 OK"), "{log}");
    b.eval("window.scrollTo(0, 0)");
    b.screenshot(&shots.join("8-live.png"));
    std::thread::sleep(Duration::from_millis(2100));
    b.eval("document.getElementById('next').click()");
    b.wait(
        "document.querySelector('#sample').value === 'live:2' && document.querySelectorAll('#offers tbody tr').length === 4",
        "the second live page maps",
    );
    seen.push_str(&b.html());
    assert!(!seen.contains(API_KEY), "the key reached the page");
}

/// Every answer a page's work gets, read over HTTP: none carries the key,
/// each has the CSP; a POST without the studio's header, a foreign Host,
/// a sample that is not JSON or too large are refused with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_studio_refuses_foreign_requests_and_never_answers_a_secret() {
    let mock = MockNetwork::start(offers(1..=3), 10).await;
    let m = workspace_with(&mock.base_url(), QUERY_AUTH);
    let studio = Studio::start(m.path(), "127.0.0.1:0", &[]);
    let base = studio.base();
    let http = client();
    let text = std::fs::read_to_string(m.path().join("networks/mocknet.yaml")).unwrap();
    let edit = json!({"file": "networks/mocknet.yaml", "text": text, "sample": "samples/page1.json", "integration": "acme", "offer": "2", "page": 1});
    let mut bodies = String::new();
    for (path, body) in [
        ("/api/check", edit.clone()),
        ("/api/explain", edit.clone()),
        ("/api/lock", edit.clone()),
        ("/api/diff", edit.clone()),
        ("/api/live", edit.clone()),
    ] {
        let r = http
            .post(format!("{base}{path}"))
            .header("x-studio", "1")
            .header("content-type", "application/json")
            .body(serde_json::to_string(&body).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        bodies.push_str(&r.text().await.unwrap());
    }
    for path in [
        "/",
        "/edit?file=networks/mocknet.yaml",
        "/edit?file=integration.yaml",
    ] {
        let r = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        let page = r.text().await.unwrap();
        assert!(!page.contains("<script>"), "no inline script: {page}");
        bodies.push_str(&page);
    }
    assert!(bodies.contains("200 OK"), "the live read ran: {bodies}");
    assert!(
        bodies.contains("api_key=[redacted]"),
        "the request is shown redacted: {bodies}"
    );
    assert!(
        mock.requests()
            .iter()
            .any(|r| r.query.get("api_key").map(String::as_str) == Some(API_KEY)),
        "the key was sent to the network"
    );
    assert!(!bodies.contains(API_KEY), "a response carried the key");

    // A cross-site form cannot post (no X-Studio header).
    let r = http
        .post(format!("{base}/api/save"))
        .header("content-type", "application/json")
        .body(serde_json::to_string(&edit).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // DNS rebinding: a foreign Host is refused.
    let r = http
        .get(format!("{base}/"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 421);
    // A file outside the directory is refused.
    let mut outside = edit.clone();
    outside["file"] = json!("../outside.yaml");
    let r = http
        .post(format!("{base}/api/save"))
        .header("x-studio", "1")
        .header("content-type", "application/json")
        .body(serde_json::to_string(&outside).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(!m.path().parent().unwrap().join("outside.yaml").exists());
    // A sample that is not JSON or XML, and one too large: clear words.
    let r = http
        .post(format!("{base}/api/sample"))
        .header("x-studio", "1")
        .header("content-type", "application/json")
        .body(serde_json::to_string(&json!({"name": "x", "body": "offers: [1, 2]"})).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let said: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(
        said["error"].as_str().unwrap().contains("not JSON or XML"),
        "{said}"
    );
    let huge = "x".repeat(9 * 1024 * 1024);
    let r = http
        .post(format!("{base}/api/sample"))
        .header("x-studio", "1")
        .header("content-type", "application/json")
        .body(serde_json::to_string(&json!({"name": "x", "body": huge})).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Live reads are rate limited: a second read that reaches the studio
    // within the interval of the first is refused (when the machine is so
    // slow that it does not, there is nothing to check).
    let live = || {
        http.post(format!("{base}/api/live"))
            .header("x-studio", "1")
            .header("content-type", "application/json")
            .body(serde_json::to_string(&edit).unwrap())
            .send()
    };
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let first_sent = Instant::now();
    assert_eq!(live().await.unwrap().status(), 200);
    let r = live().await.unwrap();
    // Both reached the studio within this bound.
    if first_sent.elapsed() < Duration::from_secs(2) {
        assert_eq!(r.status(), 422);
        let said: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert!(
            said["error"]
                .as_str()
                .unwrap()
                .contains("one live read every"),
            "{said}"
        );
    }
}

/// A listener beyond loopback prints a token; a request without it is
/// refused, with it gets a cookie that then suffices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_studio_beyond_loopback_needs_its_token() {
    let m = workspace("http://127.0.0.1:9");
    let studio = Studio::start(m.path(), "0.0.0.0:0", &[]);
    let token = studio
        .url
        .split("token=")
        .nth(1)
        .expect("the URL has a token");
    assert!(token.len() >= 32, "{token}");
    let port = studio.base().rsplit(':').next().unwrap().to_string();
    let base = format!("http://127.0.0.1:{port}");
    let http = client();
    let r = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("needs its token"));
    let r = http
        .get(format!("{base}/?token=wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = http
        .get(format!("{base}/?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();
    let r = http
        .get(format!("{base}/edit?file=networks/mocknet.yaml"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .post(format!("{base}/api/check"))
        .header("x-studio", "1")
        .header("cookie", "offersync_studio=nope")
        .header("content-type", "application/json")
        .body(serde_json::to_string(&json!({"file": "networks/mocknet.yaml", "text": ""})).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// "New network" from a pasted sample: scaffold's proposal opens unsaved,
/// maps the sample, and nothing is written but the sample.
#[test]
fn a_new_network_starts_from_a_pasted_sample() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let studio = Studio::start(dir.path(), "127.0.0.1:0", &[]);
    let mut b = Browser::start(&chromium);
    b.goto(&studio.url);
    b.eval(&format!(
        "(() => {{ document.getElementById('new-name').value = 'Acme'; document.getElementById('new-sample').value = {}; }})()",
        json!(page_json(1..=4))
    ));
    b.screenshot(&shots_dir().join("0-new.png"));
    b.eval("document.getElementById('new-go').click()");
    b.wait(
        "location.pathname === '/edit' && document.querySelectorAll('#offers tbody tr').length === 4",
        "the proposal maps the sample",
    );
    b.screenshot(&shots_dir().join("0-proposed.png"));
    assert!(dir.path().join("samples/acme.json").is_file());
    assert!(
        !dir.path().join("networks/acme.yaml").exists(),
        "not saved yet"
    );
}

/// The figure docs/studio.md gives: a keystroke to a refreshed table on the
/// demo samples (Everflow's Network file, `demo/api/everflow/page1.json`),
/// measured in the page from the `input` event to the table's swap (the
/// debounce included). A measurement, not a check: run it with
/// `cargo test --release --test studio -- --ignored --nocapture keystroke`.
#[test]
#[ignore = "a measurement; run it explicitly"]
fn keystroke_to_refreshed_table_on_the_demo_samples() {
    let Some(chromium) = chromium() else {
        return;
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("networks")).unwrap();
    std::fs::create_dir_all(dir.path().join("samples")).unwrap();
    std::fs::copy(
        root.join("integrations.d/networks/everflow.yaml"),
        dir.path().join("networks/everflow.yaml"),
    )
    .unwrap();
    for page in ["page1.json", "page2.json"] {
        std::fs::copy(
            root.join("demo/api/everflow").join(page),
            dir.path().join("samples").join(page),
        )
        .unwrap();
    }
    std::fs::copy(
        root.join("demo/integrations.d/demo-everflow.yaml"),
        dir.path().join("demo-everflow.yaml"),
    )
    .unwrap();
    let studio = Studio::start(dir.path(), "127.0.0.1:0", &[]);
    let mut b = Browser::start(&chromium);
    b.goto(&format!("{}edit?file=networks/everflow.yaml", studio.url));
    // The file's own tests name the repository's fixtures, absent here.
    b.wait(
        "document.querySelector('#sample option[value=\"samples/page1.json\"]')",
        "the samples are listed",
    );
    b.eval("(() => { const s = document.getElementById('sample'); s.value = 'samples/page1.json'; s.dispatchEvent(new Event('change')); })()");
    b.wait(
        "document.querySelector('#offers tbody tr') && document.querySelector('#sample').value === 'samples/page1.json'",
        "the demo sample maps",
    );
    let mut times = Vec::new();
    for i in 0..21 {
        let took = b.eval(&format!(
            r#"new Promise((done) => {{
                const results = document.getElementById('results');
                const t = document.getElementById('text');
                const start = performance.now();
                new MutationObserver((_, o) => {{ o.disconnect(); done(performance.now() - start); }})
                    .observe(results, {{ childList: true }});
                t.value = t.value + (t.value.endsWith('\n') ? '' : '\n') + '# {i}\n';
                t.dispatchEvent(new Event('input'));
            }})"#
        ));
        times.push(took.as_f64().unwrap());
    }
    times.sort_by(f64::total_cmp);
    eprintln!(
        "keystroke to refreshed table on the demo samples: median {:.0} ms, worst {:.0} ms over {} keystrokes (debounce 120 ms included)",
        times[times.len() / 2],
        times[times.len() - 1],
        times.len()
    );
}

/// "New network" from a URL: the studio reads one response (no redirect,
/// bounded), saves it as a sample and opens scaffold's proposal unsaved; a
/// metadata address or another scheme is refused with what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_network_starts_from_a_url() {
    let mock = MockNetwork::start(offers(1..=3), 10).await;
    let dir = tempfile::tempdir().unwrap();
    let studio = Studio::start(dir.path(), "127.0.0.1:0", &[]);
    let base = studio.base();
    let http = client();
    let new = |body: Value| {
        http.post(format!("{base}/api/new"))
            .header("x-studio", "1")
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let url = format!("{}/offers?page=1&page_size=10", mock.base_url());
    let r = new(json!({"name": "From URL", "url": url})).await.unwrap();
    assert_eq!(r.status(), 200);
    let made: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(made["file"], json!("networks/from-url.yaml"));
    let saved = std::fs::read_to_string(dir.path().join("samples/from-url.json")).unwrap();
    assert!(saved.contains("Offer 3"), "{saved}");
    assert!(!dir.path().join("networks/from-url.yaml").exists());
    let page = http
        .get(format!("{base}/edit?file=networks/from-url.yaml"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("records: &#39;$.offers[*]&#39;") || page.contains("records: '$.offers[*]'"),
        "{page}"
    );
    for (url, said) in [
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("file:///etc/passwd", "only http and https"),
    ] {
        let r = new(json!({"name": "bad", "url": url})).await.unwrap();
        assert_eq!(r.status(), 422, "{url}");
        let body = r.text().await.unwrap();
        assert!(body.contains(said), "{url}: {body}");
    }
}
