//! HTTP mode of the fault proxy: one request per client connection is read (bounded head and
//! body, Content-Length or chunked, `Expect: 100-continue` answered), then faulted or forwarded.

use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{put_records, reset, timed, Decision, Shared, MAX_BODY, MAX_HEAD};

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

    // Kinesis PutRecords: failed entries are taken out here and put back into the answer.
    let is_put = header(&head_text, "x-amz-target").is_some_and(|t| t.ends_with(".PutRecords"))
        && header(&head_text, "transfer-encoding").is_none();
    let mut body = body;
    let mut failing: Option<Vec<bool>> = None;
    if is_put {
        let n = put_records::entry_count(&body)?;
        let f = s.failing_entries(n);
        let failed = f.iter().filter(|x| **x).count();
        s.stats.put_entries.fetch_add(n as u64, Ordering::Relaxed);
        s.stats
            .entry_failures
            .fetch_add(failed as u64, Ordering::Relaxed);
        if failed > 0 && failed == n {
            let answer = put_records::with_failures(None, &f)?;
            let resp = json_response(&answer);
            timed("write response", client.write_all(&resp)).await?;
            let _ = client.shutdown().await;
            return Ok(());
        }
        if failed > 0 {
            body = put_records::without_failing(&body, &f)?;
            failing = Some(f);
        }
    }

    // Forward with `Connection: close` (and without `Expect`), then relay until EOF.
    let mut out = Vec::with_capacity(head_text.len() + body.len() + 32);
    for (i, line) in head_text.trim_end_matches("\r\n").split("\r\n").enumerate() {
        if i > 0 {
            let name = line.split(':').next().unwrap_or("").trim();
            let rewritten = failing.is_some() && name.eq_ignore_ascii_case("content-length");
            if name.eq_ignore_ascii_case("connection")
                || name.eq_ignore_ascii_case("expect")
                || rewritten
            {
                continue;
            }
        }
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if failing.is_some() {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
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
    let resp = match &failing {
        Some(f) => merge_put_answer(resp, f)?,
        None => resp,
    };
    // Tell the client this connection ends here, whatever upstream said.
    let resp = force_close(resp);
    timed("write response", client.write_all(&resp)).await?;
    let _ = client.shutdown().await;
    Ok(())
}

/// A 200 answer of the JSON protocol.
fn json_response(body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\nx-amzn-RequestId: fault\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// Upstream's PutRecords answer with the failed entries put back (other statuses as they are).
fn merge_put_answer(resp: Vec<u8>, failing: &[bool]) -> Result<Vec<u8>> {
    let i = find(&resp, b"\r\n\r\n").context("upstream answer without a head")?;
    let head = std::str::from_utf8(&resp[..i]).context("upstream head")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Ok(resp);
    }
    if header(head, "transfer-encoding").is_some() {
        bail!("chunked PutRecords answers are not rewritten");
    }
    let answer = put_records::with_failures(Some(&resp[i + 4..]), failing)?;
    Ok(json_response(&answer))
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
