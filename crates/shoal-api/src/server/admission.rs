//! [`Admission`]: bounds on request bodies in memory and on requests processed at once.
//!
//! A request reserves its body's size (`Content-Length`) before the body is read, and a processing
//! slot once the body is read and its signature checked; both are held until the response is
//! built. When either is exhausted the request waits in one bounded queue, for a bounded time;
//! past the queue's length or its timeout the request is answered `ThrottlingException`, which the
//! AWS SDKs retry with backoff.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use super::config::ServerConfig;
use crate::error::{ApiError, ErrorKind};

/// Body memory is counted in KiB, so any budget fits a semaphore's `u32` acquisitions.
const UNIT: usize = 1024;

/// The shared admission state of one server.
#[derive(Debug)]
pub(crate) struct Admission {
    bodies: Semaphore,
    work: Semaphore,
    waiting: AtomicUsize,
    max_queued: usize,
    queue_timeout: Duration,
}

/// Why a request was refused admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Overloaded {
    /// The queue was full.
    QueueFull,
    /// The request waited [`ServerConfig::queue_timeout`].
    Timeout,
}

impl From<Overloaded> for ApiError {
    fn from(o: Overloaded) -> Self {
        tracing::debug!(reason = ?o, "request throttled");
        ApiError::new(
            ErrorKind::Throttling,
            "Rate of requests exceeds the allowed throughput.",
        )
    }
}

/// Decrements the waiting count when a queued request stops waiting (admitted, refused or
/// cancelled because its connection closed).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Admission {
    pub(crate) fn new(config: &ServerConfig) -> Self {
        Admission {
            bodies: Semaphore::new(config.max_body_bytes_in_flight.div_ceil(UNIT)),
            work: Semaphore::new(config.max_concurrent_requests),
            waiting: AtomicUsize::new(0),
            max_queued: config.max_queued_requests,
            queue_timeout: config.queue_timeout,
        }
    }

    /// Reserves memory for a body of `bytes` bytes (`None` for an empty body).
    pub(crate) async fn reserve_body(
        &self,
        bytes: usize,
    ) -> Result<Option<SemaphorePermit<'_>>, Overloaded> {
        if bytes == 0 {
            return Ok(None);
        }
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX);
        self.acquire(&self.bodies, units).await.map(Some)
    }

    /// A processing slot.
    pub(crate) async fn enter(&self) -> Result<SemaphorePermit<'_>, Overloaded> {
        self.acquire(&self.work, 1).await
    }

    async fn acquire<'a>(
        &'a self,
        semaphore: &'a Semaphore,
        n: u32,
    ) -> Result<SemaphorePermit<'a>, Overloaded> {
        if let Ok(permit) = semaphore.try_acquire_many(n) {
            return Ok(permit);
        }
        let before = self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        if before >= self.max_queued {
            return Err(Overloaded::QueueFull);
        }
        match tokio::time::timeout(self.queue_timeout, semaphore.acquire_many(n)).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphores are never closed; a closed one refuses like a timeout.
            Ok(Err(_)) | Err(_) => Err(Overloaded::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(body_mib: usize, slots: usize, queued: usize) -> Admission {
        Admission::new(&ServerConfig {
            max_body_bytes_in_flight: body_mib * 1024 * 1024,
            max_concurrent_requests: slots,
            max_queued_requests: queued,
            queue_timeout: Duration::from_millis(50),
            ..ServerConfig::default()
        })
    }

    #[tokio::test]
    async fn body_memory_is_bounded_and_returned() {
        let a = admission(16, 8, 8);
        let big = a.reserve_body(10 * 1024 * 1024).await.unwrap();
        assert!(a.reserve_body(7 * 1024 * 1024).await.is_err());
        assert!(a.reserve_body(6 * 1024 * 1024).await.is_ok());
        drop(big);
        assert!(a.reserve_body(16 * 1024 * 1024).await.is_ok());
        assert!(a.reserve_body(0).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_a_waiter_is_admitted_when_a_slot_frees() {
        let a = std::sync::Arc::new(admission(16, 1, 0));
        let slot = a.enter().await.unwrap();
        assert_eq!(a.enter().await.unwrap_err(), Overloaded::QueueFull);

        let a = std::sync::Arc::new(admission(16, 1, 1));
        let slot2 = a.enter().await.unwrap();
        assert_eq!(a.enter().await.unwrap_err(), Overloaded::Timeout);
        drop(slot2);
        assert!(a.enter().await.is_ok());
        assert_eq!(a.waiting.load(Ordering::Relaxed), 0);
        drop(slot);
    }
}
