//! Instances D, D2 and D3 of the recording: OPA's config-svc.yaml against a local bundle
//! server that publishes the recorded variants phase by phase (v1, v2 with long polling, a
//! bundle that does not compile, data outside its roots, overlapping roots, garbage, HTTP 500,
//! v1 again; then restarts with the server down, with and without the persisted bundle).
//! Each recorded request is sent after its phase, and what verdict sent the bundle server
//! (polls, decision-log and status uploads) is compared with OPA's captures.

use std::collections::BTreeMap;
use std::path::Path;

use verdict::config::Config;

use crate::common::bundle_server::{bundle, BundleServer, Mode, Seen};
use crate::common::{test_config, Server};

use super::http::{compare, Case};
use super::upload;

fn variant(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(format!("fixtures/variants/{name}.tar.gz"))).unwrap()
}

/// OPA's config-svc.yaml, pointed at the local server, polling every second.
fn config(dir: &Path, bundles: &BundleServer, persist: &Path) -> Config {
    let sets = [
        format!("services.ctl.url={}", bundles.url("http")),
        "bundles.payment.polling.min_delay_seconds=1".into(),
        "bundles.payment.polling.max_delay_seconds=1".into(),
        "decision_logs.reporting.min_delay_seconds=1".into(),
        "decision_logs.reporting.max_delay_seconds=1".into(),
        format!("persistence_directory={}", persist.display()),
    ];
    let (mut config, _) = Config::load(Some(&dir.join("fixtures/config-svc.yaml")), &sets).unwrap();
    config.verdict = test_config().verdict;
    config
}

async fn start(config: Config) -> Server {
    let sources = verdict::app::sources(&config).unwrap();
    Server::start(config, sources).await
}

/// Starts verdict against a bundle server that is down, as OPA's D2 and D3 were. OPA's capture
/// (`D-bundle-polling-protocol.log`, phases 8 and 9) shows its first status report leaving
/// after both polls of its start-up burst had failed (a download and its immediate retry):
/// its status plugin was busy, and it counted a report dropped. The status service here is
/// busy with verdict's first report until verdict has recorded both failures, so the same
/// burst meets the same busy plugin; what verdict counts then is its own rule's.
///
/// `earlier` are the ids of the instances started before: their uploads, should any still be
/// under way, are neither held nor taken for the new instance's.
async fn start_in_burst(config: Config, bundles: &BundleServer, earlier: &[String]) -> Server {
    let earlier = earlier.to_vec();
    let release = bundles.hold_next_status(move |body| {
        let text = String::from_utf8_lossy(body);
        !earlier.iter().any(|id| text.contains(id.as_str()))
    });
    let before = bundles.requests().len();
    let server = start(config).await;
    let id = server.state.instance_id.clone();
    server
        .wait_until("both failed polls of the start-up burst", |s| {
            s.bundle_status().iter().any(|b| b.failed >= 2)
        })
        .await;
    let _ = release.send(());
    bundles
        .wait_for_after(before, "the status report after the first", |s| {
            let text = String::from_utf8_lossy(&s.body);
            s.path == "/status" && text.contains(&id) && text.contains("Service Unavailable")
        })
        .await;
    server
}

struct Replay<'a> {
    cases: BTreeMap<&'a str, &'a Case>,
    outcomes: Vec<(String, Option<String>)>,
}

impl Replay<'_> {
    async fn ask(&mut self, server: &Server, names: &[&str]) {
        for name in names {
            let case = self.cases[name];
            let got = server.in_process(&case.request).await;
            self.outcomes.push((name.to_string(), compare(got, case)));
        }
    }
}

