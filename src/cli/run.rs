//! `verdict run`: serve OPA's REST API on bundles, with OPA's flags where OPA has them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::bundle::{signing, LoadOptions, Location, Source, Verification};
use crate::config::{Config, ConfigError};
use crate::decision_log::DecisionLog;
use crate::policy::CompileOptions;
use crate::remote::{self, Poller, StatusUploader};
use crate::runtime::store::PushedStore;
use crate::runtime::{memory, watcher::Watcher, AppState, Reloader, Trigger};
use crate::server::{self, Listener};
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Listen address, host:port or unix:///path.sock (repeatable) [default: 127.0.0.1:8181].
    #[arg(short = 'a', long = "addr", value_name = "ADDR")]
    pub addr: Vec<String>,
    /// Serve only /health and /metrics here as well (repeatable): host:port or
    /// unix:///path.sock.
    #[arg(long = "diagnostic-addr", value_name = "ADDR")]
    pub diagnostic_addr: Vec<String>,
    /// Serve Envoy ext_authz v3, the native decision API and gRPC health here: host:port or
    /// unix:///path.sock. Same as plugins.envoy_ext_authz_grpc.addr in the config.
    #[arg(long = "grpc-addr", value_name = "ADDR")]
    pub grpc_addr: Option<String>,
    /// A bundle directory or .tar.gz (repeatable). Without one, the built-in example payment
    /// bundle (bundles/payment) is served.
    #[arg(short = 'b', long = "bundle", value_name = "PATH")]
    pub bundle: Vec<PathBuf>,
    /// OPA-style configuration file (YAML or JSON).
    #[arg(
        short = 'c',
        long = "config",
        alias = "config-file",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Override a configuration value, OPA's --set syntax (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Reload bundles when their files change (the default).
    #[arg(short = 'w', long = "watch", conflicts_with = "no_watch")]
    pub watch: bool,
    /// Do not watch bundle files; reload on SIGHUP only.
    #[arg(long = "no-watch")]
    pub no_watch: bool,
    /// Longest one evaluation may run, in milliseconds.
    #[arg(long = "eval-timeout-ms", value_name = "MS")]
    pub eval_timeout_ms: Option<u64>,
    /// Treat bundles without a rego_version as Rego v0.
    #[arg(long)]
    pub v0_compatible: bool,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[arg(long = "shutdown-grace-period", value_name = "SECONDS")]
    pub shutdown_grace_period: Option<u64>,
    /// debug, info, warn or error.
    #[arg(short = 'l', long = "log-level", default_value = "info",
          value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    #[arg(long = "log-format", value_enum, default_value = "json")]
    pub log_format: LogFormat,
    /// Verify `-b` bundles' signatures with this key: a PEM file, or the PEM or HMAC secret
    /// itself (OPA's flag).
    #[arg(long = "verification-key", value_name = "KEY")]
    pub verification_key: Option<String>,
    /// The key id the verification key is known by.
    #[arg(
        long = "verification-key-id",
        default_value = "default",
        value_name = "ID"
    )]
    pub verification_key_id: String,
    /// Algorithm of the verification key.
    #[arg(long = "signing-alg", default_value = "RS256", value_name = "ALG")]
    pub signing_alg: String,
    /// Scope the bundle signature must carry.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Bundle files left out of verification (glob patterns, repeatable).
    #[arg(long = "exclude-files-verify", value_name = "GLOB")]
    pub exclude_files_verify: Vec<String>,
    /// Load signed `-b` bundles without verifying their signatures.
    #[arg(long = "skip-verify", conflicts_with = "verification_key")]
    pub skip_verify: bool,
    /// Accepted for OPA compatibility (verdict always runs as a server).
    #[arg(short = 's', long = "server", hide = true)]
    pub server: bool,
    /// Accepted for OPA compatibility (verdict sends no telemetry).
    #[arg(long = "disable-telemetry", hide = true)]
    pub disable_telemetry: bool,
}

