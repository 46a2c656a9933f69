//! Request limits: a token bucket per target (requests per second) and a process-wide
//! concurrency limit, applied around a [`ModelClient`] so the round runner needs no change.
//! Time comes from tokio, so tests drive it with `tokio::time::pause()`.

use crate::provider::{CompletionRequest, Fingerprint, ModelClient};
use crate::sample::{Completion, SampleError};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::{Duration, Instant};

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    pub fn new(rate: f64, burst: f64) -> TokenBucket {
        let burst = burst.max(1.0);
        TokenBucket {
            rate: rate.max(1e-6),
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Waits until a token is available and takes it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.saturating_duration_since(s.1).as_secs_f64();
                s.0 = (s.0 + elapsed * self.rate).min(self.burst);
                s.1 = now;
                if s.0 >= 1.0 {
                    s.0 -= 1.0;
                    return;
                }
                Duration::from_secs_f64((1.0 - s.0) / self.rate)
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// A client that takes a global concurrency permit and a rate token before every request.
pub struct LimitedClient {
    inner: Arc<dyn ModelClient>,
    global: Arc<Semaphore>,
    bucket: Option<Arc<TokenBucket>>,
}

impl LimitedClient {
    pub fn new(
        inner: Arc<dyn ModelClient>,
        global: Arc<Semaphore>,
        bucket: Option<Arc<TokenBucket>>,
    ) -> LimitedClient {
        LimitedClient {
            inner,
            global,
            bucket,
        }
    }
}

impl ModelClient for LimitedClient {
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
    ) -> BoxFuture<'a, Result<Completion, SampleError>> {
        Box::pin(async move {
            if let Some(b) = &self.bucket {
                b.acquire().await;
            }
            // The semaphore is never closed; if it were, run unlimited rather than fail.
            let _permit = self.global.acquire().await.ok();
            self.inner.complete(request).await
        })
    }

    fn fingerprint(&self) -> BoxFuture<'_, Result<Fingerprint, SampleError>> {
        self.inner.fingerprint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_spaces_requests_at_the_rate_after_the_burst() {
        let b = TokenBucket::new(2.0, 1.0);
        let start = Instant::now();
        for _ in 0..5 {
            b.acquire().await;
        }
        // One immediately, then one every 500 ms.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(2000), "{took:?}");
        assert!(took < Duration::from_millis(2100), "{took:?}");
    }
}
