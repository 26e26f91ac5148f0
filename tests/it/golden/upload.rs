//! What verdict sent its control plane in the D replay, against OPA's captures of the same:
//! the bundle polls' headers, the decision-log uploads and the status uploads.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value as Json;

use crate::common::bundle_server::Seen;

use super::http::gunzip;
use super::normalize;

/// The `### REQUEST ...` sections of a capture: (header lines, body text).
fn requests(text: &str) -> Vec<(Vec<(String, String)>, String)> {
    text.split("### REQUEST")
        .skip(1)
        .map(|section| {
            let (head, body) = section.split_once("### BODY").unwrap_or((section, ""));
            let headers = head
                .lines()
                .skip(1)
                .filter_map(|l| l.split_once(": "))
                .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
                .collect();
            let body = body.split_once('\n').map_or("", |(_, b)| b);
            let body = body.split("\n###").next().unwrap_or_default();
            (headers, body.trim().to_string())
        })
        .collect()
}

/// The headers that say how a body is sent; the agent's name and lengths are the sender's.
fn framing(headers: impl IntoIterator<Item = (String, String)>) -> BTreeSet<String> {
    headers
        .into_iter()
        .filter(|(k, _)| ["content-type", "content-encoding"].contains(&k.as_str()))
        .map(|(k, v)| format!("{k}: {v}"))
        .collect()
}

fn seen_headers(seen: &Seen) -> Vec<(String, String)> {
    seen.headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect()
}

/// A bundle poll's headers, as the shape that matters: which are sent, and `Prefer`.
fn poll_shape(headers: Vec<(String, String)>) -> String {
    let mut shape: Vec<String> = headers
        .into_iter()
        .filter(|(k, _)| !["host", "user-agent", "content-length"].contains(&k.as_str()))
        // `Accept: */*` says what no Accept header says (RFC 9110 §12.5.1).
        .filter(|(k, v)| !(k == "accept" && v == "*/*"))
        .map(|(k, v)| match k.as_str() {
            "if-none-match" => "if-none-match: <etag>".to_string(),
            _ => format!("{k}: {v}"),
        })
        .collect();
    shape.sort();
    shape.join("; ")
}

pub fn polling(dir: &Path, seen: &[Seen]) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("D-bundle-polling-protocol.log")).unwrap();
    let opa: BTreeSet<String> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("request headers: "))
        .map(|json| {
            let headers: serde_json::Map<String, Json> = serde_json::from_str(json).unwrap();
            poll_shape(
                headers
                    .into_iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_string()))
                    .collect(),
            )
        })
        .collect();
    let ours: BTreeSet<String> = seen
        .iter()
        .filter(|s| s.method == "GET")
        .map(|s| poll_shape(seen_headers(s)))
        .collect();
    (ours != opa).then(|| format!("bundle polls\n    verdict: {ours:?}\n    OPA:     {opa:?}"))
}

/// An event or report without what varies between runs, as normalised text.
fn event_text(mut event: Json) -> String {
    if let Some(o) = event.as_object_mut() {
        for field in ["requested_by", "req_id"] {
            o.remove(field);
        }
    }
    normalize::body(
        None,
        serde_json::to_string_pretty(&event).unwrap().as_bytes(),
        None,
    )
}

pub fn decision_logs(dir: &Path, seen: &[Seen]) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("D-decision-log-upload.txt")).unwrap();
    let recorded = requests(&text);
    let opa_framing: BTreeSet<String> = recorded
        .iter()
        .flat_map(|(h, _)| framing(h.clone()))
        .collect();
    let opa: Vec<String> = recorded
        .iter()
        .flat_map(|(_, body)| serde_json::from_str::<Vec<Json>>(body).unwrap())
        .map(event_text)
        .collect();
    let uploads: Vec<&Seen> = super::remote::posts(seen, "/logs").collect();
    let ours_framing: BTreeSet<String> = uploads
        .iter()
        .flat_map(|s| framing(seen_headers(s)))
        .collect();
    let ours: Vec<String> = uploads
        .iter()
        .flat_map(|s| serde_json::from_slice::<Vec<Json>>(&gunzip(&s.body)).unwrap())
        .map(event_text)
        .take(opa.len())
        .collect();
    let mut problems = Vec::new();
    if ours_framing != opa_framing {
        problems.push(format!("headers {ours_framing:?} (OPA {opa_framing:?})"));
    }
    if ours != opa {
        problems.push(format!(
            "events\n    verdict: {ours:?}\n    OPA:     {opa:?}"
        ));
    }
    (!problems.is_empty()).then(|| problems.join("\n  "))
}

/// A status report; the capture elides the Prometheus families, so they are compared as
/// present or not (`/v1/status` compares them in full).
fn report_text(mut report: Json) -> String {
    if let Some(prometheus) = report.pointer_mut("/metrics/prometheus") {
        *prometheus = Json::String("<families>".into());
    }
    event_text(report)
}

pub fn status(dir: &Path, seen: &[Seen]) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("D-status-upload.txt")).unwrap();
    let recorded = requests(&text);
    let uploads: Vec<&Seen> = super::remote::posts(seen, "/status").collect();
    let reports: Vec<Json> = uploads
        .iter()
        .map(|s| serde_json::from_slice(&s.body).unwrap())
        .collect();
    let mut problems = Vec::new();
    for (headers, body) in &recorded {
        let opa: Json = serde_json::from_str(body).unwrap();
        // The report verdict sent in the same state: the first one, or the first after the
        // same bundle failure.
        let message = opa.pointer("/bundles/payment/message").cloned();
        let ours = reports
            .iter()
            .zip(&uploads)
            .find(|(r, _)| r.pointer("/bundles/payment/message").cloned() == message);
        let Some((report, upload)) = ours else {
            problems.push(format!("no status report with bundle message {message:?}"));
            continue;
        };
        let (ours_framing, opa_framing) = (framing(seen_headers(upload)), framing(headers.clone()));
        if ours_framing != opa_framing {
            problems.push(format!("headers {ours_framing:?} (OPA {opa_framing:?})"));
        }
        let (ours, theirs) = (report_text(report.clone()), report_text(opa));
        if ours != theirs {
            let (ours, theirs) = super::http::clip_both(&ours, &theirs);
            problems.push(format!(
                "report\n    verdict: {ours:?}\n    OPA:     {theirs:?}"
            ));
        }
    }
    (!problems.is_empty()).then(|| problems.join("\n  "))
}