/// Replays the D, D2 and D3 cases and the captures of what OPA sent its control plane.
pub async fn replay(dir: &Path, cases: &[Case]) -> Vec<(String, Option<String>)> {
    let mut replay = Replay {
        cases: cases.iter().map(|c| (c.name.as_str(), c)).collect(),
        outcomes: Vec::new(),
    };
    let bundles = BundleServer::start(bundle(variant(dir, "v1"), "v1"), None).await;
    let persist = tempfile::tempdir().unwrap();
    let server = start(config(dir, &bundles, persist.path())).await;
    server.wait_for_revision("payments-2025-01-01.1").await;
    // OPA's D-status-v1 was taken after a poll answered 304 (its last successful request is
    // later than its download): the bundle's metrics are that request's, not the download's.
    server
        .wait_until("a poll answered 304 after the activation", |s| {
            s.bundle_status().iter().any(|b| {
                b.last_successful_request.at() > b.last_successful_download.at() && b.is_activated()
            })
        })
        .await;
    replay
        .ask(
            &server,
            &[
                "D-health-bundles-ready",
                "D-data-provenance-v1",
                "D-status-v1",
            ],
        )
        .await;

    bundles.set(Mode::Bundle {
        bytes: variant(dir, "v2").into(),
        etag: "\"v2\"".into(),
        long_poll: true,
    });
    server.wait_for_revision("payments-2025-01-02.1").await;
    // The decision of the v2 phase that OPA's second decision-log upload carries.
    let v2_decision = replay.cases["D-data-after-bad-compile"].request.clone();
    server.in_process(&v2_decision).await;

    bundles.set(bundle(variant(dir, "bad-compile"), "bad-compile"));
    server.wait_for_error("var x is unsafe").await;
    replay
        .ask(
            &server,
            &[
                "D-status-after-bad-compile",
                "D-data-after-bad-compile",
                "D-health-bundles-after-bad",
                "D-health-plugins-after-bad",
            ],
        )
        .await;
    bundles.set(bundle(variant(dir, "bad-roots"), "bad-roots"));
    server.wait_for_error("do not permit data").await;
    bundles.set(bundle(variant(dir, "bad-overlap"), "bad-overlap"));
    server.wait_for_error("overlapped roots").await;
    replay.ask(&server, &["D-status-after-bad-overlap"]).await;
    bundles.set(bundle(variant(dir, "garbage"), "garbage"));
    server.wait_for_error("gzip: invalid header").await;
    replay.ask(&server, &["D-status-after-garbage"]).await;
    bundles.set(Mode::Status(500));
    server.wait_for_error("Internal Server Error").await;
    replay.ask(&server, &["D-status-after-500"]).await;
    bundles.set(bundle(variant(dir, "v1"), "v1-again"));
    server.wait_for_revision("payments-2025-01-01.1").await;
    replay.ask(&server, &["D-status-recovered"]).await;
    bundles
        .wait_for("a decision-log upload", |s| s.path == "/logs")
        .await;
    let mut ids = vec![server.state.instance_id.clone()];
    server.stop().await;
    let seen = bundles.requests();
    replay.outcomes.push((
        "D-bundle-polling-protocol".into(),
        upload::polling(dir, &seen),
    ));
    replay.outcomes.push((
        "D-decision-log-upload".into(),
        upload::decision_logs(dir, &seen),
    ));
    replay
        .outcomes
        .push(("D-status-upload".into(), upload::status(dir, &seen)));

    // D2: the server is down; the persisted bundle serves.
    bundles.set(Mode::Status(503));
    let server = start_in_burst(config(dir, &bundles, persist.path()), &bundles, &ids).await;
    ids.push(server.state.instance_id.clone());
    replay
        .ask(&server, &["D2-health-bundles", "D2-status"])
        .await;
    server.stop().await;

    // D3: the server is down and nothing was persisted.
    let empty = tempfile::tempdir().unwrap();
    let server = start_in_burst(config(dir, &bundles, empty.path()), &bundles, &ids).await;
    replay
        .ask(
            &server,
            &["D3-health-plain", "D3-data-no-bundle", "D3-status"],
        )
        .await;
    server.stop().await;
    let replayed: Vec<&str> = replay.outcomes.iter().map(|(n, _)| n.as_str()).collect();
    for case in cases {
        assert!(
            replayed.contains(&case.name.as_str()),
            "{} is not replayed by any phase",
            case.name
        );
    }
    replay.outcomes
}

/// The requests of one kind, for the comparisons of `upload`.
pub fn posts<'a>(seen: &'a [Seen], path: &'a str) -> impl Iterator<Item = &'a Seen> + 'a {
    seen.iter()
        .filter(move |s| s.method == "POST" && s.path == path)
}
