//! Building a bundle as `opa build` lays it out: `/data.json` (every data file merged), the Rego
//! modules, `/.signatures.json` and `/.manifest` in a gzipped tarball, written atomically. Also
//! the JSON that OPA writes and hashes: Go's encoding, with number literals kept as written.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;

use super::{manifest, BundleError, LoadOptions, Manifest, RawFile};
use crate::gojson::{write_string, Json};

/// Everything that can stop a build, in OPA's words where it has them.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("bundle {name}: {error}")]
    Bundle { name: String, error: BundleError },
    #[error("bundle load failed on {path}: {message}")]
    Data { path: String, message: String },
    #[error("bundle merge failed: failed to insert data file from path {path}")]
    MergeConflict { path: String },
    #[error("bundle merge failed: {0}")]
    Merge(BundleError),
    #[error("error writing {}: {error}", path.display())]
    Write { path: PathBuf, error: io::Error },
}

/// One input of a build: the path as given, its files, and whether it is a directory (whose
/// module names then carry the path, as OPA's do).
#[derive(Debug)]
pub struct Input {
    pub name: String,
    pub files: Vec<RawFile>,
    pub is_dir: bool,
}

#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// `-b`: read inputs as bundles, keeping their manifests (roots, revision, metadata).
    pub bundle_mode: bool,
    pub revision: Option<String>,
    pub v0_compatible: bool,
}

