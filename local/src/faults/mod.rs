//! A loopback fault proxy for tests: sits in front of the local AWS API (moto) or PostgreSQL
//! and injects the failures real services produce, so the SDK's retries, the handlers' error
//! classification and Lambda's retry semantics all meet real faults on the wire.
//!
//! HTTP mode ([`FaultProxy::http`]) reads one request per client connection (Content-Length or
//! chunked body; `Expect: 100-continue` answered), decides from a seeded RNG, and either
//! answers the fault itself or forwards the request upstream with `Connection: close` and
//! relays the response. Faults: 500 `InternalError`, 503 `SlowDown` (S3, REST-XML) or a JSON
//! `ThrottlingException` (JSON-protocol services, recognised by `X-Amz-Target`), connection
//! reset before forwarding, reset after forwarding (the request took effect but the answer is
//! lost), and a delay before forwarding. TCP mode ([`FaultProxy::tcp`], e.g. PostgreSQL)
//! decides per connection: reset at connect, delay, or pipe bytes both ways.
//!
//! Everything binds 127.0.0.1; reads are bounded in size and every wait in time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use http::serve_http;
use tcp::serve_tcp;

mod http;
mod put_records;
mod tcp;

/// Largest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 256 * 1024 * 1024;
/// Longest wait for a client or upstream read or write.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// Per-request fault probabilities (each in `[0, 1]`, summed at most 1) and the delay bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// 500 InternalError.
    pub error_500: f64,
    /// 503 SlowDown (S3) / 400 ThrottlingException (JSON protocols).
    pub throttle: f64,
    /// Connection dropped before the request is forwarded.
    pub reset: f64,
    /// Request forwarded and executed, then the connection dropped without the answer.
    pub reset_after: f64,
    /// Request delayed by up to `max_delay`, then forwarded.
    pub delay: f64,
    pub max_delay: Duration,
    /// TCP mode: longest life of a connection chosen for `reset_after`.
    pub cut_after: Duration,
    /// Kinesis PutRecords only: each entry of a request that is forwarded fails with this
    /// probability, as Kinesis fails single entries of a successful call: the entry is taken out
    /// of the request before it is forwarded (so it is not written) and put back into the
    /// answer with an `ErrorCode` (`ProvisionedThroughputExceededException` or
    /// `InternalFailure`) and a matching `FailedRecordCount`.
    pub entry_fail: f64,
}

impl Rates {
    /// No faults: a transparent proxy.
    pub const NONE: Rates = Rates {
        error_500: 0.0,
        throttle: 0.0,
        reset: 0.0,
        reset_after: 0.0,
        delay: 0.0,
        max_delay: Duration::ZERO,
        cut_after: Duration::ZERO,
        entry_fail: 0.0,
    };

    /// Every kind at `each`, delays up to 50 ms.
    pub fn uniform(each: f64) -> Rates {
        Rates {
            error_500: each,
            throttle: each,
            reset: each,
            reset_after: each,
            delay: each,
            max_delay: Duration::from_millis(50),
            cut_after: Duration::from_secs(2),
            entry_fail: 0.0,
        }
    }
}

/// What the proxy did, by kind.
#[derive(Debug, Default)]
pub struct FaultStats {
    pub requests: AtomicU64,
    pub forwarded: AtomicU64,
    pub error_500: AtomicU64,
    pub throttle: AtomicU64,
    pub reset: AtomicU64,
    pub reset_after: AtomicU64,
    pub delay: AtomicU64,
    /// Requests that could not be read or relayed (client gone, upstream error).
    pub io_errors: AtomicU64,
    /// PutRecords entries in requests that were forwarded (failed ones included).
    pub put_entries: AtomicU64,
    /// PutRecords entries failed by [`Rates::entry_fail`].
    pub entry_failures: AtomicU64,
}

/// A snapshot of [`FaultStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    pub requests: u64,
    pub forwarded: u64,
    pub error_500: u64,
    pub throttle: u64,
    pub reset: u64,
    pub reset_after: u64,
    pub delay: u64,
    pub io_errors: u64,
    pub put_entries: u64,
    pub entry_failures: u64,
}

impl FaultCounts {
    /// Faults injected (delays included).
    pub fn injected(&self) -> u64 {
        self.error_500
            + self.throttle
            + self.reset
            + self.reset_after
            + self.delay
            + self.entry_failures
    }
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests {} (forwarded {}), injected: 500 {}, throttle {}, reset {}, reset-after-forward {}, delay {}, PutRecords entries failed {} of {}; io errors {}",
            self.requests,
            self.forwarded,
            self.error_500,
            self.throttle,
            self.reset,
            self.reset_after,
            self.delay,
            self.entry_failures,
            self.put_entries,
            self.io_errors
        )
    }
}

