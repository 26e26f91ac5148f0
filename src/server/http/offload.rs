//! The CPU work of one request (decompressing and decoding a large body) moved off the async
//! workers, which every listener, health probe and metrics scrape share: a client sending
//! megabytes must cost a low-priority thread of its own (`runtime::priority`), not the node's
//! authorization.

use crate::server::http::error::ApiError;

/// Bodies up to this size are decoded in place: a payment's few hundred bytes take
/// microseconds, less than the hand-off to another thread would.
const INLINE_MAX: usize = 64 << 10;

/// Runs `work` (on `size` bytes) in place when small, else on an ad-hoc thread.
pub async fn cpu<T: Send + 'static>(
    size: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if size <= INLINE_MAX {
        return Ok(work());
    }
    crate::runtime::priority::ad_hoc(work)
        .await
        .map_err(|_| ApiError::internal("the request body could not be decoded"))
}
