//! The recorded captures that are not HTTP exchanges: Envoy `Check`s over gRPC (and the one
//! that crashed OPA), the descriptors OPA's gRPC reflection served, and the command lines of
//! signing and start-up errors, run with the real binary in a copy of OPA's fixtures.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use prost::Message as _;
use prost_reflect::prost_types::{FileDescriptorProto, FileDescriptorSet};
use verdict::bundle::Source;
use verdict::config::Config;

use crate::common::running::BIN;
use crate::common::{test_config, Server, WAIT};
use crate::grpc_golden;

pub async fn replay(dir: &Path, names: &[String]) -> Vec<(String, Option<String>)> {
    let mut outcomes = Vec::new();
    for name in names {
        let outcome = if let Some(case) = name.strip_prefix("grpc-check-") {
            if case.contains("PANIC") {
                crash(dir).await
            } else {
                check(dir, name).await
            }
        } else {
            match name.as_str() {
                "envoy-authz-descriptors" => descriptors(dir).await,
                "E-startup-bundle-errors" => commands(dir, name).await,
                "E-bundle-signing" => {
                    let problems: Vec<String> =
                        [commands(dir, name).await, super::signed::service(dir).await]
                            .into_iter()
                            .flatten()
                            .collect();
                    (!problems.is_empty()).then(|| problems.join("\n  "))
                }
                other => panic!("no replay for the capture {other}"),
            }
        };
        outcomes.push((name.clone(), outcome));
    }
    outcomes
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file)).unwrap()
}

/// One `Check`, on a server set up as the recorded instance was.
async fn check(dir: &Path, name: &str) -> Option<String> {
    let exchange = grpc_golden::parse_exchange(name, &read(dir, &format!("{name}.grpc.txt")));
    let (path, dry_run) = grpc_golden::instance(name);
    let bundles = vec![
        Source::path(dir.join("fixtures/bundle")),
        Source::path(dir.join("fixtures/debugbundle")),
    ];
    let server = grpc_golden::start(path, dry_run, bundles).await;
    let outcome = grpc_golden::mismatch(&server, &exchange).await;
    server.stop().await;
    outcome
}

/// OPA 1.9 crashed on an unparseable body when its decision log masks with an upsert on an
/// input path (instance A). Answering as OPA answers the same request without that mask
/// (grpc-check-bad-json-body), and serving on, is the behaviour the capture asks for.
async fn crash(dir: &Path) -> Option<String> {
    let sets = ["plugins.envoy_ext_authz_grpc.addr=127.0.0.1:0".to_string()];
    let (mut config, _) =
        Config::load(Some(&dir.join("fixtures/config-golden.yaml")), &sets).unwrap();
    config.verdict = test_config().verdict;
    let source = Source {
        name: "payment-bundle.tar.gz".into(),
        ..Source::path(dir.join("fixtures/payment-bundle.tar.gz"))
    };
    let server = Server::start(config, vec![source]).await;
    let bad = "grpc-check-bad-json-body";
    let then = "grpc-check-allow-object";
    let mut problems = Vec::new();
    for name in [bad, then] {
        let exchange = grpc_golden::parse_exchange(name, &read(dir, &format!("{name}.grpc.txt")));
        if let Some(problem) = grpc_golden::mismatch(&server, &exchange).await {
            problems.push(format!("{name} with the upsert mask: {problem}"));
        }
    }
    server.stop().await;
    (!problems.is_empty()).then(|| problems.join("\n  "))
}

