//! What an integration's state and last error mean to an operator, apart
//! from each other (as Argo CD keeps health apart from sync): its health
//! (enabled, disabled, deleted), its sync state (in sync, failing since
//! when and how many times in a row, never succeeded), and its last
//! error's kind with what to check.
//!
//! This module owns that vocabulary and how the daemon retries each kind of
//! failure; the status page and `offersync status` show it. It reads only
//! what the run log keeps (the error's text, whose forms `fetch`, `sync`
//! and `reconcile` write), and must not do I/O.

use chrono::{DateTime, TimeDelta, Utc};

use crate::store::IntegrationStatus;

/// The kind of a run's error, told from the run log's text of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// HTTP 401 or 403 (of the API, or of its token or login endpoint).
    Credentials,
    /// HTTP 404.
    NotFound,
    /// The API's host name does not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    Timeout,
    /// Nothing answered at the address (refused, unreachable).
    Connect,
    /// HTTP 5xx or 429: the network's trouble.
    Server,
    /// The outage guard stopped the run's removals.
    OutageGuard,
    Other,
}

impl ErrorKind {
    /// The kind of an error as the run log keeps it.
    pub fn of(error: &str) -> Self {
        let lower = error.to_lowercase();
        if lower.contains("--accept-removals") {
            return Self::OutageGuard;
        }
        if lower.contains("cannot resolve the host name")
            || lower.contains("dns error")
            || lower.contains("failed to lookup address")
        {
            return Self::Dns;
        }
        match http_status(error) {
            Some(401 | 403) => return Self::Credentials,
            Some(404) => return Self::NotFound,
            Some(429 | 500..=599) => return Self::Server,
            _ => {}
        }
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("ssl") {
            Self::Tls
        } else if lower.contains("timed out") {
            Self::Timeout
        } else if lower.contains("cannot connect") {
            Self::Connect
        } else {
            Self::Other
        }
    }

    /// A word for the kind, as the page's badge and `status` show it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Credentials => "credentials",
            Self::NotFound => "not found",
            Self::Dns => "DNS",
            Self::Tls => "TLS",
            Self::Timeout => "timeout",
            Self::Connect => "connection",
            Self::Server => "network's server",
            Self::OutageGuard => "outage guard",
            Self::Other => "error",
        }
    }

    /// What to check, for the kinds where there is something to say.
    pub fn hint(self) -> Option<&'static str> {
        Some(match self {
            Self::Credentials => {
                "the network refuses the credentials: check the API key or login in the Integration's params and secrets, and that the account is active"
            }
            Self::NotFound => {
                "the API answers 404: check the Network's base_url (and a base_url the Integration sets) and the request's path"
            }
            Self::Dns => {
                "the API's host name does not resolve: check the host in base_url, and this machine's DNS"
            }
            Self::Tls => {
                "the TLS handshake failed: check the host's certificate (expired, self-signed, another name) and that base_url uses the scheme the API serves"
            }
            Self::Timeout => {
                "the API did not answer in time: the network may be slow or down; raise the Network's limits.timeout_seconds if its pages are that slow"
            }
            Self::Connect => {
                "nothing answered at that address: check base_url's host and port, and any firewall or proxy on the way"
            }
            Self::Server => {
                "the network's API is failing (HTTP 5xx or 429): nothing to change here; the daemon retries with a growing backoff"
            }
            Self::OutageGuard => {
                "the feed came back much shorter than the live campaigns, a suspected upstream outage; if the offers really are gone, run `offersync sync NAME --accept-removals` once"
            }
            Self::Other => return None,
        })
    }

    /// How soon the daemon retries a run that failed so, before its next
    /// tick: `None` when a person has to act first (a retry would fail the
    /// same way; the next tick, a changed manifest or `offersync refresh`
    /// runs it). A name that does not resolve is retried, but not like a
    /// 503: a resolver outage or a wrong name outlasts seconds.
    pub fn first_retry(self) -> Option<TimeDelta> {
        match self {
            Self::Credentials | Self::NotFound | Self::Tls => None,
            Self::Dns => Some(TimeDelta::minutes(5)),
            _ => Some(TimeDelta::seconds(30)),
        }
    }
}

/// The first `HTTP NNN` in an error's text.
fn http_status(error: &str) -> Option<u16> {
    error.match_indices("HTTP ").find_map(|(at, _)| {
        let digits = error.get(at + 5..at + 8)?;
        let after = error[at + 8..].chars().next();
        (digits.bytes().all(|b| b.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit()))
            .then(|| digits.parse().ok())
            .flatten()
    })
}

/// The longest wait between retries.
pub const MAX_RETRY: TimeDelta = TimeDelta::minutes(30);

/// When to retry after the `failures`-th failure in a row of this kind (the
/// wait doubles with each, from the kind's first, up to [`MAX_RETRY`]):
/// `None` when the kind waits for a person, or when the next tick comes
/// first (it runs then; the count of failures goes on, so the backoff keeps
/// growing across ticks).
pub fn next_retry(
    kind: ErrorKind,
    failures: u32,
    now: DateTime<Utc>,
    next_tick: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let first = kind.first_retry()?;
    let doublings = failures.saturating_sub(1).min(16);
    let delay = (first * 2i32.pow(doublings)).min(MAX_RETRY);
    let at = now + delay;
    match next_tick {
        Some(tick) if tick <= at => None,
        _ => Some(at),
    }
}

