//! A minimal local Lambda Runtime API (`/2018-06-01/runtime/...`) for timing cold starts and
//! driving one invocation of a real function binary.
//!
//! The first `GET .../invocation/next` gets the configured event (or, without one, is held open
//! so the process stays idle); later ones are held open. Everything the function does is
//! reported on a channel with the instant it happened.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

/// What the function did.
#[derive(Debug)]
pub enum Seen {
    /// A `GET .../invocation/next` arrived (headers read) at this instant.
    Next(Instant),
    /// The invocation response was posted.
    Response(Vec<u8>),
    /// An invocation or init error was posted.
    Error(String, Vec<u8>),
}

/// A running local Runtime API.
pub struct RuntimeApi {
    pub addr: String,
    pub events: Receiver<Seen>,
    stop: Arc<AtomicBool>,
}

impl RuntimeApi {
    /// Listens on a free loopback port; `event` is the payload of the first invocation.
    pub fn start(event: Option<Arc<Vec<u8>>>) -> Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let (tx, rx) = channel();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let stop2 = stop.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (tx, event, served) = (tx.clone(), event.clone(), served.clone());
                thread::spawn(move || {
                    let _ = serve(stream, &tx, event.as_deref(), &served);
                });
            }
        });
        Ok(RuntimeApi {
            addr,
            events: rx,
            stop,
        })
    }

    /// Waits for the next report.
    pub fn wait(&self, timeout: Duration) -> Result<Seen> {
        self.events
            .recv_timeout(timeout)
            .context("the function did not call the Runtime API in time")
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}

struct Request {
    method: String,
    path: String,
    body: Vec<u8>,
}

fn read_request(
    r: &mut BufReader<TcpStream>,
    on_headers: impl FnOnce(),
) -> Result<Option<Request>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 {
            bail!("connection closed in headers");
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            if k == "content-length" {
                length = v.parse().unwrap_or(0);
            } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
    }
    on_headers();
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk)?;
            body.extend_from_slice(&chunk[..n]);
            if n == 0 {
                break;
            }
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body)?;
    }
    Ok(Some(Request { method, path, body }))
}

fn respond(w: &mut TcpStream, status: &str, headers: &[(&str, String)], body: &[u8]) -> Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes())?;
    w.write_all(body)?;
    w.flush()?;
    Ok(())
}

fn serve(
    stream: TcpStream,
    tx: &Sender<Seen>,
    event: Option<&Vec<u8>>,
    served: &AtomicUsize,
) -> Result<()> {
    let mut w = stream.try_clone()?;
    let mut r = BufReader::new(stream);
    loop {
        let mut at = None;
        let Some(req) = read_request(&mut r, || at = Some(Instant::now()))? else {
            return Ok(());
        };
        let at = at.unwrap_or_else(Instant::now);
        if req.method == "GET" && req.path.ends_with("/runtime/invocation/next") {
            let _ = tx.send(Seen::Next(at));
            let first = served.fetch_add(1, Ordering::SeqCst) == 0;
            match event {
                Some(body) if first => {
                    let deadline = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64)
                        + 900_000;
                    respond(
                        &mut w,
                        "200 OK",
                        &[
                            ("Content-Type", "application/json".into()),
                            ("Lambda-Runtime-Aws-Request-Id", "bench-request-1".into()),
                            ("Lambda-Runtime-Deadline-Ms", deadline.to_string()),
                            (
                                "Lambda-Runtime-Invoked-Function-Arn",
                                "arn:aws:lambda:us-east-1:123456789012:function:kinesis-ingest"
                                    .into(),
                            ),
                            (
                                "Lambda-Runtime-Trace-Id",
                                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0".into(),
                            ),
                        ],
                        body,
                    )?;
                }
                // Hold the connection: the function stays idle until it is stopped.
                _ => loop {
                    thread::sleep(Duration::from_secs(3600));
                },
            }
        } else if req.method == "POST" && req.path.ends_with("/response") {
            let _ = tx.send(Seen::Response(req.body));
            respond(&mut w, "202 Accepted", &[], br#"{"status":"OK"}"#)?;
        } else if req.method == "POST" && req.path.ends_with("/error") {
            let _ = tx.send(Seen::Error(req.path.clone(), req.body));
            respond(&mut w, "202 Accepted", &[], br#"{"status":"OK"}"#)?;
        } else {
            respond(&mut w, "404 Not Found", &[], b"{}")?;
        }
    }
}
