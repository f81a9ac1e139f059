//! Pagination: which request comes next, when the list ends, and the guards
//! against a feed that never does.
//!
//! Stop rules. When the response states a total (`total_pages` or
//! `total_count`, read from each page, the latest winning), the total decides:
//! a short page does not end the list (many APIs silently cap the page size),
//! and an empty page before the total is reached fails the run as a truncated
//! feed. Without a stated total, an empty page or one shorter than the page
//! size ends it. Cursor and next-link pagers end when the page names no next
//! one. Always a pagination loop: a page whose body repeats any earlier page
//! of the run; a page whose records all carry ids the run has already seen
//! (pages A, B, A, B... that differ only in an echoed page number or
//! cursor); a cursor or link followed before; and [`EMPTY_PAGES_IN_A_ROW`]
//! empty pages in a row that each name a next one (a cursor that leads
//! nowhere, fresh each time). More than `limits.max_pages` pages is an
//! error.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use serde_json::Value;
use url::Url;

use super::{Body, FetchError, Redactor, Request, checked_url, render, request_time};
use crate::manifest::model::{IntegrationDef, OffsetUnit, PaginationDef, Total};
use crate::mapping::path::JsonPath;
use crate::mapping::program::Template;
use reqwest::header::HeaderMap;

/// Empty pages in a row, each naming a next page, that make a pagination
/// loop: one or two happen (an API that filters after paging), a run of them
/// is a cursor going nowhere.
pub const EMPTY_PAGES_IN_A_ROW: u32 = 5;

/// Walks the pages of an integration's offer list.
#[derive(Debug)]
pub struct Pager<'a> {
    def: &'a IntegrationDef,
    redactor: Redactor,
    first: Request,
    next: Option<Request>,
    /// Pages fetched so far.
    pages: u64,
    records: u64,
    seen_links: HashSet<String>,
    /// A digest of every non-empty page's body, with its page number.
    seen_bodies: HashMap<u64, u64>,
    /// A digest of every record id the run's pages listed (8 bytes an id;
    /// a collision would need every id of a page to collide).
    seen_ids: HashSet<u64>,
    /// Empty pages in a row up to the latest.
    empty_in_a_row: u32,
    /// The last page the latest response's stated total implies (page
    /// pagination), which makes the pages before it safe to fetch ahead.
    stated_last_page: Option<u64>,
    /// The number of records the latest response states, if it does.
    stated_count: Option<u64>,
}

