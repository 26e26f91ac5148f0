//! What the service is made of, read from its configuration: the bundles to serve (local,
//! remote, or the built-in example), one poller per remote bundle, and the status upload.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::AppError;
use crate::bundle::{signing, Location, Source, Verification};
use crate::config::{Config, ConfigError};
use crate::remote::{self, Poller};
use crate::runtime::Trigger;

/// The bundles to serve: the `-b` paths, then the `bundles` of the config in name order; the
/// built-in example bundle when there are neither.
pub fn sources(config: &Config) -> Result<Vec<Source>, ConfigError> {
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
pub(super) fn status_upload(config: &Config) -> Result<Option<(remote::Client, String)>, AppError> {
    let Some(status) = config
        .remote
        .status
        .as_ref()
        .filter(|s| !s.service.is_empty())
    else {
        return Ok(None);
    };
    let Some(service) = config.remote.service(&status.service) else {
        return Err(
            ConfigError::Invalid(format!("status: unknown service {}", status.service)).into(),
        );
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
pub(super) fn pollers(
    config: &Config,
    sources: &[Source],
    triggers: &mpsc::UnboundedSender<Trigger>,
) -> Result<Vec<Poller>, AppError> {
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
            return Err(ConfigError::Invalid(format!(
                "bundle {}: unknown service {}",
                source.name, b.service
            ))
            .into());
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
