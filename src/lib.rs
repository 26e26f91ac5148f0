//! verdict: an OPA-compatible policy decision service.
//!
//! A request is a short walk: a transport adapter (`server::http`) reads it, the decision core
//! (`policy`) evaluates it on the immutable `runtime::Snapshot` it loaded once, and the adapter
//! writes OPA's response. Everything else happens beside that walk:
//!
//! - `bundle`: reading and writing OPA bundles (directory or tar.gz), manifests, roots, limits,
//!   signatures, and the persisted copy of downloaded bundles.
//! - `policy`: compiling bundles into a `PolicySet` with regorus; evaluation; the test runner;
//!   OPA-compatible JSON output.
//! - `runtime`: the `ArcSwap` holding the live snapshot, the reloader (its only writer), the
//!   file watcher, bundle status, and the data pushed through the Data API with its SQLite store.
//! - `decision_log`: decision log events in OPA's format, masked, written to the console and
//!   committed to a durable spool before the decision is answered, then uploaded.
//! - `remote`: bundle servers and status services: the HTTP client, the bundle poller, the
//!   status upload.
//! - `admission`: Gatekeeper's model: ConstraintTemplates and Constraints,
//!   `AdmissionSet::evaluate` (transport-free) and gator suites. Its live state and reloads
//!   are the runtime's, its listener the server's: an AdmissionReview walks socket →
//!   `server::admission` → `AdmissionSet::evaluate` → `runtime` (logged and counted) like a
//!   Data API decision.
//! - `server`: listeners and the transports: the HTTP API, gRPC, the admission webhook over TLS.
//! - `app`: the assembly: `App::bind` (config → bound listeners, started background work) and
//!   `Bound::run` (serve until the one shutdown token, then drain); the process's signals.
//! - `tls`: PEM files into rustls server configurations.
//! - `gojson`: JSON as OPA (Go) reads and writes it, byte for byte.
//! - `telemetry`: logs and metrics.
//! - `config`: OPA's configuration format plus verdict's own section.
//! - `provenance`: what this build is (version, commit, time, host).
//! - `cli`: the `run`, `eval`, `test`, `build`, `sign` and `verify` commands.
//!
//! Arrows point one way: `policy`, `bundle`, `admission` (the decision core) ← `runtime` ←
//! `server`, `remote` ← `app` ← `cli`.

pub mod admission;
pub mod app;
pub mod bundle;
pub mod cli;
pub mod config;
pub mod decision_log;
pub mod gojson;
pub mod policy;
pub mod provenance;
pub mod remote;
pub mod runtime;
pub mod server;
pub mod telemetry;
pub mod tls;

/// The example payment bundle, built into the binary from `bundles/payment` (see build.rs):
/// what `verdict run` serves when no bundle is named.
pub const EMBEDDED_BUNDLE: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/payment-bundle.tar.gz"));

/// The name the embedded bundle is served under, as if `-b bundles/payment` had been given.
pub const EMBEDDED_BUNDLE_NAME: &str = "bundles/payment";
