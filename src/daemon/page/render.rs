//! The status page's HTML, from data already read: pure functions, no I/O.
//! maud escapes every interpolated value, so text from a network (offer
//! names, skip details, API error messages) can only ever show as text.
//! Charts are inline SVG drawn here, so that nothing needs a script.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

use super::{Board, LiveState};
use crate::store::{CampaignRecord, IntegrationStatus, RunRecord, SkipRecord};

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

/// The badges of an integration's state: stored state, then what the
/// scheduler knows (running, retrying, a manifest that does not validate).
fn state_badges(status: Option<&IntegrationStatus>, live: Option<&LiveState>) -> Markup {
    let stored = status.map(|s| {
        let kind = match s.state.as_str() {
            "active" => "ok",
            "disabled" => "muted",
            _ => "bad",
        };
        (s.state.as_str(), kind)
    });
    html! {
        @if let Some((state, kind)) = stored { (badge(state, kind)) }
        @if let Some(live) = live {
            @if live.running { " " (badge("running", "busy")) }
            @if live.manifest_broken { " " (badge("manifest invalid", "bad")) }
            @if let Some((failures, _)) = live.retry {
                " " (badge(&format!("retrying ({failures} failed)"), "warn"))
            }
        } @else if stored.is_some_and(|(state, _)| state != "deleted") {
            " " (badge("not scheduled here", "muted"))
        }
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

fn truncated(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

/// `/`: every integration, its state, schedule, last run and counts; the
/// ones the store holds and the ones this daemon schedules. With `outage`,
/// `integrations` is the store's last answer (or nothing).
pub fn overview(
    ctx: &Context<'_>,
    integrations: &[IntegrationStatus],
    live: &BTreeMap<String, LiveState>,
    outage: Option<&Outage<'_>>,
) -> String {
    let stored: BTreeMap<&str, &IntegrationStatus> =
        integrations.iter().map(|i| (i.name.as_str(), i)).collect();
    let names: std::collections::BTreeSet<&str> = stored
        .keys()
        .copied()
        .chain(live.keys().map(String::as_str))
        .collect();
    let failing = integrations
        .iter()
        .filter(|i| i.last_run.as_ref().is_some_and(|r| r.status == "failed"))
        .count();
    let content = html! {
        h1 { "Integrations" }
        @if let Some(outage) = outage { (outage_banner(ctx, outage)) }
        p.summary {
            (names.len()) " integrations · "
            (live.len()) " scheduled by this daemon · "
            @if failing > 0 { span.bad-text { (failing) " failing" } } @else { "none failing" }
        }
        @if names.is_empty() {
            p.empty { "No integration in the store yet: add a manifest to the directory the daemon watches." }
        } @else {
            div.scroll {
                table.grid {
                    thead { tr {
                        th { "Integration" } th { "State" } th { "Schedule" } th { "Last run" }
                        th.num { "Fetched" } th.num { "Created" } th.num { "Updated" }
                        th.num { "Skipped" } th.num { "Removed" } th.num { "Campaigns" }
                        th { "Spec" } th { "Last error" }
                    } }
                    tbody {
                        @for name in &names {
                            @let i = stored.get(name).copied();
                            @let l = live.get(*name);
                            tr {
                                td {
                                    a href=(format!("/integrations/{name}")) { (name) }
                                    @if let Some(i) = i { div.sub { (i.network) } }
                                }
                                td {
                                    (state_badges(i, l))
                                    @if i.is_none() {
                                        @if outage.is_some() { span.muted-text { "not in the store's last answer" } }
                                        @else { span.muted-text { "not in the store yet" } }
                                    }
                                }
                                td {
                                    @if let Some(l) = l {
                                        code { (l.schedule) }
                                        @if let Some(next) = l.next_run {
                                            div.sub { "next " (when(next, ctx.now)) }
                                        }
                                    } @else { "—" }
                                }
                                @if let Some(r) = i.and_then(|i| i.last_run.as_ref()) {
                                    td {
                                        (run_badge(r)) " "
                                        a href=(format!("/runs/{}", r.id)) { "#" (r.id) }
                                        div.sub {
                                            (when(r.started_at, ctx.now))
                                            @if let Some(d) = duration(r) { " · " (d) }
                                        }
                                    }
                                    td.num { (r.fetched) } td.num { (r.created) } td.num { (r.updated) }
                                    td.num { (r.skipped) } td.num { (r.removed) }
                                } @else {
                                    td {
                                        @if i.is_some() { span.muted-text { "never run" } } @else { "—" }
                                    }
                                    td.num { "—" } td.num { "—" } td.num { "—" } td.num { "—" } td.num { "—" }
                                }
                                @if let Some(i) = i {
                                    td.num { (i.active_campaigns) " / " (i.campaigns) div.sub { "active / all" } }
                                    td { (spec_cell(i)) }
                                    td.error {
                                        @if let Some(e) = &i.last_error { span title=(e) { (truncated(e, 120)) } }
                                    }
                                } @else {
                                    td.num { "—" } td { "—" } td.error {}
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(ctx, "Integrations", content)
}

/// The spec runs use, and the one that did not validate when they differ.
fn spec_cell(i: &IntegrationStatus) -> Markup {
    html! {
        code title=(i.spec_hash) { (short(&i.spec_hash)) }
        @if let Some(attempted) = i.attempted_spec_hash.as_deref().filter(|a| *a != i.spec_hash) {
            div.sub.bad-text title=(attempted) { "attempted " (short(attempted)) " (invalid)" }
        }
    }
}

/// A small bar chart of one count over recent runs (oldest left); each bar
/// links to its run and names it on hover; failed runs are marked.
fn chart(
    label: &str,
    runs: &[&RunRecord],
    value: impl Fn(&RunRecord) -> f64,
    unit: &str,
) -> Markup {
    const WIDTH: f64 = 300.0;
    const HEIGHT: f64 = 56.0;
    let max = runs.iter().map(|r| value(r)).fold(0.0_f64, f64::max);
    // Room for at least 30 runs, newest at the right: a few runs are
    // narrow bars, not blocks.
    let slot = WIDTH / runs.len().max(30) as f64;
    let left = WIDTH - slot * runs.len() as f64;
    let shown = |v: f64| {
        if unit == "s" {
            format!("{v:.1} s")
        } else {
            format!("{v:.0}")
        }
    };
    html! {
        figure.chart {
            figcaption { (label) span.sub { " · max " (shown(max)) } }
            svg viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) width=(WIDTH) height=(HEIGHT) role="img" aria-label=(format!("{label} per run")) {
                line.axis x1="0" y1=(HEIGHT - 0.5) x2=(WIDTH) y2=(HEIGHT - 0.5) {}
                @for (n, r) in runs.iter().enumerate() {
                    @let v = value(r);
                    @let h = if max > 0.0 { (v / max * (HEIGHT - 4.0)).max(if v > 0.0 { 1.5 } else { 0.0 }) } else { 0.0 };
                    @let x = left + n as f64 * slot;
                    @let tip = format!("run #{} · {} · {label}: {}{}", r.id, utc(r.started_at), shown(v), if r.status == "failed" { " · failed" } else { "" });
                    a href=(format!("/runs/{}", r.id)) {
                        @if r.status == "failed" {
                            rect.failed x=(format!("{x:.1}")) y="0" width=(format!("{:.1}", (slot - 1.0).max(1.0))) height=(HEIGHT) { title { (tip) } }
                        }
                        rect.bar x=(format!("{x:.1}")) y=(format!("{:.1}", HEIGHT - h)) width=(format!("{:.1}", (slot - 1.0).max(1.0))) height=(format!("{h:.1}")) { title { (tip) } }
                    }
                }
            }
        }
    }
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
    status: Option<&IntegrationStatus>,
    live: Option<&LiveState>,
    runs: &[RunRecord],
    reasons: Option<(i64, &[(String, i64)])>,
    outage: Option<&Outage<'_>>,
) -> String {
    let oldest_first: Vec<&RunRecord> = runs.iter().rev().collect();
    let content = html! {
        p.crumbs { a href="/" { "Integrations" } " / " (name) }
        h1 {
            (name) " "
            @if let Some(title) = live.and_then(|l| l.title.as_deref()) { span.sub { (title) } " " }
            (state_badges(status, live))
        }
        @if let Some(outage) = outage { (outage_banner(ctx, outage)) }
        dl.facts {
            @if let Some(status) = status {
                dt { "Network" } dd { (status.network) }
            }
            @if let Some(l) = live {
                dt { "Manifest" } dd { code { (l.source_file) } }
                dt { "Schedule" } dd {
                    code { (l.schedule) }
                    @if let Some(next) = l.next_run { " · next run " (when(next, ctx.now)) " (" (utc(next)) ")" }
                }
                @if let Some((failures, at)) = l.retry {
                    dt { "Retry" } dd { (failures) " failed in a row; next try " (when(at, ctx.now)) }
                }
            }
            @if let Some(status) = status {
                dt { "Last success" } dd {
                    @if let Some(t) = status.last_success_at { (when(t, ctx.now)) " (" (utc(t)) ")" } @else { "never" }
                }
                dt { "Campaigns" } dd { (status.active_campaigns) " active of " (status.campaigns) }
                dt { "Spec applied" } dd { code { (status.spec_hash) } }
                @if let Some(attempted) = status.attempted_spec_hash.as_deref().filter(|a| *a != status.spec_hash) {
                    dt { "Spec attempted" } dd { code { (attempted) } " " (badge("does not validate", "bad")) }
                }
            }
        }
        @if let Some(error) = status.and_then(|s| s.last_error.as_ref()) {
            h2 { "Last error" }
            pre.error { (error) }
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
        div.scroll {
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
}

/// Which page of a run's skipped offers is shown.
pub struct SkipPage<'a> {
    pub number: i64,
    pub per_page: i64,
    pub reason: Option<&'a str>,
}

/// `/runs/ID`: a run's counts, error, skip reasons and skipped offers.
pub fn run(
    ctx: &Context<'_>,
    run: &RunRecord,
    reasons: &[(String, i64)],
    skips: &[SkipRecord],
    warnings: &[(String, String)],
    page: SkipPage<'_>,
) -> String {
    let total: i64 = match page.reason {
        Some(reason) => reasons
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n),
        None => reasons.iter().map(|(_, n)| n).sum(),
    };
    let pages = ((total + page.per_page - 1) / page.per_page).max(1);
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
            nav.pages aria-label="Pages of skipped offers" {
                @if page.number > 1 { a rel="prev" href=(href(page.number - 1)) { "← previous" } " " }
                span { "page " (page.number) " of " (pages) " · " (total) " offers" }
                @if page.number < pages { " " a rel="next" href=(href(page.number + 1)) { "next →" } }
            }
        }
    };
    layout(ctx, &format!("Run #{}", run.id), content)
}

/// `/campaigns?q=`: campaigns whose id is the text or whose name holds it.
pub fn campaigns(
    ctx: &Context<'_>,
    needle: &str,
    integration: Option<&str>,
    found: &[(String, CampaignRecord)],
    limit: usize,
) -> String {
    let content = html! {
        h1 { "Campaigns" }
        form.search.wide method="get" action="/campaigns" role="search" {
            input type="search" name="q" value=(needle) placeholder="Campaign id or name" aria-label="Campaign id or name";
            input type="text" name="integration" value=(integration.unwrap_or_default()) placeholder="any integration" aria-label="Integration";
            button type="submit" { "Search" }
        }
        @if needle.is_empty() {
            p.empty { "Search by the network's offer id or by a part of the name." }
        } @else if found.is_empty() {
            p.empty { "No campaign matches " q { (needle) } "." }
        } @else {
            p.summary {
                @if found.len() > limit { "The first " (limit) " matches" } @else { (found.len()) " matches" }
            }
            div.scroll {
                table.grid {
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
                                td { (c.name) }
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
                                td { code { (c.caps.to_string()) } }
                                td { (utc(c.changed_at)) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(ctx, "Campaigns", content)
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
            &[("payout_above_max".into(), 1)],
            &skips,
            &[("7".into(), "payout <b>abc</b> is not a decimal".into())],
            SkipPage {
                number: 1,
                per_page: 100,
                reason: None,
            },
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
            &[("status_excluded".into(), 250), ("no_payout".into(), 5)],
            &[],
            &[],
            SkipPage {
                number: 2,
                per_page: 100,
                reason: Some("status_excluded"),
            },
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
