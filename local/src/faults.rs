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
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

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
}

impl FaultCounts {
    /// Faults injected (delays included).
    pub fn injected(&self) -> u64 {
        self.error_500 + self.throttle + self.reset + self.reset_after + self.delay
    }
}

impl std::fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests {} (forwarded {}), injected: 500 {}, throttle {}, reset {}, reset-after-forward {}, delay {}; io errors {}",
            self.requests,
            self.forwarded,
            self.error_500,
            self.throttle,
            self.reset,
            self.reset_after,
            self.delay,
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
    fn decide(&self) -> Decision {
        let rates = *self.rates.lock().unwrap_or_else(|p| p.into_inner());
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

async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(IO_TIMEOUT, f).await {
        Ok(r) => r.with_context(|| what.to_string()),
        Err(_) => bail!("{what}: timed out"),
    }
}

/// Reads until `\r\n\r\n`; returns the head (including the blank line) and any bytes after it.
async fn read_head(sock: &mut TcpStream) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Ok(Some((buf, rest)));
        }
        if buf.len() > MAX_HEAD {
            bail!("request head too large");
        }
        let n = timed("read head", sock.read(&mut chunk)).await?;
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            bail!("connection closed inside a head");
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads a body of `len` bytes, starting with `have`.
async fn read_exact_body(sock: &mut TcpStream, mut have: Vec<u8>, len: usize) -> Result<Vec<u8>> {
    if len > MAX_BODY {
        bail!("body too large");
    }
    let mut chunk = vec![0u8; 64 * 1024];
    while have.len() < len {
        let n = timed("read body", sock.read(&mut chunk)).await?;
        if n == 0 {
            bail!("connection closed inside a body");
        }
        have.extend_from_slice(&chunk[..n]);
    }
    have.truncate(len);
    Ok(have)
}

/// Reads a chunked body (raw, as sent, including the terminating chunk and trailers).
async fn read_chunked_body(sock: &mut TcpStream, mut have: Vec<u8>) -> Result<Vec<u8>> {
    let mut chunk = vec![0u8; 64 * 1024];
    let mut pos = 0usize;
    loop {
        // One chunk-size line at `pos`.
        let line_end = loop {
            if let Some(i) = find(&have[pos..], b"\r\n") {
                break pos + i;
            }
            if have.len() > MAX_BODY {
                bail!("body too large");
            }
            let n = timed("read chunk", sock.read(&mut chunk)).await?;
            if n == 0 {
                bail!("connection closed inside a chunked body");
            }
            have.extend_from_slice(&chunk[..n]);
        };
        let size_text = std::str::from_utf8(&have[pos..line_end]).context("chunk size")?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .context("chunk size")?;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                if let Some(i) = find(&have[line_end..], b"\r\n\r\n") {
                    have.truncate(line_end + i + 4);
                    return Ok(have);
                }
                if have.len() > MAX_BODY {
                    bail!("body too large");
                }
                let n = timed("read trailer", sock.read(&mut chunk)).await?;
                if n == 0 {
                    bail!("connection closed inside trailers");
                }
                have.extend_from_slice(&chunk[..n]);
            }
        }
        let next = line_end + 2 + size + 2;
        if next > MAX_BODY {
            bail!("body too large");
        }
        while have.len() < next {
            let n = timed("read chunk data", sock.read(&mut chunk)).await?;
            if n == 0 {
                bail!("connection closed inside a chunk");
            }
            have.extend_from_slice(&chunk[..n]);
        }
        pos = next;
    }
}

