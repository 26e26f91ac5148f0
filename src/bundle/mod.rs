//! The bundle format: reading a directory or `.tar.gz` in OPA's layout, its manifest and roots,
//! data files mapped to data paths, and Rego modules with their Rego version.
//!
//! This module only reads files and checks the bundle against itself (and against the other
//! bundles loaded beside it); compiling the Rego is the policy module's job.

pub mod build;
pub mod manifest;
pub mod persist;
pub mod reader;
pub mod signing;

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regorus::Value;

pub use manifest::{is_prefix, Manifest, Root};
pub use reader::{RawFile, DEFAULT_SIZE_LIMIT_BYTES};

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
}

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

    pub fn is_remote(&self) -> bool {
        matches!(self.location, Location::Remote { .. })
    }

    /// True for a directory bundle, whose module file names carry the bundle's name as OPA's do.
    fn is_dir(&self) -> bool {
        matches!(&self.location, Location::Path(p) if p.is_dir())
    }
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
        Bundle::checked(source, files, options)
    }

    /// Reads a downloaded bundle of the given source.
    pub fn from_download(
        source: &Source,
        bytes: &[u8],
        options: LoadOptions,
    ) -> Result<Bundle, LoadError> {
        let options = source.options(options);
        let files = reader::read_tarball(bytes, options.size_limit);
        Bundle::checked(source, files, options)
    }

    /// Verifies the signature (when configured) before anything in the files is parsed.
    fn checked(
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
                Bundle::from_files(&source.name, module_prefix, files, options)
            })
            .map_err(|error| LoadError {
                name: source.name.clone(),
                error,
            })
    }

    /// Builds a bundle from its raw files. `module_prefix` is prepended to module file names in
    /// error locations (OPA reports `bundle/x.rego` for a directory `bundle`, `/x.rego` for a tar).
    pub fn from_files(
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
        manifest.check_roots()?;
        if !manifest.wasm.is_empty() || files.iter().any(|f| f.path.ends_with(".wasm")) {
            return Err(BundleError::Unsupported("a Wasm module"));
        }
        if files.iter().any(|f| f.path.ends_with("/patch.json")) {
            return Err(BundleError::Unsupported("a delta bundle (patch.json)"));
        }
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
        };
        bundle.check_data_roots()?;
        Ok(bundle)
    }

    pub fn revision(&self) -> &str {
        &self.manifest.revision
    }

    /// Every data value must lie under one of the bundle's roots. A directory above a root is
    /// walked into, so `{"limits": {"roles": ...}}` is fine for the root `limits/roles`.
    fn check_data_roots(&self) -> Result<(), BundleError> {
        let roots = self.manifest.root_paths();
        for file in &self.data {
            check_value_in_roots(&roots, &file.dir, &file.value).map_err(|path| {
                BundleError::DataOutsideRoots {
                    roots: go_list(&self.manifest.roots()),
                    path: path.join("/"),
                }
            })?;
        }
        Ok(())
    }

    /// The whole data document of this bundle: each data file nested at its directory.
    pub fn data_documents(&self) -> impl Iterator<Item = (&DataFile, Value)> {
        self.data.iter().map(|f| (f, nest(&f.dir, f.value.clone())))
    }
}

