//! `verdict sign`: writes the `.signatures.json` of existing bundles as `opa sign` does: one JWT
//! listing every file of the bundles with its SHA-256 digest.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::anyhow;

use super::build::{read_input, Failure, SigningArgs, SIGNING_KEY_MISSING};
use crate::bundle::build::write_atomic;
use crate::bundle::signing;

#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// Bundle directories or tarballs to sign.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Load paths as bundle files or root directories (required, as in OPA).
    #[arg(short = 'b', long = "bundle")]
    bundle: bool,
    #[command(flatten)]
    signing: SigningArgs,
    /// Set the location for the .signatures.json file.
    #[arg(short = 'o', long = "output-file-path", default_value = ".")]
    output_file_path: PathBuf,
}

pub fn main(args: SignArgs) -> ExitCode {
    match sign(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}

fn sign(args: SignArgs) -> Result<(), Failure> {
    if args.paths.is_empty() {
        return Err(Failure::Usage(anyhow!(
            "specify atleast one path containing policy and/or data files"
        )));
    }
    if args.signing.signing_key.is_none() {
        return Err(Failure::Usage(anyhow!(SIGNING_KEY_MISSING)));
    }
    if !args.bundle {
        return Err(Failure::Usage(anyhow!(
            "enable bundle mode (ie. --bundle) to sign bundle files or directories"
        )));
    }
    // `opa sign` passes no key id: no `kid` header, no `keyid` claim.
    let (Some(key), claims) = args.signing.load(None)? else {
        return Err(Failure::Usage(anyhow!(SIGNING_KEY_MISSING)));
    };
    let mut infos = Vec::new();
    for path in &args.paths {
        let input = read_input(path, true).map_err(Failure::Failed)?;
        // A directory's files are named under the directory as given, as OPA names them.
        let base = if input.is_dir {
            input.name.as_str()
        } else {
            ""
        };
        for f in input
            .files
            .iter()
            .filter(|f| !f.path.ends_with("/.signatures.json"))
        {
            infos.push(signing::file_info(base, f).map_err(|e| Failure::Failed(e.into()))?);
        }
    }
    let token = signing::sign_token(&infos, &key, claims.as_ref())
        .map_err(|e| Failure::Failed(e.into()))?;
    let out = args.output_file_path.join(".signatures.json");
    write_atomic(&out, &signing::signatures_json(&token, None))
        .map_err(|e| Failure::Failed(e.into()))
}