pub fn main(args: RunArgs) -> ExitCode {
    telemetry::init(&args.log_level, args.log_format);
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "invalid configuration");
            eprintln!("error: {e:#}");
            return ExitCode::from(super::EXIT_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if needs_config_change(&e) => {
            tracing::error!(error = %format!("{e:#}"), "invalid configuration");
            eprintln!("error: {e:#}");
            ExitCode::from(super::EXIT_CONFIG)
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "verdict stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Start errors that only a config change fixes, found once the config is put to use: an
/// address that is no address, a service's certificate or key that cannot be read. They exit
/// 64 like the config file's own errors, so that a container that will never start says so
/// instead of looking like a crash. A port in use or a bundle that fails stays 1.
fn needs_config_change(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.is::<remote::ClientError>()
            || cause.is::<ConfigError>()
            || matches!(
                cause.downcast_ref::<server::ServerError>(),
                Some(server::ServerError::Bind { error, .. })
                    if error.kind() == std::io::ErrorKind::InvalidInput
            )
    })
}

/// Config file, then `--set`, then flags: each later one wins.
fn load_config(args: &RunArgs) -> anyhow::Result<Config> {
    let (mut config, warnings) = Config::load(args.config.as_deref(), &args.set)?;
    for warning in warnings {
        tracing::warn!(%warning, "configuration");
    }
    if let Some(addr) = &args.grpc_addr {
        config
            .plugins
            .envoy_ext_authz_grpc
            .get_or_insert_with(Default::default)
            .addr = addr.clone();
    }
    if args.skip_verify {
        config.bundle_verification = Verification::Skip;
    } else if let Some(key) = &args.verification_key {
        let verification = signing::VerificationConfig::from_flags(
            key,
            &args.verification_key_id,
            &args.signing_alg,
            args.scope.as_deref(),
            args.exclude_files_verify.clone(),
        )
        .context("--verification-key")?;
        config.bundle_verification = Verification::Keys(Arc::new(verification));
    }
    let v = &mut config.verdict;
    if !args.addr.is_empty() {
        v.addr = args.addr.clone();
    }
    if !args.diagnostic_addr.is_empty() {
        v.diagnostic_addr = args.diagnostic_addr.clone();
    }
    if !args.bundle.is_empty() {
        v.bundles = args.bundle.clone();
    }
    if args.no_watch {
        v.watch = false;
    } else if args.watch {
        v.watch = true;
    }
    if let Some(ms) = args.eval_timeout_ms {
        anyhow::ensure!(ms > 0, "--eval-timeout-ms must be positive");
        v.eval_timeout_ms = ms;
    }
    if args.v0_compatible {
        v.v0_compatible = true;
    }
    if let Some(s) = args.shutdown_grace_period {
        v.shutdown_grace_period_seconds = s;
    }
    Ok(config)
}

/// The bundles to serve: the `-b` paths, then the `bundles` of the config in name order; the
/// built-in example bundle when there are neither.
pub fn sources(config: &Config) -> anyhow::Result<Vec<Source>> {
    let remote = &config.remote;
    if config.verdict.bundles.is_empty() && remote.bundles.is_empty() {
        return Ok(vec![Source::embedded(
            crate::EMBEDDED_BUNDLE_NAME,
            crate::EMBEDDED_BUNDLE,
        )]);
    }
    let mut sources: Vec<Source> = config
        .verdict
        .bundles
        .iter()
        .cloned()
        .map(|path| Source {
            verification: config.bundle_verification.clone(),
            ..Source::path(path)
        })
        .collect();
    for (name, b) in &remote.bundles {
        // OPA verifies with every configured key when a bundle has no `signing` section of
        // its own, so that `keys` alone already protects every bundle.
        let signing_config = match &b.signing {
            Some(signing) => Some(signing.clone()),
            None if !remote.keys.is_empty() => Some(signing::SigningConfig::default()),
            None => None,
        };
        let verification = match signing_config {
            Some(signing) => Verification::Keys(Arc::new(
                signing::VerificationConfig::from_config(remote.keys.clone(), &signing)
                    .map_err(|e| ConfigError::Invalid(format!("bundles.{name}.signing: {e}")))?,
            )),
            None => Verification::NoKeys,
        };
        sources.push(Source {
            name: name.clone(),
            location: Location::Remote {
                persist_dir: b.persist.then(|| remote.persisted_bundle_dir(name)),
            },
            verification,
            size_limit: b.size_limit_bytes,
        });
    }
    Ok(sources)
}