impl<'a> Pager<'a> {
    pub fn new(def: &'a IntegrationDef, redactor: Redactor) -> Result<Self, FetchError> {
        let network = &def.network;
        let request = &network.request;
        // The first request is built once and each page reuses it: `now`
        // is the time the run's first request is made.
        let now = request_time();
        let render = |t: &Template| render(t, def, now);
        let mut url = checked_url(&render(&request.url), &redactor)?;
        for (name, value) in &request.query {
            set_param(&mut url, name, &render(value));
        }
        let headers = request
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), render(v)))
            .collect();
        if let Some((param, separator)) = &request.select_ids
            && !def.filters.offers.is_empty()
        {
            let ids: Vec<&str> = def.filters.offers.iter().map(String::as_str).collect();
            set_param(&mut url, param, &ids.join(separator));
        }
        let body = request.body.as_ref().map(|b| Body::render(b, render));
        let mut first = Request {
            method: request.method,
            url,
            headers,
            body,
        };
        match &network.pagination {
            PaginationDef::Page {
                param,
                start,
                size_param,
                size,
                ..
            } => {
                set_paging(&mut first, param, &start.to_string());
                if let (Some(p), Some(s)) = (size_param, size) {
                    set_paging(&mut first, p, &s.to_string());
                }
            }
            PaginationDef::Offset {
                param,
                start,
                size_param,
                size,
                ..
            } => {
                set_paging(&mut first, param, &start.to_string());
                set_paging(&mut first, size_param, &size.to_string());
            }
            PaginationDef::None
            | PaginationDef::Cursor { .. }
            | PaginationDef::NextUrl { .. }
            | PaginationDef::LinkHeader => {}
        }
        Ok(Self {
            def,
            redactor,
            next: Some(first.clone()),
            first,
            pages: 0,
            records: 0,
            seen_links: HashSet::new(),
            seen_bodies: HashMap::new(),
            seen_ids: HashSet::new(),
            empty_in_a_row: 0,
            stated_last_page: None,
            stated_count: None,
        })
    }

    /// The pages and records the latest response says the feed has, where
    /// it says (for progress reports; the stop rules read them themselves).
    pub fn stated_totals(&self) -> (Option<u64>, Option<u64>) {
        (self.stated_last_page, self.stated_count)
    }

    /// The next request and up to `count - 1` after it that the latest
    /// stated total says will follow (page-number pagination only; other
    /// kinds learn each next request from the page before). They may be
    /// fetched ahead; each is still taken in through [`Pager::advance`] in
    /// order, and one that the list turns out not to need is never used.
    pub fn ahead(&self, count: usize) -> Vec<Request> {
        let (Some(next), PaginationDef::Page { param, start, .. }) =
            (&self.next, &self.def.network.pagination)
        else {
            return self.next.iter().take(count.min(1)).cloned().collect();
        };
        let last = self.stated_last_page.unwrap_or(0);
        let mut requests = vec![next.clone()];
        // `next` is page `pages + 1` (counting from 1).
        for k in 1..count as u64 {
            if self.pages + 1 + k > last {
                break;
            }
            let mut r = self.first.clone();
            set_paging(&mut r, param, &(start + self.pages + k).to_string());
            requests.push(r);
        }
        requests
    }

    /// The next request, or `None` once the list has ended.
    pub fn next_request(&self) -> Option<&Request> {
        self.next.as_ref()
    }

    /// Pages fetched so far.
    pub fn pages(&self) -> u64 {
        self.pages
    }

    /// Takes in the page just fetched (its tree, where pagination paths are
    /// read, how many records it held, its body and the ids of its records
    /// that have one) and works out the next request.
    pub fn advance<'i>(
        &mut self,
        page: &Value,
        headers: &HeaderMap,
        records: usize,
        body: &[u8],
        ids: impl IntoIterator<Item = &'i str>,
    ) -> Result<(), FetchError> {
        let Some(current) = self.next.take() else {
            return Ok(());
        };
        self.pages += 1;
        self.records += records as u64;
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let body_hash = hasher.finish();
        if records > 0
            && let Some(earlier) = self.seen_bodies.insert(body_hash, self.pages)
        {
            return Err(FetchError::Loop(format!(
                "page {} is identical to page {earlier} ({}); the network ignores the pagination parameter or repeats itself",
                self.pages,
                self.redactor.redact(current.url.as_str())
            )));
        }
        let (mut with_id, mut new) = (0u64, 0u64);
        for id in ids {
            with_id += 1;
            let mut hasher = DefaultHasher::new();
            id.hash(&mut hasher);
            new += u64::from(self.seen_ids.insert(hasher.finish()));
        }
        if with_id > 0 && new == 0 {
            return Err(FetchError::Loop(format!(
                "page {} lists only offers already seen in this run ({with_id} records, {}); the network ignores the pagination parameter or cycles through its pages",
                self.pages,
                self.redactor.redact(current.url.as_str())
            )));
        }
        self.empty_in_a_row = if records == 0 {
            self.empty_in_a_row + 1
        } else {
            0
        };
        let next = match &self.def.network.pagination {
            PaginationDef::None => None,
            PaginationDef::Page {
                param,
                start,
                size,
                total_pages,
                total_count,
                ..
            } => {
                let stated = Stated {
                    pages: number_at(total_pages.as_ref(), page, headers),
                    count: number_at(total_count.as_ref(), page, headers),
                };
                self.stated_count = stated.count;
                let short = size.is_some_and(|s| (records as u64) < s);
                self.stated_last_page = stated.pages.or_else(|| {
                    let per_page = size.filter(|s| *s > 0)?;
                    Some(stated.count?.div_ceil(per_page))
                });
                let ended = self.ended(&stated, records, short)?;
                (!ended).then(|| {
                    let mut r = self.first.clone();
                    set_paging(&mut r, param, &(start + self.pages).to_string());
                    r
                })
            }
            PaginationDef::Offset {
                param,
                start,
                size,
                unit,
                total_count,
                ..
            } => {
                let stated = Stated {
                    pages: None,
                    count: number_at(total_count.as_ref(), page, headers),
                };
                self.stated_count = stated.count;
                let ended = self.ended(&stated, records, (records as u64) < *size)?;
                (!ended).then(|| {
                    let offset = match unit {
                        OffsetUnit::Rows => start + self.records,
                        OffsetUnit::Pages => start + self.pages,
                    };
                    let mut r = self.first.clone();
                    set_paging(&mut r, param, &offset.to_string());
                    r
                })
            }
            PaginationDef::Cursor { param, path } => match text_at(path, page) {
                Some(cursor) => {
                    self.check_new(&cursor, "cursor")?;
                    let mut r = self.first.clone();
                    set_paging(&mut r, param, &cursor);
                    Some(r)
                }
                None => None,
            },
            PaginationDef::NextUrl { path } => self.follow(&current, text_at(path, page))?,
            PaginationDef::LinkHeader => self.follow(&current, next_link(headers))?,
        };
        if next.is_some() && self.empty_in_a_row >= EMPTY_PAGES_IN_A_ROW {
            return Err(FetchError::Loop(format!(
                "{} pages in a row added no new offer (pages {} to {} were empty, each naming a next page; the last {})",
                self.empty_in_a_row,
                self.pages + 1 - u64::from(self.empty_in_a_row),
                self.pages,
                self.redactor.redact(current.url.as_str())
            )));
        }
        if next.is_some() && self.pages >= self.def.network.limits.max_pages {
            return Err(FetchError::TooManyPages(self.def.network.limits.max_pages));
        }
        self.next = next;
        Ok(())
    }

    /// Whether a page or offset list has ended (see the module's stop rules).
    fn ended(&self, stated: &Stated, records: usize, short: bool) -> Result<bool, FetchError> {
        if stated.pages.is_none() && stated.count.is_none() {
            return Ok(records == 0 || short);
        }
        let reached = stated.pages.is_some_and(|t| self.pages >= t)
            || stated.count.is_some_and(|t| self.records >= t);
        if !reached && records == 0 {
            let total = match (stated.count, stated.pages) {
                (Some(count), _) => format!("{count} records"),
                (None, Some(pages)) => format!("{pages} pages"),
                (None, None) => unreachable!("a total is stated"),
            };
            return Err(FetchError::ShortFeed(format!(
                "the feed ended short of its stated total: page {} was empty after {} records in {} pages, but the response states {total}; the network truncated its answer, so nothing was kept or removed",
                self.pages,
                self.records,
                self.pages - 1
            )));
        }
        Ok(reached)
    }

    /// The request for a next-page link (absolute, or relative to the
    /// current request's URL), checked never to have been followed before.
    fn follow(
        &mut self,
        current: &Request,
        link: Option<String>,
    ) -> Result<Option<Request>, FetchError> {
        let Some(link) = link else {
            return Ok(None);
        };
        let url = current.url.join(&link).map_err(|e| FetchError::BadUrl {
            url: self.redactor.redact(&link),
            message: e.to_string(),
        })?;
        let url = checked_url(url.as_str(), &self.redactor)?;
        self.seen_links.insert(current.url.to_string());
        self.check_new(url.as_str(), "next link")?;
        let mut r = self.first.clone();
        r.url = url;
        Ok(Some(r))
    }

    fn check_new(&mut self, link: &str, what: &str) -> Result<(), FetchError> {
        if !self.seen_links.insert(link.to_string()) {
            return Err(FetchError::Loop(format!(
                "the {what} after page {} was already followed ({})",
                self.pages,
                self.redactor.redact(link)
            )));
        }
        Ok(())
    }
}

