//! HTTP mode of the fault proxy: one request per client connection is read (bounded head and
//! body, Content-Length or chunked, `Expect: 100-continue` answered), then faulted or forwarded.

use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{reset, timed, Decision, Shared, MAX_BODY, MAX_HEAD};

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

pub(super) async fn serve_http(s: &Shared, mut client: TcpStream) -> Result<()> {
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