/// The client and URL of the status service, when `status.service` is set. Blocking.
fn status_upload(config: &Config) -> anyhow::Result<Option<(remote::Client, String)>> {
    let Some(status) = config
        .remote
        .status
        .as_ref()
        .filter(|s| !s.service.is_empty())
    else {
        return Ok(None);
    };
    let Some(service) = config.remote.service(&status.service) else {
        anyhow::bail!("status: unknown service {}", status.service);
    };
    let client = remote::Client::new(service)?;
    let path = match &status.partition_name {
        Some(partition) => format!("status/{partition}"),
        None => "status".to_string(),
    };
    let url = client.url(&path);
    Ok(Some((client, url)))
}

/// One poller per remote bundle, each with its service's client. Blocking: reads certificate
/// files.
fn pollers(
    config: &Config,
    sources: &[Source],
    triggers: &mpsc::UnboundedSender<Trigger>,
) -> anyhow::Result<Vec<Poller>> {
    let remote = &config.remote;
    let mut clients: BTreeMap<&str, remote::Client> = BTreeMap::new();
    let mut pollers = Vec::new();
    for (index, source) in sources.iter().enumerate() {
        let Some(b) = remote
            .bundles
            .get(&source.name)
            .filter(|_| source.is_remote())
        else {
            continue;
        };
        let Some(service) = remote.service(&b.service) else {
            anyhow::bail!("bundle {}: unknown service {}", source.name, b.service);
        };
        let client = match clients.get(service.name.as_str()) {
            Some(c) => c.clone(),
            None => {
                let c = remote::Client::new(service)?;
                clients.insert(&service.name, c.clone());
                c
            }
        };
        pollers.push(Poller {
            index,
            name: source.name.clone(),
            url: b.url(&source.name, service),
            client,
            polling: b.polling.clone(),
            size_limit: b
                .size_limit_bytes
                .unwrap_or(config.verdict.bundle_size_limit_bytes),
            triggers: triggers.clone(),
        });
    }
    Ok(pollers)
}

/// A running verdict: what `start` hands back so that callers (main, tests) can serve it.
pub struct Started {
    pub state: Arc<AppState>,
    pub listeners: Vec<Listener>,
    /// The listeners of `/health` and `/metrics` alone (`--diagnostic-addr`).
    pub diagnostic: Vec<Listener>,
    /// The gRPC listener, when `plugins.envoy_ext_authz_grpc` is configured.
    pub grpc: Option<(Listener, tonic::service::Routes)>,
    pub triggers: mpsc::UnboundedSender<Trigger>,
}