fn fault_response(head: &str, status: u16, json_code: &str, xml_code: &str) -> Vec<u8> {
    let (ctype, body) = if header(head, "x-amz-target").is_some() {
        (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{json_code}","message":"injected by the sluice fault proxy"}}"#),
        )
    } else {
        (
            "application/xml",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{xml_code}</Code><Message>injected by the sluice fault proxy</Message><RequestId>fault</RequestId></Error>"
            ),
        )
    };
    let reason = if status == 500 {
        "Internal Server Error"
    } else if status == 503 {
        "Slow Down"
    } else {
        "Bad Request"
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nx-amzn-RequestId: fault\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Drops a socket with RST (linger 0) rather than a clean FIN.
fn reset(sock: TcpStream) {
    // tokio deprecates `set_linger` because a zero linger blocks nothing on a nonblocking
    // socket and just sends RST on close, which is exactly what is wanted here.
    #[allow(deprecated)]
    let _ = sock.set_linger(Some(Duration::ZERO));
    drop(sock);
}

async fn serve_http(s: &Shared, mut client: TcpStream) -> Result<()> {
    let Some((head, rest)) = read_head(&mut client).await? else {
        return Ok(());
    };
    let head_text = String::from_utf8(head).context("request head is not UTF-8")?;
    s.stats.requests.fetch_add(1, Ordering::Relaxed);
    let expect_continue =
        header(&head_text, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if expect_continue {
        timed(
            "write 100",
            client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n"),
        )
        .await?;
    }
    let body = if header(&head_text, "transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        read_chunked_body(&mut client, rest).await?
    } else {
        let len = header(&head_text, "content-length")
            .map(|v| v.parse::<usize>().context("content-length"))
            .transpose()?
            .unwrap_or(0);
        read_exact_body(&mut client, rest, len).await?
    };

    let decision = s.decide();
    let answer = |status, json, xml| fault_response(&head_text, status, json, xml);
    match decision {
        Decision::Error500 => {
            s.stats.error_500.fetch_add(1, Ordering::Relaxed);
            let resp = answer(500, "InternalFailure", "InternalError");
            timed("write fault", client.write_all(&resp)).await?;
            let _ = client.shutdown().await;
            return Ok(());
        }
        Decision::Throttle => {
            s.stats.throttle.fetch_add(1, Ordering::Relaxed);
            let json = header(&head_text, "x-amz-target").is_some();
            let resp = if json {
                answer(400, "ThrottlingException", "SlowDown")
            } else {
                answer(503, "ThrottlingException", "SlowDown")
            };
            timed("write fault", client.write_all(&resp)).await?;
            let _ = client.shutdown().await;
            return Ok(());
        }
        Decision::Reset => {
            s.stats.reset.fetch_add(1, Ordering::Relaxed);
            reset(client);
            return Ok(());
        }
        Decision::Delay(d) => {
            s.stats.delay.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(d).await;
        }
        Decision::ResetAfter | Decision::Forward => {}
    }

    // Forward with `Connection: close` (and without `Expect`), then relay until EOF.
    let mut out = Vec::with_capacity(head_text.len() + body.len() + 32);
    for (i, line) in head_text.trim_end_matches("\r\n").split("\r\n").enumerate() {
        if i > 0 {
            let name = line.split(':').next().unwrap_or("").trim();
            if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("expect") {
                continue;
            }
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&body);
    let mut up = timed("connect upstream", TcpStream::connect(&s.upstream)).await?;
    timed("write upstream", up.write_all(&out)).await?;
    let mut resp = Vec::new();
    timed("read upstream", up.read_to_end(&mut resp)).await?;
    s.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    if decision == Decision::ResetAfter {
        s.stats.reset_after.fetch_add(1, Ordering::Relaxed);
        reset(client);
        return Ok(());
    }
    // Tell the client this connection ends here, whatever upstream said.
    let resp = force_close(resp);
    timed("write response", client.write_all(&resp)).await?;
    let _ = client.shutdown().await;
    Ok(())
}

/// Makes a response carry `Connection: close` (so the client does not reuse the connection).
fn force_close(resp: Vec<u8>) -> Vec<u8> {
    let Some(i) = find(&resp, b"\r\n\r\n") else {
        return resp;
    };
    let Ok(head) = std::str::from_utf8(&resp[..i]) else {
        return resp;
    };
    let mut out = Vec::with_capacity(resp.len() + 20);
    for (n, line) in head.split("\r\n").enumerate() {
        if n > 0
            && line
                .split(':')
                .next()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case("connection"))
        {
            continue;
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&resp[i + 4..]);
    out
}

/// TCP mode: per connection, `reset` (and `error_500` / `throttle`, which have no TCP form)
/// drops it at connect; `reset_after` cuts it, both ways, at a random moment within
/// `cut_after` of its start (mid-session, possibly mid-transaction); `delay` delays connect.
async fn serve_tcp(s: &Shared, mut client: TcpStream) -> Result<()> {
    s.stats.requests.fetch_add(1, Ordering::Relaxed);
    let mut lifetime = None;
    match s.decide() {
        Decision::Reset | Decision::Error500 | Decision::Throttle => {
            s.stats.reset.fetch_add(1, Ordering::Relaxed);
            reset(client);
            return Ok(());
        }
        Decision::ResetAfter => {
            let rates = *s.rates.lock().unwrap_or_else(|p| p.into_inner());
            let max = rates.cut_after.as_millis().max(1) as u64;
            let ms = s.rng.lock().unwrap_or_else(|p| p.into_inner()).u64(0..=max);
            lifetime = Some(Duration::from_millis(ms));
        }
        Decision::Delay(d) => {
            s.stats.delay.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(d).await;
        }
        Decision::Forward => {}
    }
    let mut up = timed("connect upstream", TcpStream::connect(&s.upstream)).await?;
    s.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    match lifetime {
        // Bounded by the life of either side; no timeout on idle pooled connections.
        None => {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
        }
        Some(t) => {
            let cut = tokio::time::timeout(t, tokio::io::copy_bidirectional(&mut client, &mut up))
                .await
                .is_err();
            if cut {
                s.stats.reset_after.fetch_add(1, Ordering::Relaxed);
                reset(client);
                reset(up);
            }
        }
    }
    Ok(())
}
