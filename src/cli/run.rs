//! `verdict run`: serve OPA's REST API on bundles, with OPA's flags where OPA has them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;

use crate::bundle::{LoadOptions, Location, Source};
use crate::config::Config;
use crate::policy::CompileOptions;
use crate::runtime::{memory, watcher::Watcher, AppState, Reloader, Trigger};
use crate::server::{self, Listener};
use crate::telemetry::{self, LogFormat};

#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Listen address, host:port or unix:///path.sock (repeatable) [default: 127.0.0.1:8181].
    #[arg(short = 'a', long = "addr", value_name = "ADDR")]
    pub addr: Vec<String>,
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
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "verdict stopped");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
    let v = &mut config.verdict;
    if !args.addr.is_empty() {
        v.addr = args.addr.clone();
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

/// The bundles to serve: the configured paths, else the built-in example bundle.
pub fn sources(config: &Config) -> Vec<Source> {
    if config.verdict.bundles.is_empty() {
        vec![Source {
            name: crate::EMBEDDED_BUNDLE_NAME.into(),
            location: Location::Embedded(crate::EMBEDDED_BUNDLE),
        }]
    } else {
        config
            .verdict
            .bundles
            .iter()
            .cloned()
            .map(Source::path)
            .collect()
    }
}

/// A running verdict: what `start` hands back so that callers (main, tests) can serve it.
pub struct Started {
    pub state: Arc<AppState>,
    pub listeners: Vec<Listener>,
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
    let (reloader, snapshot, statuses) = tokio::task::spawn_blocking(move || {
        // Reading the cgroup's limit is file I/O: it belongs here, off the async threads.
        memory::apply(memory::limit(memory_limit, Path::new("/sys/fs/cgroup")));
        Reloader::start(sources, load, compile)
    })
    .await
    .context("bundle loading stopped unexpectedly")??;
    let state = AppState::new(config.clone(), snapshot, statuses);

    let mut listeners = Vec::new();
    for addr in &config.verdict.addr {
        listeners.push(Listener::bind(addr).await?);
    }
    let grpc = match &config.plugins.envoy_ext_authz_grpc {
        Some(authz) => Some((
            Listener::bind(&authz.addr).await?,
            server::grpc::routes(state.clone(), authz)?,
        )),
        None => None,
    };

    let (tx, rx) = mpsc::unbounded_channel();
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
    Ok(Started {
        state,
        listeners,
        grpc,
        triggers: tx,
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let grace = Duration::from_secs(config.verdict.shutdown_grace_period_seconds);
    let bundles = sources(&config);
    let started = start(config, bundles).await?;
    spawn_sighup(started.triggers.clone());
    let addrs: Vec<String> = started.listeners.iter().map(Listener::local_addr).collect();
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
        grpc_addr = grpc_addr.as_deref().unwrap_or("off"),
        bundles = ?bundles,
        "server started"
    );
    let router = server::http::router(started.state.clone());
    server::serve_all(
        started.listeners,
        router,
        started.grpc,
        server::shutdown_signal(),
        grace,
    )
    .await;
    Ok(())
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
