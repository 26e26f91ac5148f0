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
//! - `server`: listeners, the HTTP API and the gRPC services.
//! - `telemetry`: logs.
//! - `admission`: the Gatekeeper-style admission webhook: ConstraintTemplates and Constraints,
//!   `AdmissionSet::evaluate` (transport-free), its HTTPS listener and gator suites.
//! - `config`: OPA's configuration format plus verdict's own section.
//! - `cli`: the `run`, `eval`, `test`, `build`, `sign` and `verify` commands.

pub mod admission;
pub mod bundle;
pub mod cli;
pub mod config;
pub mod decision_log;
pub mod policy;
pub mod remote;
pub mod runtime;
pub mod server;
pub mod telemetry;

/// The example payment bundle, built into the binary from `bundles/payment` (see build.rs):
/// what `verdict run` serves when no bundle is named.
pub const EMBEDDED_BUNDLE: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/payment-bundle.tar.gz"));

/// The name the embedded bundle is served under, as if `-b bundles/payment` had been given.
pub const EMBEDDED_BUNDLE_NAME: &str = "bundles/payment";
