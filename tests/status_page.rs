//! The daemon's status page in a real headless browser (Debian's chromium):
//! what a person sees on each page, that text from a hostile network shows
//! as text and runs nothing, and a screenshot for CI to keep
//! (`$CARGO_TARGET_TMPDIR/status-page/*.png`).
//!
//! Chromium gets a resolver that knows only 127.0.0.1 and a proxy that goes
//! nowhere, so the browser sends nothing beyond loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::daemon::*;
use common::*;

fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("OFFERSYNC_CHROMIUM") {
        return path.into();
    }
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    panic!(
        "the status page tests need Chromium: `apt-get install chromium` (scripts/test installs it), or set OFFERSYNC_CHROMIUM"
    );
}

/// Runs headless Chromium on `url` with `extra` arguments; returns stdout.
fn browse(url: &str, extra: &[&str]) -> String {
    run_chromium(url, extra).0
}

/// Like [`browse`], returning what Chromium said on stderr.
fn browse_stderr(url: &str, extra: &[&str]) -> String {
    run_chromium(url, extra).1
}

fn run_chromium(url: &str, extra: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium())
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
            "--virtual-time-budget=2000",
            // Screenshots of the whole frame, not of the tiles painted so far.
            "--run-all-compositor-stages-before-draw",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed on {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The DOM as Chromium built it. The page serves no script at all (checked
/// on the raw HTML below), so this is also the page without JavaScript.
fn dom(url: &str) -> String {
    browse(url, &["--dump-dom"])
}

/// The text a person reads: the DOM without its tags (inline ones join
/// their text, others separate it) and without the charts' SVG (their
/// tooltips show only on hover), whitespace folded.
fn visible_text(dom: &str) -> String {
    let mut body = dom.split_once("<body").map_or(dom, |(_, b)| b).to_string();
    while let Some(start) = body.find("<svg") {
        let end = body[start..]
            .find("</svg>")
            .map_or(body.len(), |e| start + e + 6);
        body.replace_range(start..end, " ");
    }
    const INLINE: [&str; 7] = ["a", "span", "code", "time", "q", "b", "strong"];
    let mut text = String::new();
    let mut tag: Option<String> = None;
    for c in body.chars() {
        match (&mut tag, c) {
            (None, '<') => tag = Some(String::new()),
            (Some(name), '>') => {
                let name = name.trim_start_matches('/');
                let name = name.split_whitespace().next().unwrap_or_default();
                if !INLINE.contains(&name) {
                    text.push(' ');
                }
                tag = None;
            }
            (Some(name), c) => name.push(c),
            (None, c) => text.push(c),
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is a PNG",
        path.display()
    );
    let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap());
    (be(16), be(20))
}

/// A PNG's pixels as RGB rows (8-bit RGB or RGBA, not interlaced, as
/// Chromium writes its screenshots): width, height, and `rgb(x, y)`.
struct Pixels {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<u8>,
}

impl Pixels {
    fn read(path: &Path) -> Self {
        use std::io::Read;
        let bytes = std::fs::read(path).unwrap();
        let (mut at, mut idat) = (8, Vec::new());
        let (mut width, mut height, mut channels) = (0, 0, 0);
        while at + 8 <= bytes.len() {
            let len = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            let kind = &bytes[at + 4..at + 8];
            let data = &bytes[at + 8..at + 8 + len];
            match kind {
                b"IHDR" => {
                    width = u32::from_be_bytes(data[0..4].try_into().unwrap()) as usize;
                    height = u32::from_be_bytes(data[4..8].try_into().unwrap()) as usize;
                    assert_eq!((data[8], data[12]), (8, 0), "8-bit, not interlaced");
                    channels = match data[9] {
                        2 => 3,
                        6 => 4,
                        other => panic!("PNG colour type {other}"),
                    };
                }
                b"IDAT" => idat.extend_from_slice(data),
                _ => {}
            }
            at += 12 + len;
        }
        let mut raw = Vec::new();
        flate2::read::ZlibDecoder::new(&idat[..])
            .read_to_end(&mut raw)
            .unwrap();
        // Undo each row's filter (PNG spec, section 9).
        let stride = width * channels;
        let mut data = vec![0u8; stride * height];
        for y in 0..height {
            let filter = raw[y * (stride + 1)];
            let row = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
            for x in 0..stride {
                let a = if x >= channels {
                    data[y * stride + x - channels]
                } else {
                    0
                };
                let b = if y > 0 { data[(y - 1) * stride + x] } else { 0 };
                let c = if x >= channels && y > 0 {
                    data[(y - 1) * stride + x - channels]
                } else {
                    0
                };
                let predicted = match filter {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                    4 => {
                        let p = i16::from(a) + i16::from(b) - i16::from(c);
                        let (pa, pb, pc) = (
                            (p - i16::from(a)).abs(),
                            (p - i16::from(b)).abs(),
                            (p - i16::from(c)).abs(),
                        );
                        if pa <= pb && pa <= pc {
                            a
                        } else if pb <= pc {
                            b
                        } else {
                            c
                        }
                    }
                    other => panic!("PNG filter {other}"),
                };
                data[y * stride + x] = row[x].wrapping_add(predicted);
            }
        }
        Self {
            width,
            height,
            channels,
            data,
        }
    }

    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        let at = (y * self.width + x) * self.channels;
        [self.data[at], self.data[at + 1], self.data[at + 2]]
    }
}

/// Issue 27.13: at 1400 px, nothing of the page goes past its right margin
/// (a table wider than the window would run to its edge): a screenshot's
/// last 16 columns of pixels, below the header, are the page's background.
fn assert_fits_1400(base: &str, path: &str, shots: &Path, name: &str) {
    let file = shots.join(format!("{name}.png"));
    let _ = std::fs::remove_file(&file);
    let said = browse_stderr(
        &format!("{base}{path}"),
        &[
            &format!("--screenshot={}", file.display()),
            "--window-size=1400,900",
            "--hide-scrollbars",
        ],
    );
    assert!(file.exists(), "no screenshot {}: {said}", file.display());
    assert_eq!(png_size(&file), (1400, 900));
    let pixels = Pixels::read(&file);
    // The page's background (style.css: --bg).
    const BACKGROUND: [u8; 3] = [0xf6, 0xf8, 0xfb];
    for y in 60..pixels.height {
        for x in pixels.width - 16..pixels.width {
            assert_eq!(
                pixels.rgb(x, y),
                BACKGROUND,
                "{path} overflows at 1400 px: pixel ({x}, {y}) of {} is not the background",
                file.display()
            );
        }
    }
    eprintln!("screenshot: {}", file.display());
}

const HOSTILE_NAME: &str =
    "<script>document.title='pwned'</script>Casino \"><img src=x onerror=alert(1)>";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_integrations_runs_skips_and_campaigns_safely() {
    let mut feed = offers(1..=12);
    feed[1]["name"] = HOSTILE_NAME.into();
    let mock = MockNetwork::start(feed, 5).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), "  filters: {payout: {max: 5}}\n"),
    );
    let db = TestDb::new(Backend::Sqlite);
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    let base = format!("http://{addr}");
    let runs = || {
        offersync::store::open(&db.url)
            .unwrap()
            .recent_runs("acme", 10)
            .unwrap()
    };
    eventually(&daemon, "the first run succeeds", || {
        runs()
            .first()
            .is_some_and(|r| r.status == "succeeded")
            .then_some(())
    })
    .await;
    // A failed run for the chart and the overview's error column.
    mock.fail(
        0,
        Failure::Status {
            status: 500,
            times: 100,
        },
    );
    let refresh = || {
        Command::new(binary())
            .args(["refresh", "acme", "--wait", "60"])
            .env("DATABASE_URL", &db.url)
            .output()
            .unwrap()
    };
    assert_eq!(refresh().status.code(), Some(1), "{}", daemon.log());
    mock.clear_failures();

    // The overview: the integration, its state and schedule, the last run's
    // result, its error, and the campaign counts.
    // Issue 27.2: health (enabled) apart from the sync state (failing,
    // since when, how many in a row), the error's kind and what to check.
    let overview = dom(&format!("{base}/"));
    let text = visible_text(&overview);
    for expected in [
        "Integrations",
        "1 integrations (1 enabled, 0 disabled, 0 deleted) · 1 scheduled by this daemon · 1 failing",
        "acme mocknet enabled failing since",
        "· 1 failed run",
        "0 0 29 2 * (UTC) next in",
        "failed #2",
        "3 / 3 active / all",
        "network's server",
        "HTTP 500",
        "→ the network's API is failing (HTTP 5xx or 429)",
        // Issue 27.3: not a git work tree: the spec's hash, shortened.
        "spec hash (not in git)",
        "page 1 of 1 · 1 integrations",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }
    assert!(overview.contains(r#"href="/integrations/acme""#));

    // The integration: charts of both runs, the skip reasons, the runs.
    let page = dom(&format!("{base}/integrations/acme"));
    let text = visible_text(&page);
    assert_eq!(
        page.matches("<figure class=\"chart\">").count(),
        6,
        "{page}"
    );
    assert_eq!(page.matches("<rect class=\"failed\"").count(), 6, "{page}");
    for expected in [
        "Health enabled",
        "Sync failing since",
        "Last error network's server",
        "→ the network's API is failing",
        "Why offers were skipped (run #1)",
        "payout_above_max 9 100%",
        "#1 succeeded manifest",
        "#2 failed refresh",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }

    // A run: its counts and every skipped offer with the reason.
    let page = dom(&format!("{base}/runs/1"));
    let text = visible_text(&page);
    for expected in [
        "Run #1 of acme succeeded",
        "12 fetched",
        "3 created",
        "9 skipped",
        "page 1 of 1 · 9 offers",
        "12 payout_above_max payout 13.50 > max 5.00",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }

    // Issue 27.1: the run's page names what it changed: each campaign
    // (linked), the column, old → new; a run that created lists them.
    let page = visible_text(&dom(&format!("{base}/runs/1")));
    assert!(
        page.contains("Changes Campaign Change Columns: old → new"),
        "{page}"
    );
    assert!(
        page.contains("1 created new campaign, status active"),
        "{page}"
    );
    assert!(page.contains("page 1 of 1 · 3 changes"), "{page}");
    let mut renamed = offers(1..=12);
    renamed[1]["name"] = HOSTILE_NAME.into();
    renamed[2]["name"] = "Offer 3 - FitTrack Pro - iOS - US - CPA".into();
    mock.set_offers(renamed);
    assert_eq!(refresh().status.code(), Some(0), "{}", daemon.log());
    let run = runs()[0].clone();
    assert_eq!(
        (run.status.as_str(), run.updated),
        ("succeeded", 1),
        "{run:?}"
    );
    let html = dom(&format!("{base}/runs/{}", run.id));
    let page = visible_text(&html);
    for expected in [
        "1 updated",
        "Changes",
        "3 updated upstream changed name Offer 3 → Offer 3 - FitTrack Pro - iOS - US - CPA",
        "page 1 of 1 · 1 changes",
    ] {
        assert!(page.contains(expected), "{expected:?} not in: {page}");
    }
    assert!(
        html.contains(r#"href="/campaigns?q=3&amp;integration=acme""#),
        "{html}"
    );
    // Back in sync: the sync state says so, and no error is shown.
    let text = visible_text(&dom(&format!("{base}/")));
    assert!(text.contains("acme mocknet enabled in sync"), "{text}");
    assert!(text.contains("none failing"), "{text}");

    // Issue 27.13: an integration's campaigns, listed without a search
    // term, a page at a time.
    let page = visible_text(&dom(&format!("{base}/campaigns?integration=acme")));
    for expected in [
        "Integrations / acme / campaigns",
        "Campaigns of acme",
        "acme 1 Offer 1 active",
        "page 1 of 1 · 3 campaigns",
        // Caps in words, not JSON.
        "100 conversions a day",
    ] {
        assert!(page.contains(expected), "{expected:?} not in: {page}");
    }

    // The hostile name, found by search, is text; with scripts allowed,
    // nothing of it runs (the title is the page's own).
    let search = format!("{base}/campaigns?q=casino");
    let page = dom(&search);
    let text = visible_text(&page);
    assert!(text.contains(HOSTILE_NAME), "{text}");
    assert!(text.contains("1 matches"), "{text}");
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<img src=\"x\""), "{page}");
    assert!(
        page.contains("<title>Campaigns · offersync</title>"),
        "{page}"
    );
    assert!(!page.contains("pwned</title>"), "{page}");
    // The raw HTML: no script of its own, tables and charts in the markup,
    // and a policy under which no script could run: every page above was
    // rendered without JavaScript.
    for path in ["/", "/integrations/acme", "/runs/1", "/campaigns?q=casino"] {
        let (head, body) = http_get_with_headers(&addr, path);
        assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
        assert!(!body.contains("<script"), "{path}: {body}");
        assert!(body.contains("<table"), "{path}: {body}");
        let policy = head
            .lines()
            .find_map(|l| l.strip_prefix("content-security-policy: "))
            .unwrap_or_else(|| panic!("{path}: no policy in {head}"));
        assert!(policy.starts_with("default-src 'none';"), "{policy}");
        assert!(!policy.contains("script-src"), "{policy}");
    }
    let by_id = visible_text(&dom(&format!("{base}/campaigns?q=3&integration=acme")));
    assert!(
        by_id.contains("acme 3 Offer 3 - FitTrack Pro - iOS - US - CPA active"),
        "{by_id}"
    );

    // Unknown things are a page that says so.
    let missing = visible_text(&dom(&format!("{base}/runs/999")));
    assert!(missing.contains("No run 999 in the store."), "{missing}");

    // Screenshots for CI to keep (and for docs/status-page.md), each page
    // within 1400 px.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&shots).unwrap();
    let last_run = runs()[0].id;
    for (name, path) in [
        ("overview", "/".to_string()),
        ("integration", "/integrations/acme".to_string()),
        ("run", format!("/runs/{last_run}")),
        ("run-skips", "/runs/1".to_string()),
        ("campaigns", "/campaigns?integration=acme".to_string()),
    ] {
        assert_fits_1400(&base, &path, &shots, name);
    }
    assert!(daemon.stop().await.success());
}

