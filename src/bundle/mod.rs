//! The bundle format: reading a directory or `.tar.gz` in OPA's layout, its manifest and roots,
//! data files mapped to data paths, and Rego modules with their Rego version.
//!
//! This module only reads files and checks the bundle against itself (and against the other
//! bundles loaded beside it); compiling the Rego is the policy module's job.

pub mod build;
mod data;
pub mod delta;
pub mod manifest;
mod overlap;
pub mod persist;
pub mod reader;
pub mod signing;
mod source;

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use regorus::Value;

use data::parse_data_file;
pub use data::{go_list, nest};
pub use manifest::{is_prefix, Manifest, Root};
pub use overlap::{check_overlap, RootsOverlap};
pub use reader::{RawFile, DEFAULT_SIZE_LIMIT_BYTES};
pub use source::{load_data_path, Location, Source, Verification};

/// Everything that can be wrong with one bundle. The texts follow OPA's where OPA has one.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("error reading {}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("bundle read failed: archive read failed: gzip: invalid header")]
    NotGzip,
    #[error("bundle read failed: archive read failed: {error}")]
    Archive { error: std::io::Error },
    #[error("bundle read failed: entry '{entry}' would be written outside the bundle")]
    PathTraversal { entry: String },
    #[error(
        "bundle read failed: entry '{entry}' is a link; bundle archives hold regular files only"
    )]
    Link { entry: String },
    #[error("bundle read failed: '{path}' is a symlink to '{target}', outside the bundle")]
    SymlinkEscape { path: String, target: String },
    #[error("bundle read failed: file name '{entry}' is not valid UTF-8")]
    BadName { entry: String },
    #[error("bundle read failed: archive holds '{path}' more than once")]
    DuplicateEntry { path: String },
    #[error("bundle read failed: bundle exceeds the size limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("bundle read failed: manifest: {error}")]
    ManifestJson { error: serde_json::Error },
    #[error("bundle read failed: manifest: unknown bundle rego-version {version}{}", file_glob.as_ref().map(|g| format!(" for file '{g}'")).unwrap_or_default())]
    RegoVersion {
        version: i64,
        file_glob: Option<String>,
    },
    #[error("bundle read failed: manifest: failed to compile glob pattern {pattern}: {error}")]
    FileGlob {
        pattern: String,
        error: globset::Error,
    },
    #[error("manifest has overlapped roots: '{a}' and '{b}'")]
    OverlappedRoots { a: String, b: String },
    #[error("manifest roots {roots} do not permit data at path '/{path}' (hint: check bundle directory structure)")]
    DataOutsideRoots { roots: String, path: String },
    #[error("bundle load failed on {path}: {message}")]
    DataFile { path: String, message: String },
    #[error("bundle read failed: {0} is not supported by verdict")]
    Unsupported(&'static str),
    #[error("{0}")]
    Signature(#[from] signing::SignatureError),
    #[error("no bundle downloaded yet and none persisted")]
    NotDownloaded,
    /// A delta bundle that does not apply.
    #[error("{0}")]
    Delta(String),
}
/// One Rego file of a bundle.
#[derive(Debug, Clone)]
pub struct ModuleFile {
    /// Path inside the bundle, starting with `/`.
    pub path: String,
    /// The name error locations use: the tar entry name, or `<dir>/<path>` for a directory.
    pub file: String,
    pub source: String,
    pub rego_v0: bool,
}

/// One data file: its value placed at the data path of its directory.
#[derive(Debug, Clone)]
pub struct DataFile {
    pub path: String,
    pub dir: Vec<String>,
    pub value: Value,
}

/// A parsed bundle, checked against its own manifest.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub name: String,
    pub manifest: Manifest,
    pub modules: Vec<ModuleFile>,
    pub data: Vec<DataFile>,
    /// Decompressed size of the files read.
    pub size: u64,
    /// Identifies the content, so an unchanged bundle is not activated again.
    pub fingerprint: u64,
    /// A delta bundle's patches (`patch.json`): it has no modules or data of its own until
    /// `apply_delta` makes it whole.
    pub patch: Option<delta::Patch>,
    /// Made by applying a delta to the bundle that served (OPA reports its type `delta`, and
    /// does not persist it).
    pub from_delta: bool,
}

