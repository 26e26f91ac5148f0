//! Decision logs through the faults an edge node lives through, against a real local
//! collector: a collector down for the whole run, answering 500 or hanging, verdict killed with
//! SIGKILL under load, a full spool, a second verdict on the same volume. Every decision
//! answered must reach the collector (at least once; decision ids deduplicate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common;

use axum::http::Method;
use common::collector::{reserve_addr, Answer, Collector};
use common::decision_log::{
    binary_args, config, decide, decisions, metric, payment_bundle, try_decide, wait_metric, INPUT,
};
use common::running::Running;
use common::{Server, WAIT};
use serde_json::json;

#[tokio::test]
async fn a_collector_down_for_the_whole_run_gets_every_decision_once_up() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let resource = json!({"decision_logs": {
        "resource": "/audit/payments",
        "reporting": {"upload_size_limit_bytes": 4096}
    }});
    let server = Server::start(
        config(&format!("http://{addr}"), dir.path(), resource),
        vec![payment_bundle()],
    )
    .await;
    let ids = decisions(&server.addr, 200).await;
    assert_eq!(
        metric(&server.addr, "verdict_decision_log_spool_events").await,
        200.0
    );
    wait_metric(
        &server.addr,
        "verdict_decision_log_upload_failures_total",
        |v| v >= 2.0,
    )
    .await;

    let collector = Collector::start_on(addr, Answer::Ok).await;
    collector.wait_for_ids(&ids).await;
    wait_metric(&server.addr, "verdict_decision_log_spool_events", |v| {
        v == 0.0
    })
    .await;
    assert!(metric(&server.addr, "verdict_decision_log_uploaded_events_total").await >= 200.0);
    let uploads = collector.uploads();
    assert!(uploads
        .iter()
        .all(|u| u.method == Method::POST && u.path == "/audit/payments"));
    // OPA's chunking: the backlog goes in several uploads, none larger than
    // upload_size_limit_bytes.
    let sizes: Vec<u64> = uploads
        .iter()
        .filter(|u| u.status == 200)
        .map(|u| {
            u.headers["content-length"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(sizes.len() >= 2, "{sizes:?}");
    assert!(sizes.iter().all(|&n| n <= 4096), "{sizes:?}");
}

#[tokio::test]
async fn a_failing_then_hanging_collector_is_retried_and_decisions_go_on() {
    let collector = Collector::start(Answer::Status(500)).await;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(
        config(&collector.url(), dir.path(), json!({})),
        vec![payment_bundle()],
    )
    .await;
    let mut ids = decisions(&server.addr, 20).await;
    collector
        .wait_until("two failed uploads", |u, _| {
            u.iter().filter(|u| u.status == 500).count() >= 2
        })
        .await;
    assert!(collector.events().is_empty());

    collector.set(Answer::Hang);
    collector
        .wait_until("a hanging upload", |u, _| u.iter().any(|u| u.status == 0))
        .await;
    // Decisions are answered while the upload hangs.
    ids.extend(decisions(&server.addr, 20).await);

    collector.set(Answer::Ok);
    collector.wait_for_ids(&ids).await;
    assert!(metric(&server.addr, "verdict_decision_log_upload_failures_total").await >= 3.0);
}

#[tokio::test]
async fn decisions_answered_until_a_sigkill_under_load_all_arrive_after_the_restart() {
    let _heavy = common::heavy().await;
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let args = binary_args(dir.path(), addr);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    let mut first = Running::spawn(&args);
    let verdict = first.address().await;
    // Eight clients decide as fast as they can until verdict is gone: the kill lands among
    // decisions in flight, some of them answered a moment before it.
    let (count, mut counted) = tokio::sync::watch::channel(0usize);
    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (verdict, answered, count) = (verdict.clone(), answered.clone(), count.clone());
            tokio::spawn(async move {
                while let Ok(id) = try_decide(&verdict).await {
                    answered.lock().unwrap().push(id);
                    count.send_modify(|n| *n += 1);
                }
            })
        })
        .collect();
    tokio::time::timeout(WAIT, counted.wait_for(|n| *n >= 300))
        .await
        .expect("300 decisions answered")
        .unwrap();
    first.kill9().await;
    for client in clients {
        client.await.unwrap();
    }
    let ids = answered.lock().unwrap().clone();

    let collector = Collector::start_on(addr, Answer::Ok).await;
    let mut second = Running::spawn(&args);
    second.address().await;
    collector.wait_for_ids(&ids).await;
}

