//! The status page's HTML, from data already read: pure functions, no I/O.
//! maud escapes every interpolated value, so text from a network (offer
//! names, skip details, API error messages) can only ever show as text.
//! Charts are inline SVG drawn here, so that nothing needs a script.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::{Board, LiveState};
use crate::diagnosis::{self, ErrorKind, SyncState};
use crate::provenance::Revision;
use crate::store::{
    CampaignRecord, ChangeRecord, IntegrationHealth, IntegrationStatus, RunRecord, SkipRecord,
};

/// What every page shows around its content.
pub struct Context<'a> {
    identity: &'a str,
    started_at: DateTime<Utc>,
    now: DateTime<Utc>,
    /// Reload every this many seconds (10 at least).
    refresh: Option<u32>,
}

impl<'a> Context<'a> {
    pub fn new(board: &'a Board, refresh: Option<u32>) -> Self {
        Self {
            identity: &board.identity,
            started_at: board.started_at,
            now: Utc::now(),
            refresh: refresh.filter(|s| *s > 0).map(|s| s.max(10)),
        }
    }
}

fn layout(ctx: &Context<'_>, title: &str, content: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(seconds) = ctx.refresh {
                    meta http-equiv="refresh" content=(seconds);
                }
                title { (title) " · offersync" }
                link rel="stylesheet" href="/assets/style.css";
            }
            body {
                header.top {
                    a.brand href="/" { "offersync" }
                    nav {
                        a href="/" { "Integrations" }
                        form.search method="get" action="/campaigns" role="search" {
                            input type="search" name="q" placeholder="Campaign id or name" aria-label="Search campaigns";
                            button type="submit" { "Search" }
                        }
                    }
                    span.whoami title=(format!("up since {}", utc(ctx.started_at))) {
                        "daemon " (ctx.identity)
                    }
                }
                main { (content) }
                footer {
                    "Read-only. To run an integration now: "
                    code { "offersync refresh NAME" }
                    ". Times are UTC. "
                    @match ctx.refresh {
                        Some(seconds) => { "Reloading every " (seconds) " s · " a href="?" { "stop" } }
                        None => { a href="?refresh=30" { "Reload every 30 s" } }
                    }
                }
            }
        }
    }
    .into_string()
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// "3 min ago", "in 12 min": a time as people read it on a status page.
fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (t - now).num_seconds();
    let span = match seconds.unsigned_abs() {
        0..=9 => return "now".into(),
        s @ 10..=59 => format!("{s} s"),
        s @ 60..=3_599 => format!("{} min", s / 60),
        s @ 3_600..=172_799 => format!("{} h", s / 3_600),
        s => format!("{} days", s / 86_400),
    };
    if seconds < 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// A time shown relative, with the exact time on hover.
fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(utc(t)) { (relative(t, now)) } }
}

fn duration(run: &RunRecord) -> Option<String> {
    let ms = (run.finished_at? - run.started_at)
        .num_milliseconds()
        .max(0);
    Some(match ms {
        0..60_000 => format!("{:.1}\u{a0}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m\u{a0}{:02}s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{}h\u{a0}{:02}m", ms / 3_600_000, ms % 3_600_000 / 60_000),
    })
}

fn badge(text: &str, kind: &str) -> Markup {
    html! { span class=(format!("badge {kind}")) { (text) } }
}

fn run_badge(run: &RunRecord) -> Markup {
    let kind = match run.status.as_str() {
        "succeeded" => "ok",
        "failed" => "bad",
        _ => "busy",
    };
    badge(&run.status, kind)
}

/// An integration's health (apart from its sync state): enabled,
/// disabled or deleted, and a manifest that does not validate; then
/// whether this daemon schedules it.
fn health_badges(status: Option<&IntegrationStatus>, live: Option<&LiveState>) -> Markup {
    let stored = status.map(|s| {
        let kind = match s.state.as_str() {
            "active" => "ok",
            "disabled" => "muted",
            "deleted" => "muted",
            _ => "bad",
        };
        (diagnosis::health(&s.state), kind)
    });
    html! {
        @if let Some((health, kind)) = stored { (badge(health, kind)) }
        @if let Some(live) = live {
            @if live.manifest_broken { " " (badge("manifest invalid", "bad")) }
        } @else if stored.is_some_and(|(health, _)| health != "deleted") {
            " " (badge("not scheduled here", "muted"))
        }
    }
}

/// Where an integration's runs stand: in sync, failing since when and how
/// many times in a row, never succeeded; running now and the next retry.
fn sync_state(
    ctx: &Context<'_>,
    status: Option<&IntegrationStatus>,
    live: Option<&LiveState>,
) -> Markup {
    let state = status.map(|s| (s, SyncState::of(s)));
    let relative = |t| relative(t, ctx.now);
    html! {
        @if let Some((s, state)) = &state {
            @if s.state == "deleted" {
                span.muted-text { "not synced: its manifest was deleted" }
            } @else {
                @match state {
                    SyncState::InSync => { (badge("in sync", "ok")) }
                    SyncState::NeverRun => { (badge("never run", "muted")) }
                    SyncState::Failing { since, in_a_row, ever_succeeded } => {
                        (badge(if *ever_succeeded { "failing" } else { "never succeeded" }, "bad"))
                        div.sub.bad-text {
                            "since " (relative(*since)) " · "
                            @if *in_a_row == 1 { "1 failed run" } @else { (in_a_row) " failed runs in a row" }
                        }
                    }
                }
            }
        }
        @if let Some(live) = live {
            @if live.running { " " (badge("running", "busy")) }
            @if let Some(at) = live.retry {
                div.sub { "retry " (when(at, ctx.now)) }
            }
        }
    }
}

