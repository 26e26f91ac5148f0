//! The service assembled: `App::bind` turns a configuration into bound listeners and started
//! background work (the reloader, its watcher, bundle pollers, status and decision log
//! uploads); `Bound::run` serves every listener (HTTP API, diagnostics, gRPC, admission, the
//! authorizing proxy) until one shutdown token is cancelled, then drains them all within one
//! grace period.
//!
//! `main` and the tests start verdict the same way; the CLI only turns flags into a `Config`.

mod proxies;
pub mod signals;
mod sources;
pub mod store_lock;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::bundle::{LoadOptions, Source};
use crate::config::{AdmissionConfig, Config, ConfigError};
use crate::decision_log::{DecisionLog, DecisionLogError};
use crate::policy::CompileOptions;
use crate::remote::{self, StatusUploader};
use crate::runtime::admission::AdmissionLoader;
use crate::runtime::{memory, watcher::Watcher, AppState, Reloader, StartupError, Trigger};
use crate::server::conn::{ConnLimits, Serve, TlsSource};
use crate::server::{self, Listener, ServerError};
use crate::tls::TlsError;
use proxies::{bind_proxies, ProxyListener};
pub use sources::sources;

/// Why verdict could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Client(#[from] remote::ClientError),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error(transparent)]
    DecisionLog(#[from] DecisionLogError),
    #[error("admission TLS: {0}")]
    AdmissionTls(#[from] TlsError),
    #[error("proxy {addr} TLS: {error}")]
    ProxyTls { addr: String, error: TlsError },
    #[error("{0} stopped unexpectedly")]
    Lost(&'static str),
    #[error("pushed data store {} is locked by a running {process} (pid {pid}): stop it, or give this one another persistence_directory", path.display())]
    StoreLocked {
        path: std::path::PathBuf,
        pid: u32,
        process: String,
    },
}

impl AppError {
    /// Start errors that only a config change fixes, found once the config is put to use: an
    /// address that is no address, a service's certificate or key that cannot be read. A
    /// port in use or a bundle that fails is not one of them.
    pub fn needs_config_change(&self) -> bool {
        match self {
            AppError::Config(_) | AppError::Client(_) => true,
            AppError::DecisionLog(e) => matches!(e, DecisionLogError::Config { .. }),
            AppError::ProxyTls { .. } => true,
            AppError::Server(ServerError::Bind { error, .. }) => {
                error.kind() == std::io::ErrorKind::InvalidInput
            }
            _ => false,
        }
    }
}

/// A verdict to start: its configuration and, unless the configuration names them, its
/// bundles.
pub struct App {
    config: Config,
    sources: Option<Vec<Source>>,
}

/// A started verdict: listeners bound, bundles active, background work running; `run` serves.
pub struct Bound {
    state: Arc<AppState>,
    triggers: mpsc::UnboundedSender<Trigger>,
    http: Vec<Listener>,
    diagnostic: Vec<Listener>,
    grpc: Option<(Listener, server::grpc::Services)>,
    admission: Option<(Listener, AdmissionConfig)>,
    proxies: Vec<ProxyListener>,
    grace: Duration,
    /// The reloader, the bundle pollers and the uploaders. They end with the service, as OPA
    /// stops its plugins at shutdown; what the decision log has not uploaded stays in its
    /// spool for the next start.
    background: Vec<tokio::task::JoinHandle<()>>,
}

impl App {
    pub fn new(config: Config) -> App {
        App {
            config,
            sources: None,
        }
    }

    /// Serves these bundles instead of those the configuration names.
    pub fn with_sources(mut self, sources: Vec<Source>) -> App {
        self.sources = Some(sources);
        self
    }

    /// Loads bundles and the admission files, binds every listener and starts the background
    /// work. Bundle errors are fatal here, as OPA's are for `-b` bundles: there is no last
    /// good state to serve yet.
    pub async fn bind(self) -> Result<Bound, AppError> {
        let sources = match self.sources {
            Some(s) => s,
            None => sources(&self.config)?,
        };
        let config = Arc::new(self.config);
        let (tx, rx) = mpsc::unbounded_channel();
        let (pollers, status_upload) = {
            let (config, tx, sources) = (config.clone(), tx.clone(), sources.clone());
            blocking("service clients", move || {
                Ok((
                    sources::pollers(&config, &sources, &tx)?,
                    sources::status_upload(&config)?,
                ))
            })
            .await?
        };
        let (reloader, snapshot, statuses, admission) = {
            let config = config.clone();
            blocking("bundle loading", move || {
                // Reading the cgroup's limit is file I/O: it belongs here, off async threads.
                let limit = config.verdict.memory_limit_bytes;
                memory::apply(memory::limit(limit, Path::new("/sys/fs/cgroup")));
                let pushed = store_lock::open_pushed(&config.remote.persistence_directory)?;
                let (reloader, snapshot, statuses) = Reloader::start(
                    sources,
                    load_options(&config),
                    compile_options(&config),
                    pushed,
                )?;
                let admission = match &config.verdict.admission {
                    Some(c) => Some(AdmissionLoader::start(c.clone())?),
                    None => None,
                };
                Ok((reloader, snapshot, statuses, admission))
            })
            .await?
        };
        let state = AppState::with_writer(config.clone(), snapshot, statuses, tx.clone());
        let reloader = match admission {
            Some((loader, admission)) => {
                state.attach_admission(admission);
                reloader.with_admission(loader)
            }
            None => reloader,
        };
        let uploader = {
            let labels = crate::runtime::status::labels(&state);
            let spool_metrics = state.metrics.as_ref().map(|m| m.spool());
            let config = config.clone();
            blocking("decision log start", move || {
                let Some((log, upload)) = DecisionLog::open(&config, &labels, spool_metrics)?
                else {
                    return Ok(None);
                };
                let uploader = upload.map(remote::Uploader::new).transpose()?;
                Ok(Some((log, uploader)))
            })
            .await?
            .and_then(|(log, uploader)| {
                state.attach_decision_log(log);
                uploader
            })
        };

        let mut bound = Bound {
            http: bind_all(&config.verdict.addr).await?,
            diagnostic: bind_all(&config.verdict.diagnostic_addr).await?,
            grpc: match &config.plugins.envoy_ext_authz_grpc {
                Some(authz) => Some((
                    Listener::bind(&authz.addr).await?,
                    server::grpc::routes(state.clone(), authz)?,
                )),
                None => None,
            },
            admission: match &config.verdict.admission {
                Some(c) => Some((Listener::bind(&c.addr).await?, c.clone())),
                None => None,
            },
            proxies: bind_proxies(&state, &config.verdict.proxy).await?,
            grace: Duration::from_secs(config.verdict.shutdown_grace_period_seconds),
            state: state.clone(),
            triggers: tx.clone(),
            background: Vec::new(),
        };

        let watcher = match config.verdict.watch {
            true => Watcher::start(reloader.sources(), config.verdict.admission.as_ref(), tx)
                .map_err(
                    |e| tracing::warn!(error = %e, "cannot watch bundle files; reload with SIGHUP"),
                )
                .ok(),
            false => None,
        };
        let debounce = Duration::from_millis(config.verdict.watch_debounce_ms);
        // The status plugin starts first: its first report shows the start-up as it is before
        // the pollers and the decision-log uploader have run (OPA's order).
        let status = config
            .remote
            .status
            .as_ref()
            .map(|s| StatusUploader::new(status_upload, s.console, state.clone()));
        let background = &mut bound.background;
        background.push(tokio::spawn(reloader.run(
            state.clone(),
            rx,
            debounce,
            watcher,
        )));
        for poller in pollers {
            background.push(tokio::spawn(poller.run()));
        }
        if let Some(uploader) = uploader {
            background.push(tokio::spawn(uploader.run()));
        }
        state.mark_started();
        if let Some(status) = status {
            background.push(tokio::spawn(status.run()));
        }
        Ok(bound)
    }
}

impl Bound {
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The reloader's channel: what SIGHUP and the tests use to ask for a reload.
    pub fn triggers(&self) -> mpsc::UnboundedSender<Trigger> {
        self.triggers.clone()
    }

    pub fn http_addrs(&self) -> Vec<String> {
        self.http.iter().map(Listener::local_addr).collect()
    }

    pub fn diagnostic_addrs(&self) -> Vec<String> {
        self.diagnostic.iter().map(Listener::local_addr).collect()
    }

    pub fn grpc_addr(&self) -> Option<String> {
        self.grpc.as_ref().map(|(l, _)| l.local_addr())
    }

    /// The proxy listeners' addresses, in configuration order.
    pub fn proxy_addrs(&self) -> Vec<String> {
        self.proxies
            .iter()
            .map(|p| p.listener.local_addr())
            .collect()
    }

    pub fn admission_addr(&self) -> Option<std::net::SocketAddr> {
        self.admission
            .as_ref()
            .and_then(|(l, _)| l.local_addr().parse().ok())
    }

    /// Serves every listener until `shutdown` is cancelled, then gives requests in flight the
    /// configured grace period, all listeners at once.
    pub async fn run(self, shutdown: CancellationToken) {
        let bundles: Vec<String> = self
            .state
            .snapshot()
            .bundles
            .iter()
            .map(|b| format!("{}@{}", b.name, b.revision))
            .collect();
        tracing::info!(
            addrs = ?self.http_addrs(),
            diagnostic_addrs = ?self.diagnostic_addrs(),
            grpc_addr = self.grpc_addr().as_deref().unwrap_or("off"),
            admission_addr = %self.admission_addr().map_or("off".to_string(), |a| a.to_string()),
            bundles = ?bundles,
            "server started"
        );
        let Bound {
            state,
            http,
            diagnostic,
            grpc,
            admission,
            proxies,
            grace,
            background,
            ..
        } = self;
        let mut serving = tokio::task::JoinSet::new();
        let limits = ConnLimits {
            header_read_timeout: Duration::from_millis(state.config.verdict.header_read_timeout_ms),
            max_connections: state.config.verdict.max_connections,
        };
        let mut http_listener = |listener, router, tls, name| {
            let serve = Serve {
                listener,
                router,
                tls,
                limits,
                state: state.clone(),
                name,
            };
            serving.spawn(server::conn::serve(serve, shutdown.clone(), grace));
        };
        for listener in http {
            http_listener(listener, server::http::router(state.clone()), None, "http");
        }
        for listener in diagnostic {
            let router = server::http::diagnostic_router(state.clone());
            http_listener(listener, router, None, "diagnostic");
        }
        if let Some((listener, config)) = admission {
            tracing::info!(addr = %listener.local_addr(), "admission webhook serving HTTPS");
            let router = server::admission::router(state.clone(), config);
            let current = state.clone();
            let tls: TlsSource = Arc::new(move || current.admission().map(|a| a.tls.clone()));
            http_listener(listener, router, Some(tls), "admission");
        }
        for proxy in proxies {
            tracing::info!(addr = %proxy.listener.local_addr(), tls = proxy.tls.is_some(), "authorizing proxy serving");
            let tls: Option<TlsSource> = proxy.tls.map(|current| {
                tokio::spawn(current.clone().follow(shutdown.clone()));
                Arc::new(move || current.get()) as TlsSource
            });
            http_listener(proxy.listener, proxy.router, tls, "proxy");
        }
        if let Some((listener, routes)) = grpc {
            serving.spawn(server::grpc::serve(
                vec![listener],
                routes,
                (limits, state.clone()),
                shutdown.clone(),
                grace,
            ));
        }
        shutdown.cancelled().await;
        tracing::info!(
            grace_seconds = grace.as_secs(),
            "shutting down; finishing requests in flight"
        );
        while serving.join_next().await.is_some() {}
        for task in background {
            task.abort();
        }
    }
}

fn load_options(config: &Config) -> LoadOptions {
    LoadOptions {
        size_limit: config.verdict.bundle_size_limit_bytes,
        v0_compatible: config.verdict.v0_compatible,
    }
}

fn compile_options(config: &Config) -> CompileOptions {
    CompileOptions {
        eval_timeout: Duration::from_millis(config.verdict.eval_timeout_ms),
        compile_timeout: Duration::from_millis(config.verdict.compile_timeout_ms),
        vm: crate::policy::vm::VmOptions {
            engine: config.verdict.engine,
            shadow_every: config.verdict.engine_shadow_every,
        },
        ..CompileOptions::default()
    }
}

async fn bind_all(addrs: &[String]) -> Result<Vec<Listener>, ServerError> {
    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        listeners.push(Listener::bind(addr).await?);
    }
    Ok(listeners)
}

/// Runs start-up file I/O and compilation on a blocking thread.
async fn blocking<T: Send + 'static>(
    what: &'static str,
    work: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| AppError::Lost(what))?
}
