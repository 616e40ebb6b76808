//! Lambda's asynchronous invocation, as the demo and the soak drive it: after a function error
//! the same event is invoked again, twice ([`ATTEMPTS`] in all); what still fails is what Lambda
//! sends to the on-failure destination.

use std::future::Future;
use std::time::Duration;

/// Attempts Lambda makes for one asynchronous event (the first and two retries).
pub const ATTEMPTS: usize = 3;

/// What the invocations of one event gave.
#[derive(Debug)]
pub struct Invoked<T, E> {
    /// Invocations made (1 to [`ATTEMPTS`]).
    pub attempts: usize,
    /// The first success, or the last error when every attempt failed.
    pub result: Result<T, E>,
}

/// Invokes `f` until it succeeds or [`ATTEMPTS`] invocations have failed, waiting `pause`
/// between attempts.
pub async fn invoke_async<T, E, F, Fut>(pause: Duration, mut f: F) -> Invoked<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut attempts = 0;
    loop {
        attempts += 1;
        match f().await {
            Ok(v) => {
                return Invoked {
                    attempts,
                    result: Ok(v),
                }
            }
            Err(e) if attempts >= ATTEMPTS => {
                return Invoked {
                    attempts,
                    result: Err(e),
                }
            }
            Err(_) => {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retries_twice_then_gives_the_last_error() {
        let mut calls = 0;
        let out: Invoked<(), usize> = invoke_async(Duration::ZERO, || {
            calls += 1;
            let n = calls;
            async move { Err(n) }
        })
        .await;
        assert_eq!((out.attempts, out.result), (3, Err(3)));

        let mut calls = 0;
        let out: Invoked<usize, ()> = invoke_async(Duration::ZERO, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 2 {
                    Err(())
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!((out.attempts, out.result), (2, Ok(2)));
    }
}