/// The last error with its kind and what to check.
fn error_detail(error: &str, max: usize) -> Markup {
    let kind = ErrorKind::of(error);
    html! {
        @if kind != ErrorKind::Other { (badge(kind.label(), "bad")) " " }
        span.error-text title=(error) { (truncated(error, max)) }
        @if let Some(hint) = kind.hint() { div.hint { "→ " (hint) } }
    }
}

/// The store cannot be read: the page shows what the daemon holds in memory.
pub struct Outage<'a> {
    pub error: &'a str,
    /// When the store's list of integrations shown was read, if it ever was.
    pub as_of: Option<DateTime<Utc>>,
}

fn outage_banner(ctx: &Context<'_>, outage: &Outage<'_>) -> Markup {
    html! {
        div.outage role="alert" {
            strong { "The store cannot be read." }
            " Shown from this daemon's memory: its schedule now"
            @match outage.as_of {
                Some(at) => { ", and the store's last answer, from " (when(at, ctx.now)) " (" (utc(at)) ")." }
                None => { "; the store has not been read by this page since the daemon started." }
            }
            " The daemon keeps running and retries; " code { "/readyz" } " says what fails."
            pre.error { (outage.error) }
        }
    }
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// At most `max` characters, cut after a whole word (never `HTTP 40…`).
fn truncated(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max).collect();
    // Back to the last space, unless that drops most of it (one long word).
    let kept = match cut.rfind(char::is_whitespace) {
        Some(at) if at >= cut.len() / 2 => cut[..at].trim_end(),
        _ => cut.as_str(),
    };
    format!("{kept}…")
}

/// What the overview shows: every integration's health (for its summary)
/// and a page of them in full.
pub struct OverviewPage<'a> {
    pub health: &'a [IntegrationHealth],
    /// The page's names: the store's integrations and this daemon's.
    pub names: &'a [String],
    /// The status of those the store holds.
    pub status: &'a [IntegrationStatus],
    /// Where their applied specs came from.
    pub revisions: &'a BTreeMap<String, Revision>,
    pub paging: Paging,
}

/// `/`: every integration, a page at a time: its health, sync state,
/// schedule, last run, campaigns, revision and last error; the ones the
/// store holds (deleted ones too) and the ones this daemon schedules. With
/// `outage`, what the store answered last (or nothing).
pub fn overview(
    ctx: &Context<'_>,
    view: &OverviewPage<'_>,
    live: &BTreeMap<String, LiveState>,
    outage: Option<&Outage<'_>>,
) -> String {
    let stored: BTreeMap<&str, &IntegrationStatus> =
        view.status.iter().map(|i| (i.name.as_str(), i)).collect();
    let count = |state: &str| view.health.iter().filter(|h| h.state == state).count();
    let failing = view
        .health
        .iter()
        .filter(|h| diagnosis::counts_as_failing(&h.state, h.failures_in_a_row))
        .count();
    let content = html! {
        h1 { "Integrations" }
        @if let Some(outage) = outage { (outage_banner(ctx, outage)) }
        p.summary {
            (view.paging.total) " integrations"
            @if !view.health.is_empty() {
                " (" (count("active")) " enabled, " (count("disabled")) " disabled, " (count("deleted")) " deleted)"
            }
            " · " (live.len()) " scheduled by this daemon · "
            @if failing > 0 { span.bad-text { (failing) " failing" } } @else { "none failing" }
        }
        @if view.names.is_empty() {
            p.empty { "No integration in the store yet: add a manifest to the directory the daemon watches." }
        } @else {
            table.grid.overview {
                thead { tr {
                    th.name { "Integration" } th { "Health" } th { "Sync" } th { "Schedule" }
                    th { "Last run" } th.num { "Campaigns" } th { "Revision" } th.wide { "Last error" }
                } }
                tbody {
                    @for name in view.names {
                        @let i = stored.get(name.as_str()).copied();
                        @let l = live.get(name);
                        tr {
                            td.name {
                                a href=(format!("/integrations/{name}")) { (name) }
                                @if let Some(i) = i { div.sub { (i.network) } }
                            }
                            td {
                                (health_badges(i, l))
                                @if i.is_none() {
                                    @if outage.is_some() { div.sub { "not in the store's last answer" } }
                                    @else { div.sub { "not in the store yet" } }
                                }
                            }
                            td { (sync_state(ctx, i, l)) }
                            td {
                                @if let Some(l) = l {
                                    code { (l.schedule) }
                                    @if let Some(next) = l.next_run {
                                        div.sub { "next " (when(next, ctx.now)) }
                                    }
                                } @else { "—" }
                            }
                            td {
                                @if let Some(r) = i.and_then(|i| i.last_run.as_ref()) {
                                    (run_badge(r)) " "
                                    a href=(format!("/runs/{}", r.id)) { "#" (r.id) }
                                    " " span.sub { (when(r.started_at, ctx.now)) @if let Some(d) = duration(r) { " · " (d) } }
                                    div.sub {
                                        (r.fetched) " fetched · " (r.created) " created · " (r.updated) " updated · "
                                        (r.skipped) " skipped · " (r.removed) " removed"
                                    }
                                } @else if i.is_some() {
                                    span.muted-text { "never run" }
                                } @else { "—" }
                            }
                            @if let Some(i) = i {
                                td.num { (i.active_campaigns) " / " (i.campaigns) div.sub { "active / all" } }
                                td.revision { (spec_cell(i, view.revisions.get(name))) }
                                td.error {
                                    @if let Some(e) = i.last_error.as_deref().filter(|_| i.state != "deleted") {
                                        (error_detail(e, 300))
                                    }
                                }
                            } @else {
                                td.num { "—" } td { "—" } td.error {}
                            }
                        }
                    }
                }
            }
            (pager("Pages of integrations", view.paging, "integrations", |n| format!("/?page={n}")))
        }
    };
    layout(ctx, "Integrations", content)
}

