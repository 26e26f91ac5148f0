//! `verdict run`: serve OPA's REST API on bundles, with OPA's flags where OPA has them.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::app::{signals, App, AppError};
use crate::bundle::{signing, Verification};
use crate::config::Config;
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
    /// Front an upstream as an authorizing reverse proxy: ADDR=UPSTREAM, e.g.
    /// `:8080=http://127.0.0.1:9000` or `:8080=unix:///run/gateway.sock` (repeatable). Every
    /// request is decided as ext_authz decides it and only allowed ones are forwarded.
    #[arg(long = "proxy", value_name = "ADDR=UPSTREAM")]
    pub proxy: Vec<String>,
    /// A bundle directory or .tar.gz (repeatable). Without one, the built-in example payment
    /// bundle (bundles/payment) is served.
    #[arg(short = 'b', long = "bundle", value_name = "PATH")]
    pub bundle: Vec<PathBuf>,
    /// Bundles as positional arguments, as in `opa run -s PATH...`: the same as `-b PATH`.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
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
    /// Override a configuration value with a file's contents, OPA's --set-file (repeatable).
    #[arg(long = "set-file", value_name = "KEY=PATH")]
    pub set_file: Vec<String>,
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
    /// Accepted for OPA compatibility: verdict always runs as a server.
    #[arg(short = 's', long = "server")]
    pub server: bool,
    /// Accepted for OPA compatibility (verdict sends no telemetry).
    #[arg(long = "disable-telemetry", hide = true)]
    pub disable_telemetry: bool,
}

pub fn main(args: RunArgs) -> ExitCode {
    telemetry::init(&args.log_level, args.log_format);
    let config = match load_config(&args) {
        Ok(config) => config,
        Err(e) => return stop("invalid configuration", &e, super::EXIT_CONFIG),
    };
    // Threads for the CPUs the cgroup grants, not for every core of the node.
    let cpus = crate::runtime::cpus::available();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cpus)
        .max_blocking_threads(crate::runtime::cpus::blocking_threads(cpus))
        // Decisions are evaluated on these threads, with the depth the guard admits.
        .thread_stack_size(crate::policy::guard::stack::EVAL_STACK)
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
            // Errors only a config change fixes exit 64 like the config file's own, so that a
            // container that will never start says so instead of looking like a crash.
            let config_error = e
                .downcast_ref::<AppError>()
                .is_some_and(AppError::needs_config_change);
            match config_error {
                true => stop("invalid configuration", &e, super::EXIT_CONFIG),
                false => stop("verdict stopped", &e, 1),
            }
        }
    }
}

fn stop(what: &str, e: &anyhow::Error, code: u8) -> ExitCode {
    tracing::error!(error = %format!("{e:#}"), "{what}");
    eprintln!("error: {e:#}");
    ExitCode::from(code)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = signals::shutdown_on_signal().context("cannot listen for SIGTERM")?;
    signals::survive_file_size_limit().context("cannot handle SIGXFSZ")?;
    let bound = App::new(config).bind().await?;
    signals::reload_on_hangup(bound.triggers());
    bound.run(shutdown).await;
    Ok(())
}

/// Config file, then `--set`, then flags: each later one wins.
fn load_config(args: &RunArgs) -> anyhow::Result<Config> {
    let (mut config, warnings) =
        Config::load_with_files(args.config.as_deref(), &args.set, &args.set_file)?;
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
    for proxy in &args.proxy {
        let (addr, upstream) = proxy
            .split_once('=')
            .with_context(|| format!("--proxy {proxy:?}: want ADDR=UPSTREAM"))?;
        v.proxy
            .push(crate::config::ProxyConfig::new(addr, upstream));
    }
    if !args.bundle.is_empty() || !args.paths.is_empty() {
        v.bundles = args.bundle.iter().chain(&args.paths).cloned().collect();
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