/// Issue 27.5: with the store down, the page was a bare error. Now every
/// page keeps its navigation, and the overview and an integration's page
/// show what the daemon knows from memory (its schedule, and the store's
/// last answer with its age).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_store_down_the_page_keeps_its_navigation_and_shows_what_the_daemon_knows() {
    let mock = MockNetwork::start(offers(1..=3), 5).await;
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    let mut db = TestDb::postgres();
    let direct = db.url.clone();
    let mut proxy = common::pg_proxy::PgProxy::start().await;
    db.url = proxy.url(&db.url);
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    let base = format!("http://{addr}");
    eventually(&daemon, "the first run succeeds", || {
        offersync::store::open(&direct)
            .unwrap()
            .recent_runs("acme", 1)
            .unwrap()
            .first()
            .is_some_and(|r| r.status == "succeeded")
            .then_some(())
    })
    .await;
    let text = visible_text(&dom(&format!("{base}/")));
    assert!(text.contains("3 / 3 active / all"), "{text}");
    assert!(!text.contains("cannot be read"), "{text}");

    proxy.stop().await;
    eventually(&daemon, "the page finds the store down", || {
        http_get(&addr, "/").0.contains("503").then_some(())
    })
    .await;
    let overview = dom(&format!("{base}/"));
    let text = visible_text(&overview);
    for expected in [
        // The navigation.
        "offersync Integrations Search",
        "The store cannot be read. Shown from this daemon's memory: its schedule now, and the store's last answer, from",
        "/readyz says what fails.",
        "refused",
        // The schedule, from the scheduler; the counts, from the last answer.
        "acme mocknet enabled in sync",
        "0 0 29 2 * (UTC) next in",
        "succeeded #1",
        "3 / 3 active / all",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }
    assert!(overview.contains(r#"action="/campaigns""#), "{overview}");

    let text = visible_text(&dom(&format!("{base}/integrations/acme")));
    for expected in [
        "Integrations / acme",
        "The store cannot be read.",
        "Manifest",
        "integration.yaml",
        "Schedule 0 0 29 2 * (UTC) · next run in",
        "Campaigns 3 active of 3",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }
    // What only the store holds: the page says so, navigation and all.
    for (path, what) in [
        (
            "/runs/1",
            "This page shows run #1, read from the store, which does not answer:",
        ),
        (
            "/campaigns?q=offer",
            "This page shows the campaigns, read from the store",
        ),
    ] {
        let (status, _) = http_get(&addr, path);
        assert!(status.contains("503"), "{path}: {status}");
        let text = visible_text(&dom(&format!("{base}{path}")));
        assert!(text.contains("offersync Integrations Search"), "{text}");
        assert!(text.contains(what), "{what:?} not in: {text}");
    }

    proxy.resume().await;
    eventually(&daemon, "the page reads the store again", || {
        http_get(&addr, "/").0.contains("200").then_some(())
    })
    .await;
    assert!(daemon.stop().await.success());
}

/// Runs git in `dir` as an operator would commit manifests.
fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=Ops",
            "-c",
            "user.email=ops@example.invalid",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `offersync status` against the test's store.
fn status_text(db: &TestDb) -> String {
    let out = Command::new(binary())
        .arg("status")
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// Issue 27.2, 27.3 and 27.4, and issue 29's overview: every integration is
/// listed (disabled and deleted ones too), a page of 100 at a time; each
/// with its health apart from its sync state (in sync; never succeeded,
/// since when, how many runs), its last error's kind with what to check,
/// and the git commit its applied spec came from; a deleted manifest's
/// integration is not failing. `offersync status` says the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_integration_is_listed_with_health_sync_state_and_revision_a_page_at_a_time() {
    let mock = MockNetwork::start(offers(1..=3), 5).await;
    let refusing = MockNetwork::start(offers(1..=3), 5).await;
    refusing.fail(
        0,
        Failure::Status {
            status: 401,
            times: 1_000,
        },
    );
    let m = Manifests::new(
        &network_yaml(PAGE_PAGINATION, HEADER_AUTH),
        &integration_yaml("acme", &mock.base_url(), ""),
    );
    m.set_other_integration(&integration_yaml("globex", &refusing.base_url(), ""));
    // A host name no resolver knows: a 64-character label is refused by
    // the C library before any query leaves the machine.
    let nowhere = format!("http://{}.invalid:9", "a".repeat(64));
    std::fs::write(
        m.path().join("initech.yaml"),
        integration_yaml("initech", &nowhere, ""),
    )
    .unwrap();
    git(m.path(), &["init", "-q"]);
    git(m.path(), &["add", "-A"]);
    git(
        m.path(),
        &["commit", "-q", "-m", "Add acme, globex and initech"],
    );
    let db = TestDb::postgres();
    let (daemon, addr) = Daemon::serving(m.path(), &db).await;
    let base = format!("http://{addr}");
    eventually(&daemon, "the three have run", || {
        let status = offersync::store::open(&db.url).unwrap().status().unwrap();
        (status.len() == 3
            && status
                .iter()
                .all(|s| s.last_run.as_ref().is_some_and(|r| r.finished_at.is_some())))
        .then_some(())
    })
    .await;
    // 120 more in the store, registered from elsewhere: some disabled,
    // some deleted, one deleted after failing runs.
    for i in 0..120 {
        let state = match i {
            _ if i % 7 == 0 => "deleted",
            _ if i % 10 == 0 => "disabled",
            _ => "active",
        };
        db.execute(&format!(
            "INSERT INTO integrations (name, network, spec, spec_hash, source_file, state) \
             VALUES ('zz-bulk-{i:03}', 'mocknet', 'spec', '{:064}', '/elsewhere/zz.yaml', '{state}')",
            i
        ));
    }
    db.execute(
        "INSERT INTO sync_runs (integration_id, trigger, spec_hash, started_at, finished_at, status, error) \
         SELECT id, 'schedule', spec_hash, now(), now(), 'failed', 'https://x.example/: HTTP 503 Service Unavailable' \
         FROM integrations WHERE name = 'zz-bulk-007'",
    );

    let html = dom(&format!("{base}/"));
    let text = visible_text(&html);
    for expected in [
        "123 integrations (95 enabled, 10 disabled, 18 deleted) · 3 scheduled by this daemon · 2 failing",
        "acme mocknet enabled in sync",
        "globex mocknet enabled never succeeded since",
        "credentials",
        "HTTP 401",
        "→ the network refuses the credentials",
        "initech mocknet enabled never succeeded",
        "cannot resolve the host name",
        "→ the API's host name does not resolve",
        "zz-bulk-007 mocknet deleted not synced: its manifest was deleted",
        "zz-bulk-010 mocknet disabled not scheduled here never run",
        "page 1 of 2 · 123 integrations next →",
    ] {
        assert!(text.contains(expected), "{expected:?} not in: {text}");
    }
    assert!(text.contains("Add acme, globex and initech"), "{text}");
    // The deleted one's error is not shown as a current failure.
    assert!(!text.contains("x.example"), "{text}");
    assert_eq!(html.matches("href=\"/integrations/").count(), 100, "{html}");
    // Long errors (a 64-letter host name) wrap: the table stays in 1400 px.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&shots).unwrap();
    assert_fits_1400(&base, "/", &shots, "overview-failing");
    assert_fits_1400(
        &base,
        "/integrations/initech",
        &shots,
        "integration-failing",
    );
    let second = visible_text(&dom(&format!("{base}/?page=2")));
    assert!(
        second.contains("← previous page 2 of 2 · 123 integrations"),
        "{second}"
    );
    assert!(
        second.contains("zz-bulk-119") && !second.contains("zz-bulk-096"),
        "{second}"
    );
    // An integration's page: the same, and the commit.
    let page = visible_text(&dom(&format!("{base}/integrations/globex")));
    for expected in [
        "Health enabled",
        "Sync never succeeded since",
        "Last error credentials",
        "→ the network refuses the credentials",
        "Add acme, globex and initech",
    ] {
        assert!(page.contains(expected), "{expected:?} not in: {page}");
    }

    // A credentials error waits for a person; a name that does not
    // resolve is retried later, never at once like a 503.
    let log = daemon.log();
    assert!(
        log.contains("not retried before the next tick") && log.contains("kind=\"credentials\""),
        "{log}"
    );
    let dns_retry = log
        .lines()
        .find(|l| l.contains("will retry") && l.contains("kind=\"DNS\""))
        .unwrap_or_else(|| panic!("no retry of the DNS failure: {log}"));
    let wait: i64 = dns_retry
        .split("retry_in_seconds=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((290..=300).contains(&wait), "{dns_retry}");
    assert!(dns_retry.contains("cause="), "{dns_retry}");
    assert!(
        !log.lines()
            .any(|l| l.contains("retrying") && l.contains(".invalid")),
        "a DNS failure is not retried within the run: {log}"
    );

    // `offersync status`: every integration, in the same words.
    let status = status_text(&db);
    for expected in [
        "acme (mocknet): enabled · in sync · 3 campaigns, 3 active",
        "globex (mocknet): enabled · never succeeded (1 failed run since",
        "  last error (credentials): ",
        "    hint: the network refuses the credentials",
        "  last error (DNS): ",
        "zz-bulk-007 (mocknet): deleted · not synced (its manifest was deleted)",
        "zz-bulk-010 (mocknet): disabled · never run",
        "  revision: spec 000000000000",
    ] {
        assert!(status.contains(expected), "{expected:?} not in: {status}");
    }
    assert_eq!(
        status.lines().filter(|l| !l.starts_with(' ')).count(),
        123,
        "{status}"
    );
    let acme_revision = status
        .lines()
        .skip_while(|l| !l.starts_with("acme "))
        .nth(1)
        .unwrap();
    assert!(
        acme_revision.starts_with("  revision: ")
            && acme_revision.contains(" \"Add acme, globex and initech\" ("),
        "{status}"
    );

    // An edit applied before it is committed is said so; once committed,
    // its commit is the revision.
    m.set_integration(&integration_yaml(
        "acme",
        &mock.base_url(),
        "  filters: {payout: {max: 3}}\n",
    ));
    eventually(&daemon, "the edit runs", || {
        offersync::store::open(&db.url)
            .unwrap()
            .recent_runs("acme", 1)
            .unwrap()
            .first()
            .is_some_and(|r| r.id > 1 && r.finished_at.is_some() && r.skipped == 2)
            .then_some(())
    })
    .await;
    let page = visible_text(&dom(&format!("{base}/integrations/acme")));
    assert!(
        page.contains("uncommitted: in no commit of its file"),
        "{page}"
    );
    git(m.path(), &["commit", "-q", "-am", "acme: payout at most 3"]);
    let status = status_text(&db);
    assert!(status.contains(" \"acme: payout at most 3\" ("), "{status}");
    assert!(daemon.stop().await.success());
}
