//! TCP mode of the fault proxy (PostgreSQL): faults per connection.

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use tokio::net::TcpStream;

use super::{reset, timed, Decision, Shared};

/// TCP mode: per connection, `reset` (and `error_500` / `throttle`, which have no TCP form)
/// drops it at connect; `reset_after` cuts it, both ways, at a random moment within
/// `cut_after` of its start (mid-session, possibly mid-transaction); `delay` delays connect.
pub(super) async fn serve_tcp(s: &Shared, mut client: TcpStream) -> Result<()> {
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