fn parse_data_file(f: RawFile) -> Result<DataFile, BundleError> {
    let fail = |message: String| BundleError::DataFile {
        path: f.path.clone(),
        message,
    };
    let value: Value = if f.path.ends_with(".json") {
        serde_json::from_slice(&f.bytes).map_err(|e| fail(e.to_string()))?
    } else {
        yaml_serde::from_slice(&f.bytes).map_err(|e| fail(e.to_string()))?
    };
    let dir: Vec<String> = f
        .path
        .trim_start_matches('/')
        .split('/')
        .collect::<Vec<_>>()
        .split_last()
        .map(|(_, dirs)| dirs.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    if dir.is_empty() && value.as_object().is_err() {
        return Err(fail("root value must be object".into()));
    }
    Ok(DataFile {
        path: f.path,
        dir,
        value,
    })
}

/// Returns the first data path that no root permits.
fn check_value_in_roots(roots: &[Root], path: &[String], value: &Value) -> Result<(), Vec<String>> {
    if roots.iter().any(|r| is_prefix(r, path)) {
        return Ok(());
    }
    let above_a_root = roots.iter().any(|r| is_prefix(path, r));
    match value.as_object() {
        Ok(object) if above_a_root => {
            for (key, child) in object.iter() {
                let mut child_path = path.to_vec();
                child_path.push(key_text(key));
                check_value_in_roots(roots, &child_path, child)?;
            }
            Ok(())
        }
        _ => Err(path.to_vec()),
    }
}

fn key_text(key: &Value) -> String {
    match key.as_string() {
        Ok(s) => s.to_string(),
        Err(_) => key.to_string(),
    }
}

/// Wraps `value` in objects so that it sits at `dir`.
pub fn nest(dir: &[String], value: Value) -> Value {
    dir.iter().rev().fold(value, |inner, key| {
        let mut map = BTreeMap::new();
        map.insert(Value::from(key.as_str()), inner);
        Value::from(map)
    })
}

/// Formats a list as Go's `%v` does (`[a b]`), the form OPA's messages use.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

/// Bundles whose roots overlap, in OPA's words for the two ways they can.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootsOverlap {
    #[error("bundles [{}] have overlapping roots and cannot be activated simultaneously because bundle(s) [{}] specify empty root paths ('') which overlap with any other bundle root", bundles.join(", "), empty.join(", "))]
    EmptyRoot {
        bundles: Vec<String>,
        empty: Vec<String>,
    },
    #[error("detected overlapping roots in manifests for these bundles: [{}] ({})", bundles.join(", "), conflicts.join(", "))]
    Roots {
        bundles: Vec<String>,
        conflicts: Vec<String>,
    },
}

/// Bundles loaded together must not share roots (OPA's "overlapping roots" check).
pub fn check_overlap(bundles: &[&Bundle]) -> Result<(), RootsOverlap> {
    let mut conflicts = Vec::new();
    let mut names = Vec::new();
    let mut empty_root = Vec::new();
    for (i, a) in bundles.iter().enumerate() {
        for b in bundles.iter().skip(i + 1) {
            let mut clash = false;
            for ra in a.manifest.roots() {
                for rb in b.manifest.roots() {
                    let (pa, pb) = (manifest::split_root(&ra), manifest::split_root(&rb));
                    if ra.is_empty() || rb.is_empty() {
                        clash = true;
                        for (bundle, root) in [(a, &ra), (b, &rb)] {
                            if root.is_empty() && !empty_root.contains(&bundle.name) {
                                empty_root.push(bundle.name.clone());
                            }
                        }
                    } else if ra == rb {
                        clash = true;
                        conflicts.push(format!("root {ra} is in multiple bundles"));
                    } else if is_prefix(&pa, &pb) || is_prefix(&pb, &pa) {
                        clash = true;
                        conflicts.push(format!("{ra} overlaps {rb}"));
                    }
                }
            }
            if clash {
                for n in [&a.name, &b.name] {
                    if !names.contains(n) {
                        names.push(n.clone());
                    }
                }
            }
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    if !empty_root.is_empty() {
        empty_root.sort();
        return Err(RootsOverlap::EmptyRoot {
            bundles: names,
            empty: empty_root,
        });
    }
    conflicts.sort();
    conflicts.dedup();
    Err(RootsOverlap::Roots {
        bundles: names,
        conflicts,
    })
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
        as_file(format!("/{file_name}"))
    } else if file_name.ends_with(".json") {
        as_file("/data.json".into())
    } else if file_name.ends_with(".yaml") || file_name.ends_with(".yml") {
        as_file("/data.yaml".into())
    } else {
        return Bundle::load(&Source::path(path.to_path_buf()), options);
    };
    result.map_err(|error| LoadError { name, error })
}