/// Where an integration's runs stand, apart from its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncState {
    /// No run yet.
    NeverRun,
    /// Its last finished run succeeded.
    InSync,
    /// Its runs fail: since when, how many in a row, and whether it ever
    /// succeeded.
    Failing {
        since: DateTime<Utc>,
        in_a_row: u32,
        ever_succeeded: bool,
    },
}

impl SyncState {
    pub fn of(status: &IntegrationStatus) -> Self {
        if status.failures_in_a_row > 0 {
            let first_failed = status.last_run.as_ref().map(|r| r.started_at);
            Self::Failing {
                since: status
                    .failing_since
                    .or(first_failed)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
                in_a_row: status.failures_in_a_row,
                ever_succeeded: status.last_success_at.is_some(),
            }
        } else if status.last_success_at.is_none() {
            // No run, or only the first one, still going.
            Self::NeverRun
        } else {
            Self::InSync
        }
    }

    /// In words, with times as `when` renders them (`when` is given so
    /// that the page can say "3 min ago" and the CLI an exact time).
    pub fn describe(&self, when: impl Fn(DateTime<Utc>) -> String) -> String {
        match self {
            Self::NeverRun => "never run".into(),
            Self::InSync => "in sync".into(),
            Self::Failing {
                since,
                in_a_row,
                ever_succeeded,
            } => {
                let runs = if *in_a_row == 1 {
                    "1 failed run".to_string()
                } else {
                    format!("{in_a_row} failed runs in a row")
                };
                if *ever_succeeded {
                    format!("failing since {} ({runs})", when(*since))
                } else {
                    format!("never succeeded ({runs} since {})", when(*since))
                }
            }
        }
    }
}

/// The integration's health: whether it runs at all (`enabled`), and if
/// not why (`disabled` by its manifest, `deleted`: its manifest is gone).
pub fn health(state: &str) -> &str {
    match state {
        "active" => "enabled",
        other => other,
    }
}

/// Whether an integration counts as failing: its runs fail and it is not
/// deleted (a deleted manifest's integration runs no more).
pub fn counts_as_failing(state: &str, failures_in_a_row: u32) -> bool {
    state != "deleted" && failures_in_a_row > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_told_apart_by_kind_with_a_hint() {
        let cases = [
            (
                "https://api.example/offers?page=1: HTTP 401 Unauthorized: bad key",
                ErrorKind::Credentials,
                "credentials",
            ),
            (
                "login to https://api.example/login failed: HTTP 403 Forbidden",
                ErrorKind::Credentials,
                "credentials",
            ),
            (
                "https://api.example/v2/offers: HTTP 404 Not Found",
                ErrorKind::NotFound,
                "base_url",
            ),
            (
                "https://nope.example/offers: cannot resolve the host name \"nope.example\": failed to lookup address information",
                ErrorKind::Dns,
                "host",
            ),
            (
                "https://api.example/offers: cannot connect: error trying to connect: invalid peer certificate: Expired",
                ErrorKind::Tls,
                "certificate",
            ),
            (
                "https://api.example/offers: timed out",
                ErrorKind::Timeout,
                "timeout_seconds",
            ),
            (
                "https://api.example/offers: HTTP 503 Service Unavailable",
                ErrorKind::Server,
                "retries",
            ),
            (
                "the run would remove 2 of 3 live campaigns (66.7%), more than safety.max_removed_share allows (50%): suspected upstream outage; if the offers really are gone, sync once with --accept-removals",
                ErrorKind::OutageGuard,
                "--accept-removals",
            ),
        ];
        for (error, kind, hint) in cases {
            assert_eq!(ErrorKind::of(error), kind, "{error}");
            assert!(kind.hint().unwrap().contains(hint), "{kind:?}");
        }
        // A status is read whole: 4010 is no 401.
        assert_eq!(ErrorKind::of("HTTP 4010 things"), ErrorKind::Other);
        assert_eq!(ErrorKind::Other.hint(), None);
    }

    #[test]
    fn the_backoff_grows_across_ticks_and_waits_for_a_person_where_one_must_act() {
        let now = Utc::now();
        let hourly = Some(now + TimeDelta::hours(1));
        let wait = |failures| {
            next_retry(ErrorKind::Server, failures, now, hourly).map(|at| (at - now).num_seconds())
        };
        assert_eq!(wait(1), Some(30));
        assert_eq!(wait(2), Some(60));
        assert_eq!(wait(5), Some(480));
        assert_eq!(wait(7), Some(1_800), "capped at 30 min");
        // The tick comes before the retry: it runs then, and the count of
        // failures is the caller's to keep (it is not reset by the tick).
        let soon = Some(now + TimeDelta::seconds(45));
        assert_eq!(next_retry(ErrorKind::Server, 2, now, soon), None);
        assert!(next_retry(ErrorKind::Server, 1, now, soon).is_some());
        // A name that does not resolve is not retried like a 503.
        let dns = next_retry(ErrorKind::Dns, 1, now, hourly).unwrap();
        assert_eq!((dns - now).num_seconds(), 300);
        // Credentials, a wrong base_url or TLS: a retry fails the same way.
        for kind in [ErrorKind::Credentials, ErrorKind::NotFound, ErrorKind::Tls] {
            assert_eq!(next_retry(kind, 1, now, hourly), None, "{kind:?}");
        }
    }
}