impl FaultStats {
    pub fn snapshot(&self) -> FaultCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FaultCounts {
            requests: g(&self.requests),
            forwarded: g(&self.forwarded),
            error_500: g(&self.error_500),
            throttle: g(&self.throttle),
            reset: g(&self.reset),
            reset_after: g(&self.reset_after),
            delay: g(&self.delay),
            io_errors: g(&self.io_errors),
            put_entries: g(&self.put_entries),
            entry_failures: g(&self.entry_failures),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Forward,
    Error500,
    Throttle,
    Reset,
    ResetAfter,
    Delay(Duration),
}

struct Shared {
    upstream: String,
    rates: Mutex<Rates>,
    rng: Mutex<fastrand::Rng>,
    stats: FaultStats,
}

impl Shared {
    fn rates(&self) -> Rates {
        *self.rates.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Which of `n` PutRecords entries fail ([`Rates::entry_fail`]).
    fn failing_entries(&self, n: usize) -> Vec<bool> {
        let p = self.rates().entry_fail;
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        (0..n).map(|_| p > 0.0 && rng.f64() < p).collect()
    }

    fn decide(&self) -> Decision {
        let rates = self.rates();
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let x = rng.f64();
        let mut acc = 0.0;
        for (p, d) in [
            (rates.error_500, Decision::Error500),
            (rates.throttle, Decision::Throttle),
            (rates.reset, Decision::Reset),
            (rates.reset_after, Decision::ResetAfter),
        ] {
            acc += p;
            if x < acc {
                return d;
            }
        }
        acc += rates.delay;
        if x < acc {
            let max = rates.max_delay.as_millis().max(1) as u64;
            return Decision::Delay(Duration::from_millis(rng.u64(0..=max)));
        }
        Decision::Forward
    }
}

/// A running fault proxy; stops when dropped.
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>` (HTTP mode) or `127.0.0.1:<port>` (TCP mode).
    pub endpoint: String,
    pub port: u16,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// An HTTP fault proxy in front of `upstream` (`http://127.0.0.1:PORT`), decisions from
    /// `seed`. Must be called inside a tokio runtime.
    pub async fn http(upstream: &str, rates: Rates, seed: u64) -> Result<FaultProxy> {
        let addr = upstream
            .strip_prefix("http://")
            .context("upstream must be http://host:port")?
            .trim_end_matches('/')
            .to_string();
        Self::start(addr, rates, seed, true).await
    }

    /// A TCP fault proxy in front of `upstream` (`127.0.0.1:PORT`): faults per connection.
    pub async fn tcp(upstream: &str, rates: Rates, seed: u64) -> Result<FaultProxy> {
        Self::start(upstream.to_string(), rates, seed, false).await
    }

    async fn start(upstream: String, rates: Rates, seed: u64, http: bool) -> Result<FaultProxy> {
        if !upstream.starts_with("127.0.0.1:") && !upstream.starts_with("localhost:") {
            bail!("the fault proxy only forwards to loopback, not {upstream}");
        }
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let shared = Arc::new(Shared {
            upstream,
            rates: Mutex::new(rates),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            stats: FaultStats::default(),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let r = if http {
                        serve_http(&s, sock).await
                    } else {
                        serve_tcp(&s, sock).await
                    };
                    if r.is_err() {
                        s.stats.io_errors.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        Ok(FaultProxy {
            endpoint: if http {
                format!("http://127.0.0.1:{port}")
            } else {
                format!("127.0.0.1:{port}")
            },
            port,
            shared,
            task,
        })
    }

    /// Changes the fault rates from now on.
    pub fn set_rates(&self, rates: Rates) {
        *self.shared.rates.lock().unwrap_or_else(|p| p.into_inner()) = rates;
    }

    /// What the proxy has done so far.
    pub fn counts(&self) -> FaultCounts {
        self.shared.stats.snapshot()
    }
}

/// Runs one socket operation under [`IO_TIMEOUT`].
async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: timed out"),
    }
}

/// Drops a socket with RST (linger 0) rather than a clean FIN.
fn reset(sock: TcpStream) {
    // tokio deprecates `set_linger` because a zero linger blocks nothing on a nonblocking
    // socket and just sends RST on close, which is exactly what is wanted here.
    #[allow(deprecated)]
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(sock);
}