/// Which revision runs (the commit its applied spec came from, or its
/// hash), and the spec that did not validate when there is one.
fn spec_cell(i: &IntegrationStatus, revision: Option<&Revision>) -> Markup {
    html! {
        @match revision {
            Some(Revision::Commit { short_sha, subject, time }) => {
                code title=(format!("commit {short_sha}, spec {}", i.spec_hash)) { (short_sha) }
                " " span.subject { (truncated(subject, 60)) }
                div.sub { (utc(*time)) }
            }
            Some(Revision::Uncommitted { hash }) => {
                code title=(hash) { (short(hash)) }
                div.sub.warn-text { "uncommitted: in no commit of its file" }
            }
            _ => { code title=(i.spec_hash) { (short(&i.spec_hash)) } div.sub { "spec hash (not in git)" } }
        }
        @if let Some(attempted) = i.attempted_spec_hash.as_deref().filter(|a| *a != i.spec_hash) {
            div.sub.bad-text title=(attempted) { "attempted " (short(attempted)) " (invalid)" }
        }
    }
}

/// A small bar chart of one count over recent runs (oldest left): a value
/// axis (0, half and the largest), a time axis (the first and last runs'
/// start); each bar links to its run and names it on hover; failed runs
/// are marked.
fn chart(
    label: &str,
    runs: &[&RunRecord],
    value: impl Fn(&RunRecord) -> f64,
    unit: &str,
) -> Markup {
    const WIDTH: f64 = 320.0;
    const HEIGHT: f64 = 96.0;
    // The plot inside its axes' labels.
    const LEFT: f64 = 40.0;
    const TOP: f64 = 6.0;
    const BOTTOM: f64 = 76.0;
    let plot_width = WIDTH - LEFT - 4.0;
    let plot_height = BOTTOM - TOP;
    let max = runs.iter().map(|r| value(r)).fold(0.0_f64, f64::max);
    // Room for at least 30 runs, newest at the right: a few runs are
    // narrow bars, not blocks.
    let slot = plot_width / runs.len().max(30) as f64;
    let left = LEFT + plot_width - slot * runs.len() as f64;
    let shown = |v: f64| {
        if unit == "s" {
            format!("{v:.1} s")
        } else {
            format!("{v:.0}")
        }
    };
    let y_of = |v: f64| {
        if max > 0.0 {
            BOTTOM - v / max * plot_height
        } else {
            BOTTOM
        }
    };
    let stamp = |t: DateTime<Utc>| t.format("%m-%d %H:%M").to_string();
    html! {
        figure.chart {
            figcaption { (label) span.sub { " · last " (runs.len()) " runs" } }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) role="img" aria-label=(format!("{label} per run")) {
                // The value axis: 0, the largest and a value between.
                @for v in value_ticks(max, unit) {
                    line.grid x1=(LEFT) y1=(format!("{:.1}", y_of(v))) x2=(WIDTH - 4.0) y2=(format!("{:.1}", y_of(v))) {}
                    text x=(LEFT - 4.0) y=(format!("{:.1}", y_of(v) + 3.0)) text-anchor="end" { (shown(v)) }
                }
                line.axis x1=(LEFT) y1=(BOTTOM + 0.5) x2=(WIDTH - 4.0) y2=(BOTTOM + 0.5) {}
                line.axis x1=(LEFT - 0.5) y1=(TOP) x2=(LEFT - 0.5) y2=(BOTTOM) {}
                // The time axis: when the first and the last run shown
                // started, under their bars; as one range at the right
                // when the bars are too close for two labels.
                @if let (Some(first), Some(last)) = (runs.first(), runs.last()) {
                    @if runs.len() == 1 {
                        text x=(WIDTH - 4.0) y=(BOTTOM + 14.0) text-anchor="end" { (stamp(last.started_at)) }
                    } @else if WIDTH - 4.0 - left >= 150.0 {
                        text x=(format!("{left:.1}")) y=(BOTTOM + 14.0) text-anchor="start" { (stamp(first.started_at)) }
                        text x=(WIDTH - 4.0) y=(BOTTOM + 14.0) text-anchor="end" { (stamp(last.started_at)) }
                    } @else {
                        text x=(WIDTH - 4.0) y=(BOTTOM + 14.0) text-anchor="end" { (stamp(first.started_at)) " → " (stamp(last.started_at)) }
                    }
                }
                @for (n, r) in runs.iter().enumerate() {
                    @let v = value(r);
                    @let h = if max > 0.0 { (v / max * plot_height).max(if v > 0.0 { 1.5 } else { 0.0 }) } else { 0.0 };
                    @let x = left + n as f64 * slot;
                    @let tip = format!("run #{} · {} · {label}: {}{}", r.id, utc(r.started_at), shown(v), if r.status == "failed" { " · failed" } else { "" });
                    a href=(format!("/runs/{}", r.id)) {
                        @if r.status == "failed" {
                            rect.failed x=(format!("{x:.1}")) y=(TOP) width=(format!("{:.1}", (slot - 1.0).max(1.0))) height=(plot_height) { title { (tip) } }
                        }
                        rect.bar x=(format!("{x:.1}")) y=(format!("{:.1}", BOTTOM - h)) width=(format!("{:.1}", (slot - 1.0).max(1.0))) height=(format!("{h:.1}")) { title { (tip) } }
                    }
                }
            }
        }
    }
}

