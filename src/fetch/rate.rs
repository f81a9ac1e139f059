//! Request rates a Network declares (`rate_limit`): one limiter per network
//! in the process, so that pages, per-offer requests and concurrent runs of
//! the same network all draw from one budget.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::time::Instant;

use crate::manifest::model::RateLimitDef;

/// A sliding-window limiter: a request goes when the one `requests` before
/// it went at least a `period` ago, so that no window of one `period` ever
/// holds more than `requests` requests (what "20 a minute" means to an API
/// that counts them).
#[derive(Debug)]
pub struct RateLimiter {
    limit: RateLimitDef,
    /// When the last `requests` requests go (or went), oldest first.
    slots: Mutex<VecDeque<Instant>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimitDef) -> Self {
        Self {
            limit: RateLimitDef {
                requests: limit.requests.max(1),
                ..limit
            },
            slots: Mutex::new(VecDeque::new()),
        }
    }

    /// The limiter every run of the network `name` shares in this process
    /// (one per distinct limit, so an edited limit takes effect at once).
    pub fn shared(name: &str, limit: RateLimitDef) -> Arc<Self> {
        type ByNetwork = HashMap<(String, RateLimitDef), Arc<RateLimiter>>;
        static LIMITERS: OnceLock<Mutex<ByNetwork>> = OnceLock::new();
        let mut limiters = LIMITERS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        limiters
            .entry((name.to_string(), limit))
            .or_insert_with(|| Arc::new(Self::new(limit)))
            .clone()
    }

    /// Waits until one more request is allowed, and counts it.
    pub async fn acquire(&self) {
        let wait = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let now = Instant::now();
            let mut at = slots.back().map_or(now, |&last| last.max(now));
            if slots.len() >= self.limit.requests as usize {
                let oldest = slots.pop_front().expect("full");
                at = at.max(oldest + self.limit.period);
            }
            slots.push_back(at);
            at - now
        };
        if !wait.is_zero() {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "waiting for the network's rate limit"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn no_period_holds_more_than_the_allowed_requests() {
        let limiter = RateLimiter::new(RateLimitDef {
            requests: 3,
            period: Duration::from_secs(6),
        });
        let start = Instant::now();
        let mut sent = Vec::new();
        for _ in 0..9 {
            limiter.acquire().await;
            sent.push(start.elapsed());
        }
        // A burst of 3, then 3 more once the first has left the window.
        let secs: Vec<u64> = sent.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [0, 0, 0, 6, 6, 6, 12, 12, 12]);
        for window in sent.windows(4) {
            assert!(window[3] - window[0] >= Duration::from_secs(6), "{sent:?}");
        }
    }
}
