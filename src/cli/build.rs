//! `verdict build`: packages policy and data files into a bundle tarball as `opa build` does,
//! with OPA's flags for verifying signed input bundles and for signing the output.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context};

use crate::bundle::build::{self, BuildOptions, Input};
use crate::bundle::reader::{self, RawFile};
use crate::bundle::signing::{self, SigningKey, VerificationConfig};
use crate::bundle::DEFAULT_SIZE_LIMIT_BYTES;

#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// Policy and data files or directories; bundle directories or tarballs with --bundle.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Set the output filename.
    #[arg(short = 'o', long = "output", default_value = "bundle.tar.gz")]
    output: PathBuf,
    /// Set the output bundle revision.
    #[arg(short = 'r', long = "revision")]
    revision: Option<String>,
    /// Load paths as bundle files or root directories.
    #[arg(short = 'b', long = "bundle")]
    bundle: bool,
    #[command(flatten)]
    signing: SigningArgs,
    /// Set the secret (HMAC) or path of the PEM file containing the public key (RSA and ECDSA).
    #[arg(long = "verification-key", value_name = "KEY")]
    verification_key: Option<String>,
    /// Name assigned to the verification key used for bundle verification.
    #[arg(long = "verification-key-id", default_value = "default")]
    verification_key_id: String,
    /// Scope to use for bundle signature verification.
    #[arg(long = "scope")]
    scope: Option<String>,
    /// Set file names to exclude during bundle verification.
    #[arg(
        long = "exclude-files-verify",
        value_delimiter = ',',
        value_name = "GLOB"
    )]
    exclude_files_verify: Vec<String>,
    /// Treat modules without a declared Rego version as v0.
    #[arg(long)]
    v0_compatible: bool,
}

/// The signing flags `opa build` and `opa sign` share.
#[derive(Debug, clap::Args)]
pub struct SigningArgs {
    /// Set the secret (HMAC) or path of the PEM file containing the private key (RSA and ECDSA).
    #[arg(long = "signing-key", value_name = "KEY")]
    pub signing_key: Option<String>,
    /// Name of the signing algorithm.
    #[arg(long = "signing-alg", default_value = "RS256")]
    pub signing_alg: String,
    /// Set path of JSON file containing optional claims.
    #[arg(long = "claims-file", value_name = "FILE")]
    pub claims_file: Option<PathBuf>,
}

/// OPA's words when a claims file is given without a key (and `opa sign` without a key).
pub const SIGNING_KEY_MISSING: &str =
    "specify the secret (HMAC) or path of the PEM file containing the private key (RSA and ECDSA)";

/// A failure and whether the user's flags caused it (exit 64) or the build did (exit 1).
pub enum Failure {
    Usage(anyhow::Error),
    Failed(anyhow::Error),
}

impl Failure {
    pub fn exit(self) -> ExitCode {
        let (e, code) = match self {
            Failure::Usage(e) => (e, ExitCode::from(super::EXIT_CONFIG)),
            Failure::Failed(e) => (e, ExitCode::FAILURE),
        };
        eprintln!("error: {e:#}");
        code
    }
}