/// Lays the inputs out as `opa build` does: `/data.json`, the modules, then `/.manifest` when
/// it says anything. In bundle mode each input is checked as a bundle and several are merged
/// as OPA merges them; otherwise manifests are ignored, as OPA ignores them without `-b`.
pub fn assemble(
    mut inputs: Vec<Input>,
    options: &BuildOptions,
) -> Result<Vec<RawFile>, BuildError> {
    if options.bundle_mode {
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let several = inputs.len() > 1;
    let mut data = Json::Object(BTreeMap::new());
    let mut modules = Vec::new();
    let mut roots = Vec::new();
    let mut file_rego_versions = BTreeMap::new();
    let mut manifest = None;
    for input in inputs {
        let part = Part::read(input, options)?;
        data.merge(part.data, &mut Vec::new())
            .map_err(|path| BuildError::MergeConflict { path })?;
        roots.extend(part.manifest.roots());
        // OPA records a module's Rego version only where it differs from the output's.
        let global_v0 = match part.manifest.rego_version {
            Some(v) if !several => v == 0,
            _ => options.v0_compatible,
        };
        if options.bundle_mode {
            for (name, v0) in &part.module_v0 {
                if *v0 != global_v0 {
                    file_rego_versions.insert(name.clone(), i64::from(!*v0));
                }
            }
        }
        modules.extend(part.modules);
        manifest = Some((part.manifest, part.metadata, global_v0));
    }
    if !options.bundle_mode {
        modules.sort_by(|a, b| a.path.cmp(&b.path));
    }
    let mut out = vec![RawFile {
        path: "/data.json".into(),
        bytes: encode_line(&data),
    }];
    out.extend(modules);
    let manifest = match manifest {
        Some((input, metadata, global_v0)) if options.bundle_mode => {
            if several {
                check_merged_roots(&roots)?;
            }
            Some(OutManifest {
                revision: match &options.revision {
                    Some(r) => r.clone(),
                    None if several => String::new(),
                    None => input.revision.clone(),
                },
                roots,
                rego_version: Some(i64::from(!global_v0)),
                file_rego_versions,
                metadata: if several { None } else { metadata },
            })
        }
        // Without -b OPA's manifest is empty, and so not written, unless --revision is set.
        _ => options.revision.as_ref().map(|r| OutManifest {
            revision: r.clone(),
            roots: vec![String::new()],
            rego_version: None,
            file_rego_versions,
            metadata: None,
        }),
    };
    if let Some(manifest) = manifest {
        out.push(RawFile {
            path: "/.manifest".into(),
            bytes: manifest.encode(),
        });
    }
    Ok(out)
}

/// One input read, checked and laid out.
struct Part {
    manifest: Manifest,
    metadata: Option<Json>,
    modules: Vec<RawFile>,
    module_v0: Vec<(String, bool)>,
    data: Json,
}

impl Part {
    fn read(input: Input, options: &BuildOptions) -> Result<Part, BuildError> {
        let prefix = if input.is_dir {
            clean(&input.name)
        } else {
            String::new()
        };
        let files: Vec<RawFile> = input
            .files
            .into_iter()
            .filter(|f| !f.path.ends_with("/.signatures.json"))
            .filter(|f| options.bundle_mode || !f.path.ends_with("/.manifest"))
            .collect();
        let load = LoadOptions {
            v0_compatible: options.v0_compatible,
            ..LoadOptions::default()
        };
        let bundle_error = |error| BuildError::Bundle {
            name: input.name.clone(),
            error,
        };
        // Loading checks what OPA's reader checks: manifest, roots, data inside the roots.
        let bundle = super::Bundle::from_files(&input.name, "", files.clone(), load)
            .map_err(bundle_error)?;
        let versions = bundle
            .manifest
            .rego_versions(options.v0_compatible)
            .map_err(bundle_error)?;
        let mut part = Part {
            manifest: bundle.manifest,
            metadata: None,
            modules: Vec::new(),
            module_v0: Vec::new(),
            data: Json::Object(BTreeMap::new()),
        };
        for f in files {
            if f.path.ends_with(".rego") {
                let name = join(&prefix, &f.path);
                part.module_v0.push((name.clone(), versions.is_v0(&f.path)));
                part.modules.push(RawFile {
                    path: name,
                    bytes: f.bytes,
                });
            } else if f.path.ends_with("/.manifest") {
                // Re-read for the metadata, so its numbers keep their literals.
                if let Ok(Json::Object(mut m)) = Json::parse(&f.bytes) {
                    part.metadata = m.remove("metadata");
                }
            } else if is_data_file(&f.path) {
                part.add_data(&f)?;
            }
        }
        Ok(part)
    }

    fn add_data(&mut self, f: &RawFile) -> Result<(), BuildError> {
        let fail = |message| BuildError::Data {
            path: f.path.clone(),
            message,
        };
        let value = if f.path.ends_with(".json") {
            Json::parse(&f.bytes)
        } else {
            Json::parse_json_or_yaml(&f.bytes)
        }
        .map_err(fail)?;
        let dir = manifest::split_root(f.path.rsplit_once('/').map_or("", |(d, _)| d));
        let nested = dir.iter().rev().fold(value, |inner, key| {
            Json::Object(BTreeMap::from([(key.clone(), inner)]))
        });
        self.data.merge(nested, &mut Vec::new()).map_err(|_| {
            fail(format!(
                "failed to insert data file from path {}",
                dir.join("/")
            ))
        })
    }
}

fn is_data_file(path: &str) -> bool {
    matches!(
        path.rsplit('/').next(),
        Some("data.json" | "data.yaml" | "data.yml")
    )
}

/// The roots of merged bundles must not overlap, a root `""` overlapping every other.
fn check_merged_roots(roots: &[String]) -> Result<(), BuildError> {
    for (i, a) in roots.iter().enumerate() {
        for b in roots.iter().skip(i + 1) {
            let (pa, pb) = (manifest::split_root(a), manifest::split_root(b));
            if manifest::is_prefix(&pa, &pb) || manifest::is_prefix(&pb, &pa) {
                return Err(BuildError::Merge(BundleError::OverlappedRoots {
                    a: a.clone(),
                    b: b.clone(),
                }));
            }
        }
    }
    Ok(())
}

/// The `.manifest` OPA writes: its struct's field order, empty fields left out.
struct OutManifest {
    revision: String,
    roots: Vec<String>,
    rego_version: Option<i64>,
    file_rego_versions: BTreeMap<String, i64>,
    metadata: Option<Json>,
}

impl OutManifest {
    fn encode(&self) -> Vec<u8> {
        let mut out = b"{\"revision\":".to_vec();
        write_string(&mut out, &self.revision, true);
        out.extend_from_slice(b",\"roots\":");
        Json::Array(self.roots.iter().cloned().map(Json::String).collect()).write(&mut out, true);
        if let Some(v) = self.rego_version {
            out.extend_from_slice(format!(",\"rego_version\":{v}").as_bytes());
        }
        if !self.file_rego_versions.is_empty() {
            out.extend_from_slice(b",\"file_rego_versions\":");
            let versions = self.file_rego_versions.iter();
            Json::Object(
                versions
                    .map(|(k, v)| (k.clone(), Json::Number(v.to_string())))
                    .collect(),
            )
            .write(&mut out, true);
        }
        match &self.metadata {
            Some(Json::Object(m)) if m.is_empty() => {}
            None | Some(Json::Null) => {}
            Some(metadata) => {
                out.extend_from_slice(b",\"metadata\":");
                metadata.write(&mut out, true);
            }
        }
        out.extend_from_slice(b"}\n");
        out
    }
}

/// As Go's `json.Encoder.Encode`: HTML escaped, one newline after.
fn encode_line(value: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    value.write(&mut out, true);
    out.push(b'\n');
    out
}

/// `dir` joined with a bundle path and cleaned as Go's `filepath.Join`, with one leading `/`.
fn join(dir: &str, path: &str) -> String {
    format!("/{}", clean(&format!("{dir}/{path}")))
}

/// Go's `path.Clean` without the leading `/`: no empty or `.` segments, `..` pops.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Inserts the signatures file where OPA's writer puts it: after the modules, before the
/// manifest.
pub fn add_signatures(files: &mut Vec<RawFile>, signatures: RawFile) {
    let at = match files.last() {
        Some(f) if f.path == "/.manifest" => files.len() - 1,
        _ => files.len(),
    };
    files.insert(at, signatures);
}

/// Writes the files as a gzipped tarball the way Go's `archive/tar` does for OPA: entry names
/// with a leading `/`, mode 0600, owner 0 and time 0; a name too long for the header goes in a
/// PAX record.
pub fn write_tarball(files: &[RawFile], out: impl Write) -> io::Result<()> {
    let mut tar = tar::Builder::new(GzEncoder::new(out, flate2::Compression::default()));
    for f in files {
        let mut header = tar::Header::new_ustar();
        header.set_mode(0o600);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(f.bytes.len() as u64);
        header.set_entry_type(tar::EntryType::Regular);
        let name = f.path.as_bytes();
        if name.len() <= 100 {
            // tar's set_path refuses the leading '/' that OPA writes, so the field is set raw.
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
        } else {
            tar.append_pax_extensions([("path", name)])?;
            let short = &name[name.len() - 100..];
            header.as_old_mut().name.copy_from_slice(short);
        }
        header.set_cksum();
        tar.append(&header, f.bytes.as_slice())?;
    }
    tar.into_inner()?.finish()?.flush()
}

/// Writes the output file atomically (see `persist::write_atomic`).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    super::persist::write_atomic(path, bytes).map_err(|error| BuildError::Write {
        path: path.to_path_buf(),
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tarballs_read_back_with_opas_entry_names() {
        let long = format!("/{}/policy.rego", "nested".repeat(30));
        let files = vec![
            RawFile {
                path: "/data.json".into(),
                bytes: b"{}\n".to_vec(),
            },
            RawFile {
                path: long.clone(),
                bytes: b"package p\n".to_vec(),
            },
        ];
        let mut tarball = Vec::new();
        write_tarball(&files, &mut tarball).unwrap();
        let read = super::super::reader::read_tarball(tarball.as_slice(), 1 << 20).unwrap();
        let paths: Vec<&str> = read.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["/data.json", long.as_str()]);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tarball.as_slice()));
        let first = archive.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(&*first.path_bytes(), b"/data.json", "OPA's leading slash");
        assert_eq!(first.header().mode().unwrap(), 0o600);
    }

    #[test]
    fn go_clean_and_join() {
        assert_eq!(clean("./bundle/"), "bundle");
        assert_eq!(join("./a/../b", "/x.rego"), "/b/x.rego");
        assert_eq!(join("", "/x.rego"), "/x.rego");
    }
}
