//! How the Dynatrace clients of a run connect, time out, retry and go through a proxy.

use std::time::Duration;

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The wait before the first retry when the server gives no hint.
    pub base_delay: Duration,
    /// Growth of the wait per retry.
    pub multiplier: f64,
    /// No single wait is longer than this, server hints included.
    pub max_delay: Duration,
    /// Random spread of each wait, as a fraction of it (0.2 = ±20 %).
    pub jitter: f64,
}

/// Requests in flight to one host unless the settings say otherwise: room for several
/// environments of a Managed cluster at once (each environment paces itself, see
/// [`crate::live::pacing`]), and a bound on the connections a run opens to one server.
pub const DEFAULT_MAX_IN_FLIGHT_PER_HOST: usize = 32;

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (1 = first retry), without a server hint.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .multiplier
            .max(1.0)
            .powi(retry.saturating_sub(1) as i32);
        let raw = self.base_delay.as_secs_f64() * exp;
        let spread = 1.0 + self.jitter.clamp(0.0, 1.0) * (rand::random::<f64>() * 2.0 - 1.0);
        let secs = (raw * spread).min(self.max_delay.as_secs_f64()).max(0.0);
        Duration::from_secs_f64(secs)
    }

    /// A server-requested wait, capped, with a little jitter on top so that several processes
    /// told the same instant do not return together. Within one process the requests of a domain
    /// share one gate, so the spread is kept small: at most a quarter second.
    pub(super) fn hinted(&self, hint: Duration) -> Duration {
        let spread = (hint.as_secs_f64() * self.jitter.clamp(0.0, 1.0) * 0.5).min(0.25);
        let extra = spread * rand::random::<f64>();
        Duration::from_secs_f64(hint.as_secs_f64() + extra).min(self.max_delay)
    }
}

/// Timeouts and retries of a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    /// One attempt, body included.
    pub request_timeout: Duration,
    /// One logical request: every attempt and every wait between them.
    pub deadline: Duration,
    pub retry: RetryPolicy,
    /// Requests in flight to one host (scheme, host, port) at most, across every environment
    /// it serves.
    pub max_in_flight_per_host: usize,
    /// The proxy of https requests; none by default (the command line fills it in from the
    /// environment).
    pub proxy: ProxySettings,
}

impl Default for ClientSettings {
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            deadline: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            max_in_flight_per_host: DEFAULT_MAX_IN_FLIGHT_PER_HOST,
            proxy: ProxySettings::default(),
        }
    }
}

/// The proxy https requests go through (`HTTPS_PROXY`, else `ALL_PROXY`) and the hosts that
/// bypass it (`NO_PROXY`, in curl's format). Over https the proxy only relays an encrypted
/// tunnel (`CONNECT`). Plain http, allowed only to loopback, never goes through a proxy: the
/// proxy would read the token in clear text (reqwest's default, every system proxy for every
/// scheme, did exactly that with `HTTP_PROXY` set).
#[derive(Clone, Default, PartialEq)]
pub struct ProxySettings {
    pub https: Option<String>,
    pub no_proxy: Option<String>,
}

impl std::fmt::Debug for ProxySettings {
    // A proxy URL may carry a password (`http://user:secret@proxy:3128`): not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxySettings")
            .field("https", &self.https.as_ref().map(|_| "<set>"))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_millis(500),
            jitter: 0.2,
        };
        let first = policy.backoff(1);
        assert!(first >= Duration::from_millis(80) && first <= Duration::from_millis(120));
        let third = policy.backoff(3);
        assert!(third >= Duration::from_millis(320) && third <= Duration::from_millis(480));
        assert!(policy.backoff(9) <= Duration::from_millis(500));
        assert_eq!(
            policy.hinted(Duration::from_secs(100)),
            Duration::from_millis(500)
        );
    }
}
