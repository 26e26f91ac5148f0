//! Talking to OPA-style services: an HTTP client per configured service (TLS, bearer tokens,
//! client certificates, headers), the bundle poller that downloads remote bundles, the
//! status plugin that uploads status reports, and the upload of spooled decision logs.
//!
//! Nothing here activates a bundle: the poller hands what it downloads to the reloader, which
//! stays the only writer of the live snapshot.

pub mod client;
pub mod decision_logs;
pub mod poller;
pub mod status;

pub use client::{Client, ClientError};
pub use decision_logs::{UploadError, Uploader};
pub use poller::Poller;
pub use status::{StatusError, StatusUploader};