/// How to read bundles: OPA's `size_limit_bytes` and the runtime's default Rego version.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    pub size_limit: u64,
    pub v0_compatible: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            size_limit: DEFAULT_SIZE_LIMIT_BYTES,
            v0_compatible: false,
        }
    }
}

/// A bundle that failed to load, with the name it was given. Its text carries the whole
/// cause, so it is not chained again as a `source`.
#[derive(Debug, thiserror::Error)]
#[error("bundle {name}: {error}")]
pub struct LoadError {
    pub name: String,
    pub error: BundleError,
}

impl Bundle {
    /// Builds a bundle from its raw files. `module_prefix` is prepended to module file names in
    /// error locations (OPA reports `bundle/x.rego` for a directory `bundle`, `/x.rego` for a tar).
    pub fn from_files(
        name: &str,
        module_prefix: &str,
        files: Vec<RawFile>,
        options: LoadOptions,
    ) -> Result<Bundle, BundleError> {
        let bundle = Bundle::read_files(name, module_prefix, files, options)?;
        bundle.check_roots()?;
        Ok(bundle)
    }

    /// What OPA checks once every file of a bundle is read and its modules parsed: the
    /// manifest's roots do not overlap, and the data lies inside them.
    pub fn check_roots(&self) -> Result<(), BundleError> {
        self.manifest.check_roots()?;
        self.check_data_roots()
    }

    /// `from_files` without `check_roots`.
    pub fn read_files(
        name: &str,
        module_prefix: &str,
        files: Vec<RawFile>,
        options: LoadOptions,
    ) -> Result<Bundle, BundleError> {
        // Files keep the order they were read in (archive order, or a directory walk), which
        // is the order OPA lists modules in.
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut size = 0u64;
        for f in &files {
            f.path.hash(&mut hasher);
            f.bytes.hash(&mut hasher);
            size += f.bytes.len() as u64;
        }
        let manifest = match files.iter().find(|f| f.path.ends_with("/.manifest")) {
            Some(f) => Manifest::parse(&f.bytes)?,
            None => Manifest::default(),
        };
        if !manifest.wasm.is_empty() || files.iter().any(|f| f.path.ends_with(".wasm")) {
            return Err(BundleError::Unsupported("a Wasm module"));
        }
        let patch = delta::read_patch(&files)?;
        let versions = manifest.rego_versions(options.v0_compatible)?;
        let mut modules = Vec::new();
        let mut data = Vec::new();
        for f in files {
            let file_name = f.path.rsplit('/').next().unwrap_or_default();
            if f.path.ends_with(".rego") {
                let source = String::from_utf8(f.bytes).map_err(|_| BundleError::DataFile {
                    path: f.path.clone(),
                    message: "module is not valid UTF-8".into(),
                })?;
                modules.push(ModuleFile {
                    rego_v0: versions.is_v0(&f.path),
                    file: format!("{module_prefix}{}", f.path),
                    path: f.path,
                    source,
                });
            } else if matches!(file_name, "data.json" | "data.yaml" | "data.yml") {
                data.push(parse_data_file(f)?);
            }
        }
        let bundle = Bundle {
            name: name.to_string(),
            manifest,
            modules,
            data,
            size,
            fingerprint: hasher.finish(),
            patch,
            from_delta: false,
        };
        Ok(bundle)
    }

    pub fn revision(&self) -> &str {
        &self.manifest.revision
    }

    /// OPA's policy id for one of this bundle's modules: the bundle's name joined with the
    /// path inside it. The policies put through the policy API form a bundle without a name,
    /// and keep the ids they were put under.
    pub fn module_id(&self, path: &str) -> String {
        if self.name.is_empty() {
            return path.to_string();
        }
        format!(
            "{}/{}",
            self.name.trim_end_matches('/'),
            path.trim_start_matches('/')
        )
    }
}

/// Raw files from (path, text) pairs, for the tests that build bundles in memory.
#[cfg(test)]
pub(crate) fn files_of(files: &[(&str, &str)]) -> Vec<RawFile> {
    files
        .iter()
        .map(|(path, text)| RawFile {
            path: path.to_string(),
            bytes: text.as_bytes().to_vec(),
        })
        .collect()
}