#[tokio::test]
async fn a_full_spool_refuses_decisions_when_configured_to() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({
        "decision_logs": {"reporting": {"buffer_size_limit_bytes": 4000}},
        "verdict": {"decision_logs": {"when_full": "refuse"}}
    });
    let server = Server::start(
        config(&format!("http://{addr}"), dir.path(), extra),
        vec![payment_bundle()],
    )
    .await;
    let mut answered = Vec::new();
    let refused = loop {
        let (status, body) = decide(&server.addr, "payment/allow", INPUT).await;
        if status != 200 {
            break (status, body);
        }
        answered.push(body["decision_id"].as_str().unwrap().to_string());
        assert!(answered.len() < 20, "the spool never filled");
    };
    assert!(!answered.is_empty());
    assert_eq!(refused.0, 500);
    assert_eq!(refused.1["code"], "internal_error");
    assert_eq!(
        refused.1["message"],
        "decision refused: the decision log spool is full (4000 bytes)"
    );
    assert_eq!(
        metric(&server.addr, "verdict_decision_log_refused_decisions_total").await,
        1.0
    );
    // Its client got an error, and that is what it is counted as.
    let errors = r#"verdict_decisions_total{outcome="error",path="payment/allow"}"#;
    assert_eq!(metric(&server.addr, errors).await, 1.0);

    // Once the collector has taken the backlog, decisions are answered again.
    let collector = Collector::start_on(addr, Answer::Ok).await;
    collector.wait_for_ids(&answered).await;
    wait_metric(&server.addr, "verdict_decision_log_spool_events", |v| {
        v == 0.0
    })
    .await;
    let (status, _) = decide(&server.addr, "payment/allow", INPUT).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_full_spool_drops_the_oldest_events_by_default_and_says_so() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let extra = json!({"decision_logs": {"reporting": {"buffer_size_limit_bytes": 4000}}});
    let server = Server::start(
        config(&format!("http://{addr}"), dir.path(), extra),
        vec![payment_bundle()],
    )
    .await;
    let ids = decisions(&server.addr, 20).await;
    let dropped = metric(
        &server.addr,
        "verdict_decision_log_dropped_events_total{reason=\"spool_full\"}",
    )
    .await;
    let kept = metric(&server.addr, "verdict_decision_log_spool_events").await;
    assert!(dropped > 0.0 && kept > 0.0);
    assert_eq!(dropped + kept, 20.0);

    let collector = Collector::start_on(addr, Answer::Ok).await;
    // The ten decisions of a batch are concurrent, so their order in the spool is not the
    // order of `ids`; the batches are not. The kept events are the newest: within the last
    // batch when no more than ten were kept.
    assert!(
        kept <= 10.0,
        "a 4000-byte spool keeps fewer than ten events: {kept}"
    );
    let kept = kept as usize;
    collector
        .wait_until("the kept events", |_, events| events.len() >= kept)
        .await;
    let arrived = collector.events();
    assert_eq!(arrived.len(), kept, "exactly the kept events arrive");
    assert!(
        arrived.keys().all(|id| ids[10..].contains(id)),
        "only the newest batch survived: {:?}",
        arrived.keys().collect::<Vec<_>>()
    );
}

/// A rolling update with a surge: the new verdict starts on the same volume while the old one
/// still runs and holds its spool. Both serve; once the old one has ended, the new one uploads
/// what the old one had spooled, and removes its spool.
#[tokio::test]
async fn a_second_verdict_on_the_same_volume_serves_and_takes_over_the_first_ones_spool() {
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let args = binary_args(dir.path(), addr);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();

    // The collector is down: the old verdict's decisions stay in its spool.
    let mut old = Running::spawn(&args);
    let old_addr = old.address().await;
    let mut ids = decisions(&old_addr, 30).await;
    let mut new = Running::spawn(&args);
    let new_addr = new.address().await;
    ids.extend(decisions(&new_addr, 30).await);
    let spools = || {
        std::fs::read_dir(dir.path().join("persist/decision-logs"))
            .unwrap()
            .count()
    };
    assert_eq!(spools(), 2);

    old.kill9().await;
    let collector = Collector::start_on(addr, Answer::Ok).await;
    collector.wait_for_ids(&ids).await;
    new.wait_for_log("decision log spool of an ended process uploaded and removed")
        .await;
    assert_eq!(spools(), 1);
}

/// Issue 15's full disk, through the real binary: every write past 256 KiB fails (a file-size
/// limit, the same failed write a full disk gives). With the collector down, the spool soon
/// cannot grow: decisions are still answered (drop_oldest, the default), every event that
/// could not be kept is counted, none vanishes, the process survives, health answers, and
/// the loss is logged once, not once per event.
#[tokio::test]
async fn on_a_disk_that_refuses_writes_decisions_go_on_and_every_lost_event_is_counted() {
    let _heavy = common::heavy().await;
    let addr = reserve_addr();
    let dir = tempfile::tempdir().unwrap();
    let args = binary_args(dir.path(), addr);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut running = Running::spawn_with_file_size_limit(&args, 256 << 10);
    let verdict = running.address().await;

    let dropped = r#"verdict_decision_log_dropped_events_total{reason="spool_error"}"#;
    let mut answered = 0u32;
    while metric(&verdict, dropped).await < 10.0 {
        let (status, body) = decide(&verdict, "payment/allow", INPUT).await;
        assert_eq!(status, 200, "{body}");
        answered += 1;
        assert!(answered < 20_000, "writes never failed");
    }
    let kept = metric(&verdict, "verdict_decision_log_spool_events").await;
    let lost = metric(&verdict, dropped).await;
    assert_eq!(kept + lost, f64::from(answered), "kept {kept}, lost {lost}");
    let health = common::get(format!("http://{verdict}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let line = running.wait_for_log("decision log event not kept").await;
    assert_eq!(line["level"], "ERROR", "{line}");
    let (lines, code) = running.stop().await;
    let errors = lines
        .iter()
        .filter(|l| l.contains("decision log event not kept"))
        .count();
    assert_eq!(errors, 1, "one line for {lost} lost events");
    assert_eq!(code, Some(0), "stopped by SIGTERM, not killed by SIGXFSZ");
}