/// The values a chart's axis labels: 0, the largest, and a round value
/// between when there is one (counts are whole: no `0.5 runs`).
fn value_ticks(max: f64, unit: &str) -> Vec<f64> {
    let mut ticks = vec![0.0];
    if max <= 0.0 {
        return ticks;
    }
    let middle = if unit == "s" {
        max / 2.0
    } else {
        (max / 2.0).floor()
    };
    if middle > 0.0 && middle < max {
        ticks.push(middle);
    }
    ticks.push(max);
    ticks
}

fn seconds(r: &RunRecord) -> f64 {
    r.finished_at
        .map(|f| (f - r.started_at).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// A breakdown of skip reasons with bars for their shares.
fn reasons_table(reasons: &[(String, i64)], link: Option<i64>, selected: Option<&str>) -> Markup {
    let total: i64 = reasons.iter().map(|(_, n)| n).sum();
    html! {
        table.grid.reasons {
            thead { tr { th { "Reason" } th.num { "Offers" } th { "Share" } } }
            tbody {
                @for (reason, n) in reasons {
                    tr class=[(selected == Some(reason.as_str())).then_some("selected")] {
                        td {
                            @if let Some(run) = link {
                                a href=(format!("/runs/{run}?reason={}", query_value(reason))) { code { (reason) } }
                            } @else { code { (reason) } }
                        }
                        td.num { (n) }
                        td {
                            svg.share width="160" height="10" viewBox="0 0 160 10" aria-hidden="true" {
                                rect.track x="0" y="0" width="160" height="10" {}
                                rect.bar x="0" y="0" width=(format!("{:.1}", *n as f64 / total.max(1) as f64 * 160.0)) height="10" {}
                            }
                            span.sub { " " (format!("{:.0}%", *n as f64 * 100.0 / total.max(1) as f64)) }
                        }
                    }
                }
            }
        }
    }
}

fn query_value(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// `/integrations/NAME`: its definition, charts of recent runs, the skip
/// reasons of its last run that skipped offers, and the runs. With
/// `outage`, `status` is the store's last answer (if any) and there are no
/// runs to show.
pub fn integration(
    ctx: &Context<'_>,
    name: &str,
    status: Option<(&IntegrationStatus, Option<&Revision>)>,
    live: Option<&LiveState>,
    runs: &[RunRecord],
    reasons: Option<(i64, &[(String, i64)])>,
    outage: Option<&Outage<'_>>,
) -> String {
    let revision = status.and_then(|(_, r)| r);
    let status = status.map(|(s, _)| s);
    let oldest_first: Vec<&RunRecord> = runs.iter().rev().collect();
    let content = html! {
        p.crumbs { a href="/" { "Integrations" } " / " (name) }
        h1 {
            (name) " "
            @if let Some(title) = live.and_then(|l| l.title.as_deref()) { span.sub { (title) } " " }
            (health_badges(status, live))
        }
        @if let Some(outage) = outage { (outage_banner(ctx, outage)) }
        dl.facts {
            @if let Some(status) = status {
                dt { "Network" } dd { (status.network) }
                dt { "Health" } dd { (health_badges(Some(status), live)) }
                dt { "Sync" } dd.sync { (sync_state(ctx, Some(status), live)) }
            }
            @if let Some(l) = live {
                dt { "Manifest" } dd { code { (l.source_file) } }
                dt { "Schedule" } dd {
                    code { (l.schedule) }
                    @if let Some(next) = l.next_run { " · next run " (when(next, ctx.now)) " (" (utc(next)) ")" }
                }
                @if let Some(at) = l.retry {
                    dt { "Retry" } dd { "after " (l.failures) " failed in a row; next try " (when(at, ctx.now)) " (" (utc(at)) ")" }
                }
            } @else if let Some(status) = status {
                dt { "Manifest" } dd { code { (status.source_file) } }
            }
            @if let Some(status) = status {
                dt { "Last success" } dd {
                    @if let Some(t) = status.last_success_at { (when(t, ctx.now)) " (" (utc(t)) ")" } @else { "never" }
                }
                dt { "Campaigns" } dd {
                    (status.active_campaigns) " active of " (status.campaigns) " · "
                    a href=(format!("/campaigns?integration={}", query_value(name))) { "list them" }
                }
                dt { "Revision" } dd { (spec_cell(status, revision)) }
                dt { "Spec applied" } dd { code { (status.spec_hash) } }
                @if let Some(attempted) = status.attempted_spec_hash.as_deref().filter(|a| *a != status.spec_hash) {
                    dt { "Spec attempted" } dd { code { (attempted) } " " (badge("does not validate", "bad")) }
                }
            }
        }
        @if let Some(error) = status.and_then(|s| s.last_error.as_deref()) {
            @let kind = ErrorKind::of(error);
            h2 { "Last error" @if kind != ErrorKind::Other { " " (badge(kind.label(), "bad")) } }
            pre.error { (error) }
            @if let Some(hint) = kind.hint() { p.hint { "→ " (hint) } }
        }
        @if outage.is_none() {
            h2 { "Recent runs" }
            @if runs.is_empty() {
                p.empty { "No run yet." }
            } @else {
                div.charts {
                    (chart("fetched", &oldest_first, |r| f64::from(r.fetched), ""))
                    (chart("created", &oldest_first, |r| f64::from(r.created), ""))
                    (chart("updated", &oldest_first, |r| f64::from(r.updated), ""))
                    (chart("skipped", &oldest_first, |r| f64::from(r.skipped), ""))
                    (chart("removed", &oldest_first, |r| f64::from(r.removed), ""))
                    (chart("duration", &oldest_first, seconds, "s"))
                }
                @if let Some((run, reasons)) = reasons {
                    h2 { "Why offers were skipped " span.sub { "(run " a href=(format!("/runs/{run}")) { "#" (run) } ")" } }
                    (reasons_table(reasons, Some(run), None))
                }
                (runs_table(runs))
            }
        }
    };
    layout(ctx, name, content)
}

fn runs_table(runs: &[RunRecord]) -> Markup {
    html! {
        table.grid {
            thead { tr {
                th { "Run" } th { "Result" } th { "Trigger" } th { "Started" } th { "Duration" }
                th.num { "Pages" } th.num { "Fetched" } th.num { "Created" } th.num { "Updated" }
                th.num { "Unchanged" } th.num { "Skipped" } th.num { "Removed" } th { "Error" }
            } }
            tbody {
                @for r in runs {
                    tr {
                        td { a href=(format!("/runs/{}", r.id)) { "#" (r.id) } }
                        td { (run_badge(r)) }
                        td { (r.trigger) }
                        td.nowrap { (utc(r.started_at)) }
                        td { (duration(r).unwrap_or_default()) }
                        td.num { (r.pages) } td.num { (r.fetched) } td.num { (r.created) }
                        td.num { (r.updated) } td.num { (r.unchanged) } td.num { (r.skipped) }
                        td.num { (r.removed) }
                        td.error { @if let Some(e) = &r.error { span title=(e) { (truncated(e, 100)) } } }
                    }
                }
            }
        }
    }
}

/// Which page of a run's skipped offers is shown.
pub struct SkipPage<'a> {
    pub number: i64,
    pub per_page: i64,
    pub reason: Option<&'a str>,
}

/// A page of a list of `total` items.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    pub number: i64,
    pub per_page: i64,
    pub total: i64,
}

impl Paging {
    fn pages(&self) -> i64 {
        ((self.total + self.per_page - 1) / self.per_page.max(1)).max(1)
    }
}

/// Links to the previous and next pages of a list, and where this one is.
fn pager(label: &str, paging: Paging, noun: &str, href: impl Fn(i64) -> String) -> Markup {
    let pages = paging.pages();
    html! {
        nav.pages aria-label=(label) {
            @if paging.number > 1 { a rel="prev" href=(href(paging.number - 1)) { "← previous" } " " }
            span { "page " (paging.number) " of " (pages) " · " (paging.total) " " (noun) }
            @if paging.number < pages { " " a rel="next" href=(href(paging.number + 1)) { "next →" } }
        }
    }
}

/// What a run's page lists besides its counts.
pub struct RunDetails<'a> {
    pub reasons: &'a [(String, i64)],
    pub skips: &'a [SkipRecord],
    pub warnings: &'a [(String, String)],
    /// A page of the changes it made.
    pub changes: &'a [ChangeRecord],
}

