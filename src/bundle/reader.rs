//! Reading a bundle's raw files from a directory or a gzipped tarball, under a size limit.
//!
//! Nothing here is trusted: entry names are normalised and checked so that no entry can name a
//! file outside the bundle, links in archives are refused, symlinks in directories must stay
//! inside the bundle, and decompressed bytes are counted so a decompression bomb stops early.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;

use super::BundleError;

/// OPA's default `size_limit_bytes` for a bundle: 1 GiB of decompressed content.
pub const DEFAULT_SIZE_LIMIT_BYTES: u64 = 1 << 30;

/// One file of a bundle, named by its path inside the bundle (always starting with `/`).
#[derive(Debug, Clone)]
pub struct RawFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// Files a bundle directory may carry; anything else in a directory is skipped unread (an
/// archive keeps every regular file, for its signature).
fn is_bundle_file(name: &str) -> bool {
    matches!(
        name,
        ".manifest" | ".signatures.json" | "data.json" | "data.yaml" | "data.yml" | "patch.json"
    ) || name.ends_with(".rego")
        || name.ends_with(".wasm")
}

/// Reads the bundle at `path`: a directory, or a file holding a gzipped tarball.
pub fn read_path(path: &Path, size_limit: u64) -> Result<Vec<RawFile>, BundleError> {
    let meta = fs::metadata(path).map_err(|error| BundleError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    if meta.is_dir() {
        read_dir(path, size_limit)
    } else {
        let file = fs::File::open(path).map_err(|error| BundleError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        read_tarball(io::BufReader::new(file), size_limit)
    }
}

/// Reads a gzipped tarball as `opa build` writes it (entry names like `/data.json`).
pub fn read_tarball(reader: impl Read, size_limit: u64) -> Result<Vec<RawFile>, BundleError> {
    let mut reader = io::BufReader::new(reader);
    let mut magic = [0u8; 2];
    let peeked = read_up_to(&mut reader, &mut magic).map_err(archive_error)?;
    if peeked < 2 || magic != [0x1f, 0x8b] {
        // Same words as OPA, so scripts that grep for them keep working.
        return Err(BundleError::NotGzip);
    }
    let gz = GzDecoder::new(magic.chain(reader));
    let mut budget = Budget::new(size_limit);
    let mut archive = tar::Archive::new(CountingReader {
        inner: gz,
        budget: &mut budget,
    });
    let mut files = Vec::new();
    let mut seen = HashSet::new();
    let over_budget_or = |e| over_budget_or(e, size_limit);
    let entries = archive.entries().map_err(over_budget_or)?;
    for entry in entries {
        // Moving to the next entry reads past the skipped ones: that is where a bomb in an
        // ignored entry hits the budget.
        let mut entry = entry.map_err(over_budget_or)?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() {
            continue;
        }
        let path = normalize_entry(&raw_name)?;
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(BundleError::Link { entry: raw_name });
        }
        if !kind.is_file() {
            continue;
        }
        // Two entries for one path would both be loaded (two modules defining the same rules
        // answer every decision with a conflict) or one would silently win (`.manifest`):
        // either way the bundle is not what was signed or reviewed.
        if !seen.insert(path.clone()) {
            return Err(BundleError::DuplicateEntry { path });
        }
        // Every regular file of an archive is kept, not only those verdict reads: a signature
        // covers them all (OPA's verifier and `opa sign` list every file), so a README in a
        // signed tarball must be there to be checked. The size budget bounds them the same.
        let declared = entry.header().size().map_err(over_budget_or)?;
        if declared > size_limit {
            return Err(BundleError::TooLarge { limit: size_limit });
        }
        // The declared size (already within the limit) up front: growing by doubling would
        // hold up to twice the bytes while copying, and a bomb's entries are large. Pages a
        // lying header never fills are never touched, so they cost address space only.
        let mut bytes = Vec::with_capacity(usize::try_from(declared).unwrap_or(0));
        entry.read_to_end(&mut bytes).map_err(over_budget_or)?;
        files.push(RawFile { path, bytes });
    }
    Ok(files)
}

/// Reads a bundle directory. Symlinks are followed only while they stay inside the bundle, which
/// is how Kubernetes mounts ConfigMaps (`file -> ..data/file`, `..data -> ..2024_01_01...`);
/// the atomic writer's own `..`-prefixed entries are skipped so each file is read once.
pub fn read_dir(root: &Path, size_limit: u64) -> Result<Vec<RawFile>, BundleError> {
    let canonical_root = fs::canonicalize(root).map_err(|error| BundleError::Io {
        path: root.to_path_buf(),
        error,
    })?;
    let mut walk = DirWalk {
        root: canonical_root,
        budget: Budget::new(size_limit),
        visited: HashSet::new(),
        files: Vec::new(),
    };
    walk.dir(root, "")?;
    walk.files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(walk.files)
}

struct DirWalk {
    root: PathBuf,
    budget: Budget,
    visited: HashSet<PathBuf>,
    files: Vec<RawFile>,
}

impl DirWalk {
    fn dir(&mut self, dir: &Path, prefix: &str) -> Result<(), BundleError> {
        let canonical = self.inside_root(dir)?;
        if !self.visited.insert(canonical) {
            return Ok(()); // a symlink loop back into a directory already read
        }
        let io_err = |error| BundleError::Io {
            path: dir.to_path_buf(),
            error,
        };
        let mut entries = fs::read_dir(dir)
            .map_err(io_err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(io_err)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(BundleError::BadName {
                    entry: entry.path().display().to_string(),
                });
            };
            if name.starts_with("..") {
                continue;
            }
            let path = entry.path();
            let meta = fs::metadata(&path).map_err(|error| BundleError::Io {
                path: path.clone(),
                error,
            })?;
            let bundle_path = format!("{prefix}/{name}");
            if meta.is_dir() {
                self.dir(&path, &bundle_path)?;
            } else if meta.is_file() && is_bundle_file(name) {
                self.inside_root(&path)?;
                self.budget.take(meta.len())?;
                let bytes = fs::read(&path).map_err(|error| BundleError::Io {
                    path: path.clone(),
                    error,
                })?;
                self.files.push(RawFile {
                    path: bundle_path,
                    bytes,
                });
            }
        }
        Ok(())
    }

    fn inside_root(&self, path: &Path) -> Result<PathBuf, BundleError> {
        let canonical = fs::canonicalize(path).map_err(|error| BundleError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        if canonical.starts_with(&self.root) {
            Ok(canonical)
        } else {
            Err(BundleError::SymlinkEscape {
                path: path.display().to_string(),
                target: canonical.display().to_string(),
            })
        }
    }
}

/// Turns an archive entry name into a bundle path. One leading `/` is OPA's own layout
/// (`opa build` writes `/data.json`), so it is bundle-relative; anything that would still be
/// absolute after that, or that climbs with `..`, could escape the bundle and is refused.
fn normalize_entry(raw: &str) -> Result<String, BundleError> {
    let refuse = || BundleError::PathTraversal {
        entry: raw.to_string(),
    };
    let trimmed = raw.strip_prefix('/').unwrap_or(raw);
    if trimmed.starts_with('/') || trimmed.contains('\\') || trimmed.contains('\0') {
        return Err(refuse());
    }
    let mut parts = Vec::new();
    for component in Path::new(trimmed).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or_else(refuse)?),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(refuse())
            }
        }
    }
    if parts.is_empty() {
        return Err(refuse());
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Counts decompressed bytes against the bundle's size limit.
struct Budget {
    limit: u64,
    used: u64,
}

impl Budget {
    fn new(limit: u64) -> Self {
        Budget { limit, used: 0 }
    }

    fn take(&mut self, n: u64) -> Result<(), BundleError> {
        self.used = self.used.saturating_add(n);
        if self.used > self.limit {
            Err(BundleError::TooLarge { limit: self.limit })
        } else {
            Ok(())
        }
    }
}

/// Wraps the decompressor so every byte the tar reader pulls is counted, including the bytes
/// of entries that are skipped: a bomb hidden in an ignored entry still stops at the limit.
struct CountingReader<'a, R> {
    inner: R,
    budget: &'a mut Budget,
}

