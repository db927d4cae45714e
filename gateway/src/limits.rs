//! Abuse limits: open streams per user and per client IP, and the publish
//! rate of each service (a token bucket). Each refusal is a 429 with
//! `Retry-After`, so well-behaved clients back off and recover by themselves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::AppError;

/// Seconds a client refused for too many streams is told to wait.
const STREAM_RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum StreamKey {
    User(String),
    Ip(IpAddr),
}

/// Counts open streams per user and per IP.
#[derive(Debug)]
pub struct StreamLimits {
    per_user: usize,
    per_ip: usize,
    open: Mutex<HashMap<StreamKey, usize>>,
}

/// Held by an open stream; releases its slots when dropped.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    keys: Vec<StreamKey>,
}

impl StreamLimits {
    pub fn new(per_user: usize, per_ip: usize) -> Arc<Self> {
        Arc::new(StreamLimits {
            per_user,
            per_ip,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for the user (if known) and the IP (if known).
    pub fn acquire(
        self: &Arc<Self>,
        user: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<StreamPermit, AppError> {
        let mut keys = Vec::with_capacity(2);
        if let Some(user) = user {
            keys.push((StreamKey::User(user.to_owned()), self.per_user, "user"));
        }
        if let Some(ip) = ip {
            keys.push((StreamKey::Ip(ip), self.per_ip, "IP address"));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        for (key, max, what) in &keys {
            if open.get(key).copied().unwrap_or(0) >= *max {
                return Err(AppError::TooManyRequests {
                    code: "too_many_streams",
                    message: format!("this {what} already has {max} open streams; close one or share one stream per page"),
                    retry_after_secs: STREAM_RETRY_AFTER_SECS,
                });
            }
        }
        for (key, ..) in &keys {
            *open.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(StreamPermit {
            limits: self.clone(),
            keys: keys.into_iter().map(|(k, ..)| k).collect(),
        })
    }

    /// Streams open for a user (for tests and stats).
    pub fn open_for_user(&self, user: &str) -> usize {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(&StreamKey::User(user.to_owned()))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        let mut open = self.limits.open.lock().unwrap_or_else(|p| p.into_inner());
        for key in &self.keys {
            if let Some(count) = open.get_mut(key) {
                *count -= 1;
                if *count == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

/// Publish rate per service.
pub struct PublishLimiter {
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl std::fmt::Debug for PublishLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublishLimiter")
            .field("enabled", &self.limiter.is_some())
            .finish()
    }
}

impl PublishLimiter {
    /// `rate` logs per second with bursts of `burst`; a zero rate disables it.
    pub fn new(rate: u32, burst: u32) -> Self {
        let limiter = NonZeroU32::new(rate).map(|rate| {
            let burst = NonZeroU32::new(burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        PublishLimiter {
            limiter,
            clock: DefaultClock::default(),
        }
    }

    /// Takes `count` logs from the service's bucket, or says how long to wait.
    pub fn check(&self, service: &str, count: usize) -> Result<(), AppError> {
        let (Some(limiter), Some(n)) = (
            &self.limiter,
            NonZeroU32::new(u32::try_from(count).unwrap_or(u32::MAX)),
        ) else {
            return Ok(());
        };
        match limiter.check_key_n(&service.to_owned(), n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Err(AppError::TooManyRequests {
                    code: "rate_limited",
                    message: format!("{service} is publishing faster than its limit; retry after the indicated delay"),
                    retry_after_secs: wait.as_secs() + 1,
                })
            }
            Err(capacity) => Err(AppError::TooManyRequests {
                code: "rate_limited",
                message: format!(
                    "a batch of {count} logs exceeds the burst size of {} for {service}; send smaller batches",
                    capacity.0
                ),
                retry_after_secs: 1,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slots_are_counted_per_user_and_ip_and_released() {
        let limits = StreamLimits::new(2, 3);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a1 = limits.acquire(Some("alice"), Some(ip)).unwrap();
        let _a2 = limits.acquire(Some("alice"), Some(ip)).unwrap();
        let err = limits.acquire(Some("alice"), Some(ip)).unwrap_err();
        assert_eq!(
            (err.code(), err.status().as_u16()),
            ("too_many_streams", 429)
        );
        let _b1 = limits.acquire(Some("bob"), Some(ip)).unwrap();
        assert!(
            limits.acquire(Some("carol"), Some(ip)).is_err(),
            "the IP is full"
        );
        drop(a1);
        assert_eq!(limits.open_for_user("alice"), 1);
        assert!(
            limits.acquire(Some("carol"), Some(ip)).is_ok(),
            "recovers when a stream closes"
        );
    }

    #[test]
    fn publish_bucket_refuses_then_refills() {
        let limiter = PublishLimiter::new(1000, 100);
        assert!(limiter.check("etl", 100).is_ok());
        let err = limiter.check("etl", 50).unwrap_err();
        assert_eq!(err.code(), "rate_limited");
        assert!(
            limiter.check("faas", 100).is_ok(),
            "buckets are per service"
        );
        assert!(limiter.check("etl", 101).is_err(), "larger than the burst");
        std::thread::sleep(std::time::Duration::from_millis(120));
        assert!(limiter.check("etl", 50).is_ok(), "refilled at 1000/s");
        assert!(PublishLimiter::new(0, 0).check("etl", 1_000_000).is_ok());
    }
}
