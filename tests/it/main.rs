//! The integration tests, one binary so that the crate is linked once: each module starts the
//! real server (in process or as the built binary) and talks to it over real sockets.
//! The evaluation memory ceiling is process-wide, so its test stays a binary of its own
//! (`tests/memory.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod admission;
mod admission_bad_input;
mod admission_reload;
mod admission_verify;
mod api;
mod api_service;
mod batch;
mod builtins;
mod bundles;
mod bundles_layout;
mod cli;
mod cli_bundles;
mod cli_coverage;
mod cli_errors;
mod cli_habits;
mod clients;
mod decision_log;
mod decision_log_faults;
mod decision_log_golden;
mod deploy;
mod docs_examples;
mod engine_depth;
mod engine_guard;
mod engine_vm;
mod eval_isolation;
mod golden;
mod graphql;
mod grpc;
mod grpc_golden;
mod grpc_health;
mod grpc_services;
mod hot_swap;
mod limits;
mod logging;
mod metrics;
mod metrics_alloc;
mod opa_habits;
mod policy_api;
mod proxy;
mod proxy_faults;
mod proxy_live;
mod pushed_data;
mod pushed_data_lifecycle;
mod remote;
mod remote_delta;
mod remote_faults;
mod remote_trust;
mod signing;
mod signing_cli;
mod status_report;