/// The totals a page states, when its Network says where to read them.
struct Stated {
    pages: Option<u64>,
    count: Option<u64>,
}

/// Sets a query parameter, replacing any value it had.
/// Sets a pagination parameter where the request carries its parameters:
/// in a form or JSON body when it has one (a POST API reads them there),
/// else in the URL.
fn set_paging(request: &mut Request, name: &str, value: &str) {
    let in_body = request
        .body
        .as_mut()
        .is_some_and(|body| body.set(name, value));
    if !in_body {
        set_param(&mut request.url, name, value);
    }
}

fn set_param(url: &mut Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut pairs = url.query_pairs_mut();
    pairs.clear();
    for (k, v) in &kept {
        pairs.append_pair(k, v);
    }
    pairs.append_pair(name, value);
}

/// A total the response states, in its body or in a header.
fn number_at(total: Option<&Total>, page: &Value, headers: &HeaderMap) -> Option<u64> {
    match total? {
        Total::Path(path) => match path.first(page)? {
            Value::Number(n) => n.as_u64().or_else(|| n.as_f64().map(|f| f as u64)),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        },
        Total::Header(name) => headers.get(name)?.to_str().ok()?.trim().parse().ok(),
    }
}

/// The target of the `rel="next"` link of the response's `Link` headers
/// (RFC 8288: `<https://…?page=2>; rel="next", <…>; rel="last"`; a rel may
/// list several relation types, and names are case-insensitive).
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(split_links)
        .find_map(|(target, params)| {
            params
                .split(';')
                .filter_map(|p| p.split_once('='))
                .filter(|(name, _)| name.trim().eq_ignore_ascii_case("rel"))
                .any(|(_, rels)| {
                    rels.trim()
                        .trim_matches('"')
                        .split_ascii_whitespace()
                        .any(|rel| rel.eq_ignore_ascii_case("next"))
                })
                .then(|| target.to_string())
        })
        .filter(|target| !target.trim().is_empty())
}