/// A stored value of a changed column as people read it: text as is,
/// lists joined, caps in words, nothing as `—`.
fn change_value(column: &str, value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "—".into(),
        serde_json::Value::String(s) => s.clone(),
        _ if column == "caps" => caps_in_words(value),
        serde_json::Value::Array(items) if items.is_empty() => "none".into(),
        serde_json::Value::Array(_) => json_list(value),
        other => other.to_string(),
    }
}

/// The changes of a run: each campaign (linked to it), what happened, why,
/// and each column's old → new (long values cut to the part that differs).
fn changes_table(run: &RunRecord, changes: &[ChangeRecord]) -> Markup {
    html! {
        table.grid.changes {
            thead { tr { th { "Campaign" } th { "Change" } th { "Columns: old → new" } } }
            tbody {
                @for c in changes {
                    tr {
                        td {
                            a href=(format!("/campaigns?q={}&integration={}", query_value(&c.external_id), query_value(&run.integration))) {
                                code { (c.external_id) }
                            }
                        }
                        td {
                            (badge(c.kind.as_str(), match c.kind {
                                crate::store::ChangeKind::Created | crate::store::ChangeKind::Restored => "ok",
                                crate::store::ChangeKind::Updated => "busy",
                                crate::store::ChangeKind::Removed => "warn",
                            }))
                            @if let Some(cause) = &c.cause { div.sub { (cause) } }
                        }
                        td {
                            @if c.columns.is_empty() {
                                span.muted-text { "new campaign, status " (c.status) }
                            } @else {
                                ul.columns {
                                    @for f in &c.columns {
                                        @let (old, new) = crate::store::feed::differing(&change_value(&f.column, &f.old), &change_value(&f.column, &f.new), 120, 40);
                                        li {
                                            code.column { (f.column) } " "
                                            del { (old) } " → " ins { (new) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/runs/ID`: a run's counts, error, changes, warnings, skip reasons and
/// skipped offers.
pub fn run(
    ctx: &Context<'_>,
    run: &RunRecord,
    details: &RunDetails<'_>,
    page: SkipPage<'_>,
    changes: Paging,
) -> String {
    let RunDetails {
        reasons,
        skips,
        warnings,
        changes: changed,
    } = *details;
    let total: i64 = match page.reason {
        Some(reason) => reasons
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n),
        None => reasons.iter().map(|(_, n)| n).sum(),
    };
    let href = |n: i64| match page.reason {
        Some(reason) => format!("/runs/{}?reason={}&page={n}", run.id, query_value(reason)),
        None => format!("/runs/{}?page={n}", run.id),
    };
    let content = html! {
        p.crumbs {
            a href="/" { "Integrations" } " / "
            a href=(format!("/integrations/{}", run.integration)) { (run.integration) } " / run #" (run.id)
        }
        h1 { "Run #" (run.id) " of " (run.integration) " " (run_badge(run)) }
        dl.facts {
            dt { "Trigger" } dd { (run.trigger) }
            dt { "Started" } dd { (utc(run.started_at)) " (" (when(run.started_at, ctx.now)) ")" }
            dt { "Duration" } dd { (duration(run).unwrap_or_else(|| "still running".into())) }
        }
        div.counts {
            @for (label, n) in [("pages", run.pages), ("fetched", run.fetched), ("created", run.created), ("updated", run.updated), ("unchanged", run.unchanged), ("skipped", run.skipped), ("removed", run.removed), ("restored", run.restored), ("filtered out", run.filtered), ("drift corrected", run.drift_corrected), ("warnings", run.warnings)] {
                div.count { span.n { (n) } " " span.label { (label) } }
            }
        }
        @if let Some(error) = &run.error {
            h2 { "Error" }
            pre.error { (error) }
        }
        h2 #changes { "Changes" }
        @if changes.total == 0 {
            p.empty {
                @if run.created + run.updated + run.removed + run.restored > 0 {
                    "The change feed no longer holds this run's changes (past its retention)."
                } @else { "This run changed no campaign." }
            }
        } @else {
            (changes_table(run, changed))
            (pager("Pages of changes", changes, "changes", |n| format!("/runs/{}?changes={n}#changes", run.id)))
        }
        h2 { "Warnings" }
        @if warnings.is_empty() {
            p.empty { "No offer of this run warned." }
        } @else {
            table.grid.warnings {
                thead { tr { th { "Offer" } th { "Warning" } } }
                tbody {
                    @for (id, message) in warnings {
                        tr { td { code { (id) } } td { (message) } }
                    }
                }
            }
            @if i64::from(run.warnings) > warnings.len() as i64 {
                p.empty { (i64::from(run.warnings) - warnings.len() as i64) " more; `offersync runs show " (run.id) "` lists every one kept." }
            }
        }
        h2 { "Skipped offers" }
        @if reasons.is_empty() {
            p.empty { "This run skipped no offer." }
        } @else {
            (reasons_table(reasons, Some(run.id), page.reason))
            @if page.reason.is_some() {
                p { a href=(format!("/runs/{}", run.id)) { "Show every reason" } }
            }
            table.grid.skips {
                thead { tr { th { "Offer" } th { "Reason" } th { "Detail" } } }
                tbody {
                    @for s in skips {
                        tr {
                            td { code { (s.external_id.as_deref().unwrap_or("—")) } }
                            td { code { (s.reason) } }
                            td { (s.detail) }
                        }
                    }
                }
            }
            (pager("Pages of skipped offers", Paging { number: page.number, per_page: page.per_page, total }, "offers", href))
        }
    };
    layout(ctx, &format!("Run #{}", run.id), content)
}

/// What the campaigns page lists: a search's matches (at most `limit`
/// shown), or a page of one integration's campaigns.
#[derive(Debug, Clone, Copy)]
pub enum Listing {
    Search { limit: usize },
    Page(Paging),
}

/// `/campaigns?q=`: campaigns whose id is the text or whose name holds it;
/// `/campaigns?integration=NAME`: that integration's campaigns, paged.
pub fn campaigns(
    ctx: &Context<'_>,
    needle: &str,
    integration: Option<&str>,
    found: &[(String, CampaignRecord)],
    listing: Listing,
) -> String {
    let limit = match listing {
        Listing::Search { limit } => limit,
        Listing::Page(paging) => paging.per_page as usize,
    };
    let content = html! {
        @if let (Listing::Page(_), Some(name)) = (listing, integration) {
            p.crumbs { a href="/" { "Integrations" } " / " a href=(format!("/integrations/{name}")) { (name) } " / campaigns" }
            h1 { "Campaigns of " (name) }
        } @else {
            h1 { "Campaigns" }
        }
        form.search.wide method="get" action="/campaigns" role="search" {
            input type="search" name="q" value=(needle) placeholder="Campaign id or name" aria-label="Campaign id or name";
            input type="text" name="integration" value=(integration.unwrap_or_default()) placeholder="any integration" aria-label="Integration";
            button type="submit" { "Search" }
        }
        @if needle.is_empty() && integration.is_none() {
            p.empty { "Search by the network's offer id or by a part of the name, or give an integration to list its campaigns." }
        } @else if found.is_empty() {
            @if needle.is_empty() { p.empty { "No campaign in this integration." } }
            @else { p.empty { "No campaign matches " q { (needle) } "." } }
        } @else {
            @if let Listing::Search { .. } = listing {
                p.summary {
                    @if found.len() > limit { "The first " (limit) " matches" } @else { (found.len()) " matches" }
                }
            }
            table.grid.campaigns {
                thead { tr {
                    th { "Integration" } th { "Id" } th { "Name" } th { "Status" } th { "Visibility" }
                    th.num { "Revenue" } th.num { "Payout" } th { "Currency" } th { "Countries" }
                    th { "Category" } th { "Tracking URL" } th { "Caps" } th { "Changed" }
                } }
                tbody {
                    @for (integration, c) in found.iter().take(limit) {
                        tr {
                            td { a href=(format!("/integrations/{integration}")) { (integration) } }
                            td { code { (c.external_id) } }
                            td.campaign-name { (c.name) }
                            td {
                                (badge(&c.status, if c.status == "active" { "ok" } else { "muted" }))
                                @if let Some(t) = c.removed_at { " " span.badge.warn title=(utc(t)) { "gone upstream" } }
                            }
                            td { (c.visibility) }
                            @let kind = crate::campaign::PayoutKind::from_stored(&c.payout_kind);
                            td.num { (c.revenue.map(|d| kind.shown(d)).unwrap_or_default()) }
                            td.num { (c.payout.map(|d| kind.shown(d)).unwrap_or_default()) }
                            td { (c.currency.as_deref().unwrap_or_default()) }
                            td { (json_list(&c.countries)) }
                            td { (c.category.as_deref().unwrap_or_default()) }
                            td.url { @if let Some(u) = &c.tracking_url { code { (u) } } }
                            td { (caps_in_words(&c.caps)) }
                            td.nowrap { (utc(c.changed_at)) }
                        }
                    }
                }
            }
            @if let (Listing::Page(paging), Some(name)) = (listing, integration) {
                (pager("Pages of campaigns", paging, "campaigns", |n| format!("/campaigns?integration={}&page={n}", query_value(name))))
            }
        }
    };
    layout(ctx, "Campaigns", content)
}

/// Caps as a sentence: `100 conversions a day; 5000 clicks in total`;
/// `none` for no cap. Anything that is not a list of caps shows as JSON.
fn caps_in_words(value: &serde_json::Value) -> String {
    use crate::offer::{Cap, CapEvent, CapPeriod};
    let Ok(caps) = serde_json::from_value::<Vec<Cap>>(value.clone()) else {
        return value.to_string();
    };
    if caps.is_empty() {
        return "none".into();
    }
    caps.iter()
        .map(|cap| {
            let event = match cap.event {
                CapEvent::Conversions => "conversions",
                CapEvent::Clicks => "clicks",
                CapEvent::Impressions => "impressions",
                CapEvent::Payout => "in payout",
            };
            let period = match cap.period {
                CapPeriod::Daily => "a day",
                CapPeriod::Weekly => "a week",
                CapPeriod::Monthly => "a month",
                CapPeriod::Total => "in total",
            };
            let mut words = format!("{} {event} {period}", cap.value.normalize());
            if let Some(zone) = &cap.timezone {
                words.push_str(&format!(" ({zone})"));
            }
            if let Some(then) = &cap.over_delivery {
                words.push_str(&format!(", then {then}"));
            }
            words
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn json_list(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

pub fn not_found(ctx: &Context<'_>, message: &str) -> String {
    layout(
        ctx,
        "Not found",
        html! { h1 { "Not found" } p { (message) } p { a href="/" { "All integrations" } } },
    )
}

/// When the store cannot be read and the daemon holds nothing of `what` in
/// memory: the layout (its navigation still works) and the error.
pub fn unavailable(ctx: &Context<'_>, error: &str, what: &str) -> String {
    layout(
        ctx,
        "Store unavailable",
        html! {
            h1 { "The store cannot be read" }
            p { "This page shows " (what) ", read from the store, which does not answer:" }
            pre.error { (error) }
            p {
                "The daemon keeps running and retries; reload this page in a moment, or see "
                a href="/" { "the integrations" } " as this daemon knows them. "
                code { "/readyz" } " says what fails."
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_CHANGES: Paging = Paging {
        number: 1,
        per_page: 100,
        total: 0,
    };

    fn board() -> Board {
        Board::new("host:1".into())
    }

    fn run_record(id: i64, status: &str) -> RunRecord {
        let started = Utc::now() - chrono::TimeDelta::minutes(5);
        RunRecord {
            drift_corrected: 0,
            warnings: 0,
            id,
            integration: "acme".into(),
            trigger: "schedule".into(),
            started_at: started,
            finished_at: Some(started + chrono::TimeDelta::milliseconds(1500)),
            status: status.into(),
            pages: 1,
            fetched: 10,
            created: 3,
            updated: 1,
            unchanged: 4,
            skipped: 2,
            removed: 0,
            restored: 0,
            filtered: 0,
            error: (status == "failed").then(|| "<script>alert(1)</script> HTTP 500".into()),
        }
    }

    #[test]
    fn text_from_a_network_is_escaped_everywhere() {
        let b = board();
        let ctx = Context::new(&b, None);
        let skips = [SkipRecord {
            external_id: Some("\"><img src=x onerror=alert(1)>".into()),
            reason: "payout_above_max".into(),
            detail: "<b>bold</b>".into(),
        }];
        let html = run(
            &ctx,
            &run_record(7, "failed"),
            &RunDetails {
                reasons: &[("payout_above_max".into(), 1)],
                skips: &skips,
                warnings: &[("7".into(), "payout <b>abc</b> is not a decimal".into())],
                changes: &[],
            },
            SkipPage {
                number: 1,
                per_page: 100,
                reason: None,
            },
            NO_CHANGES,
        );
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<img src=x"));
        assert!(html.contains("&lt;b&gt;bold&lt;/b&gt;"));
        assert!(
            html.contains("payout &lt;b&gt;abc&lt;/b&gt; is not a decimal"),
            "{html}"
        );
    }

    #[test]
    fn pages_of_skips_link_on_and_back_keeping_the_reason() {
        let b = board();
        let ctx = Context::new(&b, None);
        let html = run(
            &ctx,
            &run_record(7, "succeeded"),
            &RunDetails {
                reasons: &[("status_excluded".into(), 250), ("no_payout".into(), 5)],
                skips: &[],
                warnings: &[],
                changes: &[],
            },
            SkipPage {
                number: 2,
                per_page: 100,
                reason: Some("status_excluded"),
            },
            NO_CHANGES,
        );
        assert!(html.contains("page 2 of 3 · 250 offers"), "{html}");
        assert!(html.contains(r#"href="/runs/7?reason=status_excluded&amp;page=1""#));
        assert!(html.contains(r#"href="/runs/7?reason=status_excluded&amp;page=3""#));
    }

    #[test]
    fn times_read_relative_both_ways() {
        let now = Utc::now();
        assert_eq!(
            relative(now - chrono::TimeDelta::seconds(190), now),
            "3 min ago"
        );
        assert_eq!(relative(now + chrono::TimeDelta::hours(2), now), "in 2 h");
        assert_eq!(relative(now, now), "now");
    }

    /// Issue 27.13: charts have a value axis and a time axis.
    #[test]
    fn a_chart_has_a_value_axis_and_a_time_axis() {
        let mut runs: Vec<RunRecord> = (1..=40).map(|id| run_record(id, "succeeded")).collect();
        let start = Utc::now() - chrono::TimeDelta::hours(40);
        for (n, r) in runs.iter_mut().enumerate() {
            r.started_at = start + chrono::TimeDelta::hours(n as i64);
            r.created = n as i32;
        }
        let refs: Vec<&RunRecord> = runs.iter().collect();
        let svg = chart("created", &refs, |r| f64::from(r.created), "").into_string();
        let labels: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split_once('>').and_then(|(_, r)| r.split_once("</text>")))
            .map(|(text, _)| text)
            .collect();
        let first = runs[0].started_at.format("%m-%d %H:%M").to_string();
        let last = runs[39].started_at.format("%m-%d %H:%M").to_string();
        assert_eq!(
            labels,
            ["0", "19", "39", first.as_str(), last.as_str()],
            "{svg}"
        );
        // Whole counts: no half a run on the axis; nothing twice at 0.
        assert_eq!(value_ticks(1.0, ""), [0.0, 1.0]);
        assert_eq!(value_ticks(0.0, ""), [0.0]);
        assert_eq!(value_ticks(3.0, "s"), [0.0, 1.5, 3.0]);
        // Two runs side by side: one range, not two labels on each other.
        let svg = chart("created", &refs[38..], |r| f64::from(r.created), "").into_string();
        assert!(
            svg.contains(&format!(
                "{} → {last}",
                runs[38].started_at.format("%m-%d %H:%M")
            )),
            "{svg}"
        );
    }

    #[test]
    fn long_text_is_cut_after_a_word_and_caps_read_in_words() {
        let error =
            "https://api.example/offers?page=1: HTTP 401 Unauthorized: the key is not valid";
        assert_eq!(
            truncated(error, 42),
            "https://api.example/offers?page=1: HTTP…"
        );
        assert_eq!(
            truncated("x".repeat(50).as_str(), 10),
            format!("{}…", "x".repeat(10))
        );
        let caps = serde_json::json!([
            {"event": "conversions", "period": "daily", "value": "100"},
            {"event": "payout", "period": "monthly", "value": "2500.00", "timezone": "Europe/Paris"}
        ]);
        assert_eq!(
            caps_in_words(&caps),
            "100 conversions a day; 2500 in payout a month (Europe/Paris)"
        );
        assert_eq!(caps_in_words(&serde_json::json!([])), "none");
    }

    #[test]
    fn a_chart_has_a_bar_per_run_linking_to_it_and_marks_failures() {
        let runs = [run_record(1, "succeeded"), run_record(2, "failed")];
        let refs: Vec<&RunRecord> = runs.iter().collect();
        let svg = chart("created", &refs, |r| f64::from(r.created), "").into_string();
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2, "{svg}");
        assert_eq!(svg.matches("<rect class=\"failed\"").count(), 1, "{svg}");
        assert!(svg.contains(r#"<a href="/runs/2">"#));
        assert!(svg.contains("run #2 · "));
    }
}