/// The error `CountingReader` raises through the tar reader, told apart from real I/O
/// errors by its type.
#[derive(Debug, thiserror::Error)]
#[error("bundle size limit exceeded")]
struct BudgetExceeded;

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.budget
            .take(n as u64)
            .map_err(|_| io::Error::other(BudgetExceeded))?;
        Ok(n)
    }
}

fn over_budget_or(e: io::Error, limit: u64) -> BundleError {
    let over_budget = e
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<BudgetExceeded>().is_some());
    if over_budget {
        BundleError::TooLarge { limit }
    } else {
        archive_error(e)
    }
}

fn archive_error(e: io::Error) -> BundleError {
    BundleError::Archive { error: e }
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_normalised_or_refused() {
        assert_eq!(normalize_entry("/data.json").unwrap(), "/data.json");
        assert_eq!(normalize_entry("./a/b.rego").unwrap(), "/a/b.rego");
        assert_eq!(normalize_entry("a/./b.rego").unwrap(), "/a/b.rego");
        for bad in [
            "../x.rego",
            "a/../../x.rego",
            "/../etc/data.json",
            "//etc/data.json",
            "a\\..\\b",
            "",
            "/",
        ] {
            assert!(normalize_entry(bad).is_err(), "{bad:?} must be refused");
        }
    }

    fn tarball(entries: &[(&str, &str)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, text) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(text.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // `append_data` would normalise the name; the raw bytes are what an attacker sends.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            tar.append(&header, text.as_bytes()).unwrap();
        }
        tar.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn an_archive_naming_one_path_twice_is_refused() {
        let module = "package p\n\nx := 1\n";
        let ok = tarball(&[("/p.rego", module), ("/q.rego", module)]);
        assert_eq!(read_tarball(ok.as_slice(), 1 << 20).unwrap().len(), 2);
        for (a, b) in [
            ("/p.rego", "/p.rego"),
            ("/p.rego", "./p.rego"),
            ("/.manifest", ".manifest"),
        ] {
            let bytes = tarball(&[(a, "{}"), ("/data.json", "{}"), (b, "{}")]);
            match read_tarball(bytes.as_slice(), 1 << 20) {
                Err(BundleError::DuplicateEntry { path }) => assert_eq!(path, a.replace("./", "/")),
                other => panic!("{a} twice: {other:?}"),
            }
        }
    }
}
