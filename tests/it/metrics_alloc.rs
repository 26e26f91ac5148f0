//! `GET /metrics/alloc_bytes` over a real socket: the allocator's live bytes, as OPA gives Go's
//! heap figure there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;
use crate::metrics::serve;

#[tokio::test]
async fn alloc_bytes_is_the_allocators_live_figure_and_follows_a_large_allocation() {
    let server = serve().await;
    let read = || async {
        let r = common::get(server.url("/metrics/alloc_bytes"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers()["content-type"].to_str().unwrap(),
            "text/plain; charset=utf-8"
        );
        let text = r.text().await.unwrap();
        assert!(text.ends_with('\n'), "{text:?}");
        text.trim_end().parse::<u64>().unwrap()
    };
    let before = read().await;
    assert!(before > 0, "a serving process holds live allocations");
    // 256 MiB held by this process (the server runs in it) must show in the figure, whatever
    // the tests running beside this one free meanwhile.
    let held = vec![1u8; 256 << 20];
    let during = read().await;
    assert!(
        during >= before + (192 << 20),
        "before {before}, while 256 MiB are held {during}"
    );
    drop(held);
}