/// Loads bundles, binds listeners, and starts the reloader (and watcher). Bundle errors at
/// start are fatal, as OPA's are for `-b` bundles: there is no last good state to serve yet.
pub async fn start(config: Config, sources: Vec<Source>) -> anyhow::Result<Started> {
    let config = Arc::new(config);
    let load = LoadOptions {
        size_limit: config.verdict.bundle_size_limit_bytes,
        v0_compatible: config.verdict.v0_compatible,
    };
    let compile = CompileOptions {
        eval_timeout: Duration::from_millis(config.verdict.eval_timeout_ms),
        check_overlap: true,
    };
    let memory_limit = config.verdict.memory_limit_bytes;
    let (tx, rx) = mpsc::unbounded_channel();
    let pollers = {
        let (config, tx) = (config.clone(), tx.clone());
        let sources = sources.clone();
        tokio::task::spawn_blocking(move || {
            anyhow::Ok((pollers(&config, &sources, &tx)?, status_upload(&config)?))
        })
        .await
        .context("service clients stopped unexpectedly")??
    };
    let (pollers, status_upload) = pollers;
    let persistence = config.remote.persistence_directory.clone();
    let (reloader, snapshot, statuses) = tokio::task::spawn_blocking(move || {
        // Reading the cgroup's limit is file I/O: it belongs here, off the async threads.
        memory::apply(memory::limit(memory_limit, Path::new("/sys/fs/cgroup")));
        let pushed = PushedStore::open(&persistence)?;
        Reloader::start(sources, load, compile, pushed)
    })
    .await
    .context("bundle loading stopped unexpectedly")??;
    let state = AppState::with_writer(config.clone(), snapshot, statuses, tx.clone());
    let uploader = {
        let labels = crate::runtime::status::labels(&state);
        let spool_metrics = state.metrics.as_ref().map(|m| m.spool());
        let config = config.clone();
        tokio::task::spawn_blocking(move || DecisionLog::open(&config, &labels, spool_metrics))
            .await
            .context("decision log start stopped unexpectedly")??
            .and_then(|(log, uploader)| {
                state.attach_decision_log(log);
                uploader
            })
    };

    let mut listeners = Vec::new();
    for addr in &config.verdict.addr {
        listeners.push(Listener::bind(addr).await?);
    }
    let mut diagnostic = Vec::new();
    for addr in &config.verdict.diagnostic_addr {
        diagnostic.push(Listener::bind(addr).await?);
    }
    let grpc = match &config.plugins.envoy_ext_authz_grpc {
        Some(authz) => Some((
            Listener::bind(&authz.addr).await?,
            server::grpc::routes(state.clone(), authz)?,
        )),
        None => None,
    };

    let watcher = if config.verdict.watch {
        match Watcher::start(reloader.sources(), tx.clone()) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch bundle files; reload with SIGHUP");
                None
            }
        }
    } else {
        None
    };
    let debounce = Duration::from_millis(config.verdict.watch_debounce_ms);
    tokio::spawn(reloader.run(state.clone(), rx, debounce, watcher));
    for poller in pollers {
        tokio::spawn(poller.run());
    }
    if let Some(uploader) = uploader {
        tokio::spawn(uploader.run());
    }
    if let Some(status) = &config.remote.status {
        let uploader = StatusUploader {
            upload: status_upload,
            console: status.console,
            state: state.clone(),
        };
        tokio::spawn(uploader.run());
    }
    Ok(Started {
        state,
        listeners,
        diagnostic,
        grpc,
        triggers: tx,
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let grace = Duration::from_secs(config.verdict.shutdown_grace_period_seconds);
    let bundles = sources(&config)?;
    let stop = shutdown_channel()?;
    let admission_config = config.verdict.admission.clone();
    let (watch, debounce) = (
        config.verdict.watch,
        Duration::from_millis(config.verdict.watch_debounce_ms),
    );
    let started = start(config, bundles).await?;
    // After the service: admission decisions go to its decision log and metrics.
    let admission = match admission_config {
        Some(admission) => {
            let app = Some(started.state.clone());
            let webhook =
                crate::admission::http::Webhook::start(admission, watch, debounce, app).await?;
            Some(tokio::spawn(webhook.serve(stopped(stop.clone()), grace)))
        }
        None => None,
    };
    spawn_sighup(started.triggers.clone());
    let addrs: Vec<String> = started.listeners.iter().map(Listener::local_addr).collect();
    let diagnostic: Vec<String> = started
        .diagnostic
        .iter()
        .map(Listener::local_addr)
        .collect();
    let grpc_addr = started.grpc.as_ref().map(|(l, _)| l.local_addr());
    let bundles: Vec<String> = started
        .state
        .snapshot()
        .bundles
        .iter()
        .map(|b| format!("{}@{}", b.name, b.revision))
        .collect();
    tracing::info!(
        addrs = ?addrs,
        diagnostic_addrs = ?diagnostic,
        grpc_addr = grpc_addr.as_deref().unwrap_or("off"),
        bundles = ?bundles,
        "server started"
    );
    let router = server::http::router(started.state.clone());
    let diagnostic = (
        started.diagnostic,
        server::http::diagnostic_router(started.state.clone()),
    );
    server::serve_all(
        started.listeners,
        router,
        diagnostic,
        started.grpc,
        stopped(stop),
        grace,
    )
    .await;
    if let Some(admission) = admission {
        let _ = admission.await;
    }
    Ok(())
}

/// The one SIGTERM/SIGINT of the process, for every listener. SIGTERM is registered here,
/// before any listener starts: a listener registering its own later (the admission webhook
/// starts after the HTTP API) would miss a signal sent while the process was starting.
fn shutdown_channel() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}

async fn stopped(mut stop: tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// SIGHUP reloads every bundle, as operators expect from a daemon.
fn spawn_sighup(tx: mpsc::UnboundedSender<Trigger>) {
    use tokio::signal::unix::{signal, SignalKind};
    tokio::spawn(async move {
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP");
            return;
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading bundles");
            if tx.send(Trigger::All).is_err() {
                return;
            }
        }
    });
}