/// The Envoy services' descriptors, as verdict's reflection serves them, against the set
/// OPA's served.
async fn descriptors(dir: &Path) -> Option<String> {
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    use tonic_reflection::pb::v1::ServerReflectionRequest;

    let recorded = FileDescriptorSet::decode(
        std::fs::read(dir.join("envoy-authz-descriptors.pb"))
            .unwrap()
            .as_slice(),
    )
    .unwrap();
    let mut config = test_config();
    config.plugins.envoy_ext_authz_grpc = Some(verdict::config::ExtAuthzConfig {
        addr: "127.0.0.1:0".into(),
        path: "envoy/authz/allow".into(),
        enable_reflection: true,
        ..verdict::config::ExtAuthzConfig::default()
    });
    let server = Server::start(config, vec![Source::path(dir.join("fixtures/bundle"))]).await;
    let mut client = ServerReflectionClient::new(crate::common::grpc::channel(&server).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "envoy.service.auth.v3.Authorization".into(),
        )),
    };
    let answer = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .and_then(|m| m.message_response);
    server.stop().await;
    let Some(MessageResponse::FileDescriptorResponse(files)) = answer else {
        return Some(format!("reflection answered {answer:?}"));
    };
    let mut problems = Vec::new();
    for bytes in &files.file_descriptor_proto {
        let ours = FileDescriptorProto::decode(bytes.as_slice()).unwrap();
        match recorded.file.iter().find(|f| f.name == ours.name) {
            Some(theirs) if *theirs == ours => {}
            Some(_) => problems.push(format!("{:?} differs", ours.name())),
            None => problems.push(format!("{:?} is not in OPA's set", ours.name())),
        }
    }
    if files.file_descriptor_proto.is_empty() {
        problems.push("no descriptors".into());
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// `$ cd . && opa run ...` lines and what followed each: an exit with its error line, or
/// serving. Run as `verdict run` with the same arguments from the same directory.
async fn commands(dir: &Path, name: &str) -> Option<String> {
    let text = read(dir, &format!("{name}.txt"));
    let work = tempfile::tempdir().unwrap();
    copy_dir(&dir.join("fixtures"), work.path());
    let mut problems = Vec::new();
    let mut lines = text.lines().peekable();
    let mut compared = 0;
    while let Some(line) = lines.next() {
        let Some(command) = line.strip_prefix("$ ") else {
            continue;
        };
        let command = command.trim_start_matches("cd . && ");
        let Some(args) = command.strip_prefix("opa run -s ") else {
            continue;
        };
        let outcome = lines.next().unwrap_or_default().trim().to_string();
        let want = match outcome.as_str() {
            "-> exit 1:" => Some(lines.next().unwrap_or_default().trim().to_string()),
            _ => None,
        };
        let cwd = if name == "E-bundle-signing" {
            work.path().join("sign")
        } else {
            work.path().to_path_buf()
        };
        let args: Vec<&str> = args
            .split_whitespace()
            .map(|a| {
                if a == "127.0.0.1:8181" {
                    "127.0.0.1:0"
                } else {
                    a
                }
            })
            .collect();
        let args: Vec<&str> = if args.contains(&"--addr") {
            args
        } else {
            [&["--addr", "127.0.0.1:0"][..], &args].concat()
        };
        compared += 1;
        if let Some(problem) = run(&cwd, &args, want.as_deref()).await {
            problems.push(format!("opa run -s {}: {problem}", args.join(" ")));
        }
    }
    assert!(compared > 0, "{name}: no command lines");
    if let Some(problem) = signed_build(&text, work.path()) {
        problems.push(problem);
    }
    (!problems.is_empty()).then(|| problems.join("\n  "))
}

/// The capture's `# build: ... opa build ... --claims-file <(echo 'CLAIMS')` run as `verdict
/// build` (with a key of the tests', OPA's was not kept): the same files in the same order,
/// and the same JWT header and payload (only the signature depends on the key).
fn signed_build(text: &str, work: &Path) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("# build: "))?;
    let claims = line.split("<(echo '").nth(1)?.trim_end_matches("')");
    std::fs::write(work.join("claims.json"), claims).unwrap();
    let key = crate::common::fixture("sign/rsa-private.pem");
    let out = Command::new(BIN)
        .args([
            "build",
            "-b",
            "bundle",
            "-o",
            "built.tar.gz",
            "--signing-key",
        ])
        .arg(&key)
        .args(["--signing-alg", "RS256", "--claims-file", "claims.json"])
        .current_dir(work)
        .output()
        .unwrap();
    if !out.status.success() {
        return Some(format!(
            "verdict build: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let built = std::fs::read(work.join("built.tar.gz")).unwrap();
    let files = verdict::bundle::reader::read_tarball(built.as_slice(), u64::MAX).unwrap();
    let listing: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let section = |title: &str| -> String {
        let after = text.split(title).nth(1).unwrap_or_default();
        let after = after.split_once('\n').map_or("", |(_, rest)| rest);
        after
            .split("\n###")
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let opa_listing = section("### tar listing");
    let decoded = section("### decoded JWT header + payload");
    let (opa_header, opa_payload) = decoded.split_once('\n').unwrap_or_default();
    let signatures: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|f| f.path == "/.signatures.json")?.bytes)
            .unwrap();
    let jwt = signatures["signatures"][0].as_str().unwrap_or_default();
    let part = |i: usize| -> serde_json::Value {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(i).unwrap_or_default())
            .unwrap_or_default();
        serde_json::from_slice(&bytes).unwrap_or_default()
    };
    let want = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
    let mut problems = Vec::new();
    if listing.join("\n") != opa_listing {
        problems.push(format!("files {listing:?}, OPA's {opa_listing:?}"));
    }
    if part(0) != want(opa_header) || part(1) != want(opa_payload) {
        problems.push(format!("JWT {} {}", part(0), part(1)));
    }
    (!problems.is_empty()).then(|| format!("verdict build: {}", problems.join("; ")))
}

/// Runs `verdict run ARGS`: `want` is the error line it must exit 1 with; `None`, it must
/// serve.
async fn run(cwd: &Path, args: &[&str], want: Option<&str>) -> Option<String> {
    match want {
        Some(want) => {
            let out = Command::new(BIN)
                .arg("run")
                .args(args)
                .current_dir(cwd)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let error = stderr
                .lines()
                .find(|l| l.starts_with("error: "))
                .unwrap_or("");
            (out.status.code() != Some(1) || error != want).then(|| {
                format!(
                    "exit {:?} {error:?}\n    OPA: exit 1 {want:?}",
                    out.status.code()
                )
            })
        }
        None => {
            let mut running = crate::common::running::Running::spawn_in(cwd, args, &[]);
            let started = tokio::time::timeout(WAIT + Duration::from_secs(1), async {
                running.wait_for_log("server started").await
            })
            .await;
            running.signal("KILL");
            started.is_err().then(|| "did not serve".to_string())
        }
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            // The recordings are read-only; a copy verdict may persist beside must not be.
            let mut perms = std::fs::metadata(&target).unwrap().permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).unwrap();
        }
    }
}
