//! Bounded bookkeeping for abuse limits: a token bucket per user, the nonce
//! cache that makes resends idempotent, and the failed-login throttle. Time
//! is passed in, so each is tested without sleeping.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Messages per second with a burst.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        TokenBucket { rate, burst, tokens: burst, last: None }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How long a nonce is remembered.
pub const NONCE_TTL: Duration = Duration::from_secs(10 * 60);
/// Nonces remembered at most; past it the oldest are forgotten early.
pub const NONCE_CAP: usize = 200_000;

/// (user, nonce) → message id, for 10 minutes, bounded.
#[derive(Default)]
pub struct NonceCache {
    map: HashMap<(i64, String), i64>,
    order: VecDeque<(Instant, i64, String)>,
}

impl NonceCache {
    pub fn get(&mut self, user: i64, nonce: &str, now: Instant) -> Option<i64> {
        self.expire(now);
        self.map.get(&(user, nonce.to_string())).copied()
    }

    pub fn insert(&mut self, user: i64, nonce: &str, id: i64, now: Instant) {
        self.expire(now);
        while self.order.len() >= NONCE_CAP {
            if let Some((_, u, n)) = self.order.pop_front() {
                self.map.remove(&(u, n));
            }
        }
        if self.map.insert((user, nonce.to_string()), id).is_none() {
            self.order.push_back((now, user, nonce.to_string()));
        }
    }

    /// Forgets the nonces of a failed turn (their messages were not stored).
    pub fn forget(&mut self, user: i64, nonce: &str) {
        self.map.remove(&(user, nonce.to_string()));
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, _, _)) = self.order.front() {
            if now.saturating_duration_since(*t) < NONCE_TTL {
                break;
            }
            if let Some((_, u, n)) = self.order.pop_front() {
                self.map.remove(&(u, n));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    blocked_until: Instant,
    last: Instant,
}

/// Failed logins per key (an account name or a client address): after
/// `free` failures each further one blocks for a doubling delay, up to 5 min.
pub struct Throttle<K> {
    free: u32,
    map: HashMap<K, Failures>,
}

const MAX_DELAY: Duration = Duration::from_secs(300);
const THROTTLE_CAP: usize = 50_000;

impl<K: Hash + Eq + Clone> Throttle<K> {
    pub fn new(free: u32) -> Throttle<K> {
        Throttle { free, map: HashMap::new() }
    }

    /// `Some(wait)` while `key` is blocked.
    pub fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let f = self.map.get(key)?;
        (now < f.blocked_until).then(|| f.blocked_until - now)
    }

    pub fn fail(&mut self, key: K, now: Instant) {
        if self.map.len() >= THROTTLE_CAP {
            self.prune(now);
        }
        let f = self.map.entry(key).or_insert(Failures { count: 0, blocked_until: now, last: now });
        f.count += 1;
        f.last = now;
        if f.count >= self.free {
            let exp = (f.count - self.free).min(16);
            let delay = Duration::from_secs(1u64 << exp).min(MAX_DELAY);
            f.blocked_until = now + delay;
        }
    }

    pub fn succeed(&mut self, key: &K) {
        self.map.remove(key);
    }

    /// Forgets keys quiet for an hour.
    pub fn prune(&mut self, now: Instant) {
        self.map.retain(|_, f| now.saturating_duration_since(f.last) < Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(20.0, 40.0);
        assert_eq!((0..50).filter(|_| b.take(t0)).count(), 40);
        // 100 ms later: 2 more tokens.
        let t1 = t0 + Duration::from_millis(100);
        assert_eq!((0..10).filter(|_| b.take(t1)).count(), 2);
    }

    #[test]
    fn nonces_expire_after_ten_minutes() {
        let t0 = Instant::now();
        let mut c = NonceCache::default();
        c.insert(1, "a", 7, t0);
        assert_eq!(c.get(1, "a", t0 + Duration::from_secs(60)), Some(7));
        assert_eq!(c.get(2, "a", t0), None, "per user");
        assert_eq!(c.get(1, "a", t0 + NONCE_TTL), None);
        assert!(c.is_empty());
    }

    #[test]
    fn throttle_blocks_after_free_failures_with_growing_delay() {
        let t0 = Instant::now();
        let mut t = Throttle::new(5);
        for _ in 0..4 {
            t.fail("ann", t0);
        }
        assert!(t.blocked(&"ann", t0).is_none());
        t.fail("ann", t0);
        assert_eq!(t.blocked(&"ann", t0), Some(Duration::from_secs(1)));
        t.fail("ann", t0);
        assert_eq!(t.blocked(&"ann", t0), Some(Duration::from_secs(2)));
        assert!(t.blocked(&"ann", t0 + Duration::from_secs(3)).is_none());
        t.succeed(&"ann");
        assert!(t.blocked(&"ann", t0).is_none());
    }
}