pub fn main(args: BuildArgs) -> ExitCode {
    match build(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

fn build(args: BuildArgs) -> Result<(), Failure> {
    let (key, claims) = args.signing.load(Some(&args.verification_key_id))?;
    let verification = match &args.verification_key {
        Some(key) => Some(
            VerificationConfig::from_flags(
                key,
                &args.verification_key_id,
                &args.signing.signing_alg,
                args.scope.as_deref(),
                args.exclude_files_verify.clone(),
            )
            .map_err(|e| Failure::Usage(e.into()))?,
        ),
        None => None,
    };
    if (verification.is_some() || key.is_some()) && !args.bundle {
        return Err(Failure::Usage(anyhow!(
            "enable bundle mode (ie. --bundle) to verify or sign bundle files or directories"
        )));
    }
    let mut inputs = Vec::new();
    for path in &args.paths {
        if !args.bundle && path.join(".manifest").is_file() {
            eprintln!(
                "Warning: .manifest file found in {:?} but -b flag not specified. Manifest will be ignored.",
                path.display().to_string()
            );
        }
        let input = read_input(path, args.bundle).map_err(Failure::Failed)?;
        if args.bundle {
            let base = if input.is_dir {
                input.name.as_str()
            } else {
                ""
            };
            signing::check(&input.files, base, verification.as_ref())
                .map_err(|e| Failure::Failed(anyhow!("load error: bundle {}: {e}", input.name)))?;
        }
        inputs.push(input);
    }
    let options = BuildOptions {
        bundle_mode: args.bundle,
        revision: args.revision.clone(),
        v0_compatible: args.v0_compatible,
    };
    let mut files = build::assemble(inputs, &options).map_err(|e| Failure::Failed(e.into()))?;
    if let Some(key) = &key {
        let signatures =
            signing::sign(&files, key, claims).map_err(|e| Failure::Failed(e.into()))?;
        build::add_signatures(&mut files, signatures);
    }
    let mut tarball = Vec::new();
    build::write_tarball(&files, &mut tarball)
        .context("writing the bundle")
        .map_err(Failure::Failed)?;
    build::write_atomic(&args.output, &tarball).map_err(|e| Failure::Failed(e.into()))
}

impl SigningArgs {
    /// The signing key and claims, checked before anything is read. `key_id` goes in the JWT's
    /// `kid` unless a claims file is given, as `opa build` does; then the claims' `kid` does.
    pub fn load(
        &self,
        key_id: Option<&str>,
    ) -> Result<(Option<SigningKey>, Option<Claims>), Failure> {
        let Some(key) = &self.signing_key else {
            if self.claims_file.is_some() {
                return Err(Failure::Usage(anyhow!(SIGNING_KEY_MISSING)));
            }
            return Ok((None, None));
        };
        let claims = match &self.claims_file {
            Some(path) => Some(read_claims(path).map_err(Failure::Usage)?),
            None => None,
        };
        // A claims file replaces the key id flag, as in `opa build`; its own `kid` names the
        // key in the JWT header, which is where verifiers look first (a `kid` left in the
        // payload alone names nothing, and the bundle would be refused for an empty key id).
        let key_id = match &claims {
            None => key_id.map(str::to_string),
            Some(claims) => claims
                .get("kid")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string),
        };
        let key = SigningKey::new(key, &self.signing_alg, key_id)
            .map_err(|e| Failure::Usage(e.into()))?;
        Ok((Some(key), claims))
    }
}

/// The optional claims of `--claims-file`, a JSON object.
pub type Claims = serde_json::Map<String, serde_json::Value>;

fn read_claims(path: &Path) -> anyhow::Result<Claims> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{}: claims must be a JSON object", path.display()))
}

/// Reads one path as `opa build` takes it: a directory or tarball (a bundle with -b), or
/// without -b also a single Rego or data file.
pub fn read_input(path: &Path, bundle_mode: bool) -> anyhow::Result<Input> {
    let name = path.display().to_string();
    let is_dir = path.is_dir();
    let single = |bundle_path: String| -> anyhow::Result<Vec<RawFile>> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {name}"))?;
        Ok(vec![RawFile {
            path: bundle_path,
            bytes,
        }])
    };
    let files = match path.extension().and_then(|e| e.to_str()) {
        _ if is_dir || bundle_mode => reader::read_path(path, DEFAULT_SIZE_LIMIT_BYTES)
            .map_err(|e| anyhow!("load error: bundle {name}: {e}"))?,
        Some("rego") => single(format!("/{}", build::clean(&name)))?,
        Some("json") => single("/data.json".into())?,
        Some("yaml" | "yml") => single("/data.yaml".into())?,
        _ => reader::read_path(path, DEFAULT_SIZE_LIMIT_BYTES)
            .map_err(|e| anyhow!("load error: {name}: {e}"))?,
    };
    Ok(Input {
        name,
        files,
        is_dir,
    })
}
