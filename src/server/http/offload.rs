//! The CPU work of one request (decompressing and decoding a large body) moved off the async
//! workers, which every listener, health probe and metrics scrape share: a client sending
//! megabytes must cost a blocking thread, not the node's authorization.

use crate::server::http::error::ApiError;

/// Bodies up to this size are decoded in place: a payment's few hundred bytes take
/// microseconds, less than the hand-off to another thread would.
const INLINE_MAX: usize = 64 << 10;

/// Runs `work` (on `size` bytes) in place when small, else on a blocking thread.
pub async fn cpu<T: Send + 'static>(
    size: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if size <= INLINE_MAX {
        return Ok(work());
    }
    tokio::task::spawn_blocking(|| {
        crate::runtime::priority::lower_this_thread();
        work()
    })
    .await
    .map_err(|_| ApiError::internal("the request body could not be decoded"))
}
