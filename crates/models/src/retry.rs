//! Retry policy: which failures are retried, how long to wait, and `Retry-After` parsing.
//!
//! Waits use exponential back-off with full jitter (a uniformly random wait between zero and
//! `min(cap, base · 2^retry)`), and never less than what the server asked for in `Retry-After`.

use std::time::{Duration, SystemTime};

/// Back-off timing. The defaults suit remote endpoints; tests use small values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryTiming {
    /// Upper bound of the first wait.
    pub base: Duration,
    /// Upper bound of any computed wait (a longer `Retry-After` is still honoured).
    pub cap: Duration,
    /// Cool-down of a rate-limited model when the server gave no `Retry-After`.
    pub default_cooldown: Duration,
}

impl Default for RetryTiming {
    fn default() -> Self {
        RetryTiming {
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            default_cooldown: Duration::from_secs(10),
        }
    }
}

impl RetryTiming {
    /// The wait before retry number `retry` (0-based), with full jitter, at least `retry_after`.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(2u32.saturating_pow(retry.min(30)))
            .min(self.cap);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        let jittered = Duration::from_millis(fastrand::u64(0..=millis));
        match retry_after {
            Some(wait) => jittered.max(wait),
            None => jittered,
        }
    }
}

/// Whether an HTTP status is worth retrying: 408, 409, 429 and every 5xx.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || (500..=599).contains(&status)
}

/// The longest `Retry-After` honoured (one day); a server asking for more gets this. It keeps
/// `Instant` arithmetic far from overflow whatever the header says.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses a `Retry-After` value: delta-seconds (integer or, leniently, fractional) or an HTTP
/// date, relative to `now`. A date in the past means "now" (zero). Capped at
/// [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        if secs.is_nan() || secs < 0.0 {
            return None;
        }
        // Too large for a `Duration` (or infinite): the cap applies.
        Duration::try_from_secs_f64(secs).unwrap_or(MAX_RETRY_AFTER)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("0.5", now),
            Some(Duration::from_millis(500))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(7)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
        assert_eq!(parse_retry_after("-0.5", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
    }

    #[test]
    fn huge_retry_after_is_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for v in [
            "18446744073709551615",
            "1e300",
            "inf",
            "99999999999999999999",
        ] {
            assert_eq!(parse_retry_after(v, now), Some(MAX_RETRY_AFTER), "{v}");
        }
        let far = httpdate::fmt_http_date(now + Duration::from_secs(10 * 365 * 24 * 3600));
        assert_eq!(parse_retry_after(&far, now), Some(MAX_RETRY_AFTER));
    }

    #[test]
    fn delay_is_jittered_under_the_ceiling_and_honours_retry_after() {
        let t = RetryTiming {
            base: Duration::from_millis(100),
            cap: Duration::from_millis(250),
            default_cooldown: Duration::from_secs(1),
        };
        for retry in 0..10 {
            let d = t.delay(retry, None);
            let ceiling = Duration::from_millis((100u64 << retry.min(20)).min(250));
            assert!(d <= ceiling, "{d:?} > {ceiling:?}");
        }
        assert!(t.delay(0, Some(Duration::from_secs(2))) >= Duration::from_secs(2));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 409, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s), "{s}");
        }
        for s in [400, 401, 403, 404, 422] {
            assert!(!is_retryable_status(s), "{s}");
        }
    }
}
