//! Evaluations run off the async workers: while more runaway evaluations run than the server
//! has async workers, health, metrics, a good decision and an ad-hoc query are still answered,
//! each before any runaway has finished (an order of events, not a timing).

use serde_json::json;
use verdict::bundle::Source;

use crate::common::{self, test_config, write_dir, Server, WAIT};

const RUNAWAY: &[u8] = b"package app\n\nquick := true\n\nhuge := count([1 | some i in numbers.range(1, input.n); some j in numbers.range(1, input.n)])\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runaway_evaluations_do_not_hold_the_listeners() {
    let _heavy = common::heavy().await;
    let dir = tempfile::tempdir().unwrap();
    write_dir(dir.path(), &[("app/policy.rego".into(), RUNAWAY.to_vec())]);
    let mut config = test_config();
    // Long enough that the runaways are surely still running when the checks below are
    // answered; each check waits on its answer, never on a timer.
    config.verdict.eval_timeout_ms = 5_000;
    let server = Server::start(config, vec![Source::path(dir.path())]).await;
    let client = common::http();

    // Three runaways for the test runtime's two async workers (the server's too).
    let runaways: Vec<_> = (0..3)
        .map(|_| {
            let (client, url) = (client.clone(), server.url("/v1/data/app/huge"));
            tokio::spawn(async move {
                client
                    .post(url)
                    .body(r#"{"input": {"n": 100000}}"#)
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    // Each runaway is numbered just before its evaluation starts: wait for the three.
    let mut progress = server.state.subscribe();
    let numbered = tokio::time::timeout(WAIT, async {
        while server.state.requests_numbered() < 3 {
            // Nothing to wake on here but the clock or a reload: yield and look again.
            tokio::select! {
                _ = progress.changed() => {}
                _ = tokio::task::yield_now() => {}
            }
        }
    })
    .await;
    assert!(numbered.is_ok(), "the runaways reached the server");

    let health = client.get(server.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let quick = client
        .post(server.url("/v1/data/app/quick"))
        .body(r#"{"input": {}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        quick.json::<serde_json::Value>().await.unwrap(),
        json!({"result": true})
    );
    let query = client
        .post(server.url("/v1/query"))
        .body(r#"{"query": "x := data.app.quick"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        query.json::<serde_json::Value>().await.unwrap()["result"][0]["x"],
        json!(true)
    );
    assert!(
        runaways.iter().all(|r| !r.is_finished()),
        "the checks were answered while every runaway still ran"
    );
    server.stop().await;
    for runaway in runaways {
        runaway.abort();
    }
}