/// `<target>; params, <target>; params` → (target, params) pairs; a comma
/// inside `<…>` (a URL may hold one) does not split.
fn split_links(value: &str) -> Vec<(&str, &str)> {
    let mut pieces = Vec::new();
    let (mut inside, mut start) = (false, 0);
    for (i, c) in value.char_indices() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            ',' if !inside => {
                pieces.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&value[start..]);
    pieces
        .into_iter()
        .filter_map(|piece| {
            let piece = piece.trim().strip_prefix('<')?;
            let (target, params) = piece.split_once('>')?;
            Some((target.trim(), params))
        })
        .collect()
}

/// A non-empty string or number at `path`.
fn text_at(path: &JsonPath, page: &Value) -> Option<String> {
    match path.first(page)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(reqwest::header::LINK, v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_next_link_is_found_as_rfc_8288_writes_it() {
        let next = |values: &[&str]| next_link(&links(values));
        assert_eq!(
            next(&[
                r#"<https://api.example.com/o?page=1>; rel="prev", <https://api.example.com/o?page=3&f=a,b>; rel="next""#
            ]),
            Some("https://api.example.com/o?page=3&f=a,b".into())
        );
        // Several relation types, other params, case, a header per link.
        assert_eq!(
            next(&[
                r#"</o?p=1>; rel="first""#,
                r#"</o?p=2>; title="x"; REL="Next nofollow""#
            ]),
            Some("/o?p=2".into())
        );
        assert_eq!(next(&["</o?p=2>; rel=next"]), Some("/o?p=2".into()));
        assert_eq!(next(&[r#"</o?p=9>; rel="last""#]), None);
        assert_eq!(next(&["garbage", r#"<>; rel="next""#]), None);
        assert_eq!(next(&[]), None);
    }
}
