//! Request and response bodies through the proxy: the start of a request body read for the
//! policy (at most `max_body_bytes`, within the idle timeout) and then sent upstream ahead of
//! whatever follows, so that the body the policy saw is the body the upstream gets; and every
//! streamed body cut off when it goes quiet for longer than the idle timeout.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use http_body_util::BodyExt;

/// Why a request body could not be read for the policy.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the request body went {0:?} without a byte")]
    Stalled(Duration),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("cannot read the request body: {0}")]
    Read(String),
}

/// What was read of a request body: its first bytes, and the rest still to come unless the
/// body ended within the limit.
pub struct Prefix {
    /// Every byte read so far (at most one frame past the limit).
    pub read: Bytes,
    /// The body continues beyond `read`.
    pub rest: Option<Body>,
}

impl Prefix {
    /// The bytes the policy sees: the body, or its first `limit` bytes.
    pub fn seen(&self, limit: usize) -> &[u8] {
        &self.read[..self.read.len().min(limit)]
    }

    pub fn truncated(&self, limit: usize) -> bool {
        self.rest.is_some() || self.read.len() > limit
    }

    /// The whole body again, for the upstream: what was read, then the rest streamed.
    pub fn into_body(self, idle: Duration) -> Body {
        match self.rest {
            None => Body::from(self.read),
            Some(rest) => {
                let first = futures_util::stream::once(async move { Ok(self.read) });
                Body::from_stream(first.chain(idle_stream(rest, idle)))
            }
        }
    }
}

/// Reads `body` until it ends or more than `limit` bytes are in.
pub async fn read_prefix(
    mut body: Body,
    limit: usize,
    idle: Duration,
    reject_larger: bool,
) -> Result<Prefix, BodyError> {
    let mut read = BytesMut::new();
    loop {
        let frame = match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => return Err(BodyError::Stalled(idle)),
            Ok(None) => {
                return Ok(Prefix {
                    read: read.freeze(),
                    rest: None,
                })
            }
            Ok(Some(Err(e))) => return Err(BodyError::Read(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers are not forwarded: no policy input holds them, and few upstreams read them.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        read.extend_from_slice(&data);
        if read.len() > limit {
            if reject_larger {
                return Err(BodyError::TooLarge(limit));
            }
            return Ok(Prefix {
                read: read.freeze(),
                rest: Some(body),
            });
        }
    }
}

/// `body` as a stream of its data that ends with an error after `idle` without a frame.
pub fn idle_stream<B>(
    body: B,
    idle: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static
where
    B: hyper::body::Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: std::fmt::Display,
{
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        loop {
            match tokio::time::timeout(idle, body.frame()).await {
                Err(_) => {
                    let stalled = std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("body idle for {idle:?}"),
                    );
                    return Some((Err(stalled), None));
                }
                Ok(None) => return None,
                Ok(Some(Err(e))) => {
                    return Some((Err(std::io::Error::other(e.to_string())), None));
                }
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        return Some((Ok(data), Some(body)));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&'static str]) -> Body {
        let owned: Vec<Result<Bytes, std::io::Error>> =
            parts.iter().map(|p| Ok(Bytes::from(*p))).collect();
        Body::from_stream(futures_util::stream::iter(owned))
    }

    #[tokio::test]
    async fn a_short_body_is_read_whole_and_a_long_one_is_kept_for_the_upstream() {
        let idle = Duration::from_secs(5);
        let whole = read_prefix(chunks(&["ab", "cd"]), 8, idle, false)
            .await
            .unwrap();
        assert_eq!(&whole.read[..], b"abcd");
        assert!(!whole.truncated(8));

        let long = read_prefix(chunks(&["abcd", "efgh", "ijkl"]), 6, idle, false)
            .await
            .unwrap();
        assert!(long.truncated(6));
        assert_eq!(long.seen(6), b"abcdef");
        let forwarded = long.into_body(idle).collect().await.unwrap().to_bytes();
        assert_eq!(&forwarded[..], b"abcdefghijkl", "nothing lost or repeated");

        let refused = read_prefix(chunks(&["abcd", "efgh"]), 6, idle, true).await;
        assert!(matches!(refused, Err(BodyError::TooLarge(6))));
    }

    #[tokio::test]
    async fn a_stalled_body_times_out() {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(1);
        tx.send(Ok(Bytes::from_static(b"a"))).await.unwrap();
        let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
        let idle = Duration::from_millis(50);
        let stalled = read_prefix(body, 1024, idle, false).await;
        assert!(matches!(stalled, Err(BodyError::Stalled(_))));
        drop(tx);
    }
}
