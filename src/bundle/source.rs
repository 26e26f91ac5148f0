//! Where bundles come from and how they are opened: a `Source` (path, embedded bytes or a
//! bundle service's download), its signature check, and the paths `opa eval -d` takes.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{persist, reader, signing, Bundle, BundleError, LoadError, LoadOptions, RawFile};

/// Where a bundle comes from: a path on disk, bytes built into the binary, or a bundle
/// service (whose downloads reach the reloader as bytes).
#[derive(Debug, Clone)]
pub enum Location {
    Path(PathBuf),
    Embedded(&'static [u8]),
    /// Downloaded; kept in `persist_dir` between runs when persistence is on.
    Remote {
        persist_dir: Option<PathBuf>,
    },
}

/// How a bundle's signature is checked.
#[derive(Debug, Clone, Default)]
pub enum Verification {
    /// No keys configured: unsigned bundles load, signed ones are refused for want of a key
    /// (OPA's "verification key not provided").
    #[default]
    NoKeys,
    /// Verified with these keys; a bundle that fails is never loaded.
    Keys(Arc<signing::VerificationConfig>),
    /// `--skip-verify`: signatures are not looked at.
    Skip,
}

/// A bundle to load, named as OPA names `-b` bundles: by the path as given, or by its key in
/// the `bundles` config section.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub location: Location,
    pub verification: Verification,
    /// This bundle's own `size_limit_bytes`, over the runtime's.
    pub size_limit: Option<u64>,
}

impl Source {
    pub fn path(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Source {
            name: path.display().to_string(),
            location: Location::Path(path),
            verification: Verification::NoKeys,
            size_limit: None,
        }
    }

    pub fn embedded(name: &str, bytes: &'static [u8]) -> Self {
        Source {
            name: name.to_string(),
            location: Location::Embedded(bytes),
            verification: Verification::NoKeys,
            size_limit: None,
        }
    }

    /// The runtime's load options with this bundle's own size limit applied.
    pub fn options(&self, mut options: LoadOptions) -> LoadOptions {
        if let Some(limit) = self.size_limit {
            options.size_limit = limit;
        }
        options
    }

    /// Where an activated copy came from, for the log: the bundle built into the binary, a
    /// local path, or (for a remote bundle at start) the persisted download.
    pub fn origin(&self) -> &'static str {
        match self.location {
            Location::Embedded(_) => "embedded",
            Location::Path(_) => "disk",
            Location::Remote { .. } => "persistence",
        }
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.location, Location::Remote { .. })
    }

    /// True for a directory bundle, whose module file names carry the bundle's name as OPA's do.
    fn is_dir(&self) -> bool {
        matches!(&self.location, Location::Path(p) if p.is_dir())
    }
}

impl Bundle {
    /// Reads and checks the bundle from its source. Blocking: call it off the async runtime.
    pub fn load(source: &Source, options: LoadOptions) -> Result<Bundle, LoadError> {
        let options = source.options(options);
        let files = match &source.location {
            Location::Path(path) => reader::read_path(path, options.size_limit),
            Location::Embedded(bytes) => reader::read_tarball(*bytes, options.size_limit),
            Location::Remote {
                persist_dir: Some(dir),
            } => persist::read(dir)
                .map_err(|error| BundleError::Io {
                    path: persist::path(dir),
                    error,
                })
                .and_then(|bytes| reader::read_tarball(bytes.as_slice(), options.size_limit)),
            Location::Remote { persist_dir: None } => Err(BundleError::NotDownloaded),
        };
        let bundle = Bundle::verified(source, files, options)?;
        bundle.check_roots().map_err(|error| LoadError {
            name: source.name.clone(),
            error,
        })?;
        if bundle.is_delta() {
            // Patches need the bundle they patch: only a bundle server's delta has one.
            return Err(LoadError {
                name: source.name.clone(),
                error: BundleError::Delta(
                    "a delta bundle patches a bundle downloaded from a bundle server; it cannot be loaded from disk".into(),
                ),
            });
        }
        Ok(bundle)
    }

    /// Reads a downloaded bundle of the given source; a delta bundle is applied to `serving`,
    /// the bundle of that source serving now.
    pub fn from_download(
        source: &Source,
        bytes: &[u8],
        options: LoadOptions,
        serving: Option<&Bundle>,
    ) -> Result<Bundle, LoadError> {
        Bundle::read_download(source, bytes, options)?.finish_download(source, serving)
    }

    /// A download read as far as OPA's bundle reader goes before it parses the modules:
    /// signature verified, every file read, the roots not checked yet.
    pub fn read_download(
        source: &Source,
        bytes: &[u8],
        options: LoadOptions,
    ) -> Result<Bundle, LoadError> {
        let options = source.options(options);
        let files = reader::read_tarball(bytes, options.size_limit);
        Bundle::verified(source, files, options)
    }

    /// The rest of reading a download, once its modules parse: the roots checked, and a delta
    /// applied to `serving`, the bundle of that source serving now.
    pub fn finish_download(
        self,
        source: &Source,
        serving: Option<&Bundle>,
    ) -> Result<Bundle, LoadError> {
        let failed = |error| LoadError {
            name: source.name.clone(),
            error,
        };
        self.check_roots().map_err(failed)?;
        if !self.is_delta() {
            return Ok(self);
        }
        self.apply_delta(serving).map_err(failed)
    }

    /// Verifies the signature (when configured) before anything in the files is parsed, then
    /// reads them; the roots are the caller's to check (`check_roots`).
    fn verified(
        source: &Source,
        files: Result<Vec<RawFile>, BundleError>,
        options: LoadOptions,
    ) -> Result<Bundle, LoadError> {
        let module_prefix = if source.is_dir() {
            source.name.as_str()
        } else {
            ""
        };
        files
            .and_then(|files| {
                match &source.verification {
                    Verification::NoKeys => signing::check(&files, module_prefix, None)?,
                    Verification::Keys(keys) => signing::check(&files, module_prefix, Some(keys))?,
                    Verification::Skip => {}
                }
                Bundle::read_files(&source.name, module_prefix, files, options)
            })
            .map_err(|error| LoadError {
                name: source.name.clone(),
                error,
            })
    }
}

/// Loads a path as `opa eval -d` / `opa test` take them: a bundle directory or tarball, one
/// `.rego` file, or one JSON/YAML file whose content is data at the root.
pub fn load_data_path(path: &Path, options: LoadOptions) -> Result<Bundle, LoadError> {
    let name = path.display().to_string();
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default()
        .to_string();
    let as_file = |bundle_path: String| -> Result<Bundle, BundleError> {
        let bytes = std::fs::read(path).map_err(|error| BundleError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let files = vec![RawFile {
            path: bundle_path,
            bytes,
        }];
        let prefix = path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        Bundle::from_files(&name, &prefix, files, options)
    };
    let result = if file_name.ends_with(".rego") {
        // OPA names a policy file by its path as given, a bare relative one too.
        as_file(format!("/{file_name}")).map(|mut bundle| {
            if let Some(module) = bundle.modules.first_mut() {
                module.file = path.display().to_string();
            }
            bundle
        })
    } else if file_name.ends_with(".json") {
        as_file("/data.json".into())
    } else if file_name.ends_with(".yaml") || file_name.ends_with(".yml") {
        as_file("/data.yaml".into())
    } else {
        return Bundle::load(&Source::path(path.to_path_buf()), options);
    };
    result.map_err(|error| LoadError { name, error })
}
