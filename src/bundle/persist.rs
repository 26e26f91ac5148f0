//! Persisted bundles: the last activated download of a remote bundle, kept on disk so that a
//! node starts serving without the network.
//!
//! A write is atomic and durable: a temporary file in the same directory is written and
//! fsynced, renamed over the old one, and the directory is fsynced. A crash at any point
//! leaves either the old file or the new one, never a torn one; a stray temporary file is
//! ignored. `verdict build` and `sign` write their output the same way. What is read back is verified and checked like
//! any download before it is served.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// OPA's file name inside `<persistence_directory>/bundles/<name>/`.
const FILE_NAME: &str = "bundle.tar.gz";

pub fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the persisted bundle's bytes. Blocking.
pub fn read(dir: &Path) -> io::Result<Vec<u8>> {
    fs::read(path(dir))
}

/// Replaces the persisted bundle with `bytes`. Blocking.
pub fn write(dir: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    write_atomic(&path(dir), bytes)
}

/// Writes `bytes` to `target` so that a reader, or the next start after a crash, sees the old
/// file or the new one, never a part. The temporary file is named by process, so two writers
/// of one target cannot truncate each other's; it is removed when a step fails. Blocking.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "bundle".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, target)?;
        // The rename is durable only once the directory entry is.
        File::open(&dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_replaces_whole_files_and_ignores_stray_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("bundles").join("payment");
        assert!(read(&d).is_err());
        write(&d, b"first").unwrap();
        // A crash after the temporary file was written but before the rename.
        let temp = d.join(format!(".bundle.tar.gz.{}.tmp", std::process::id()));
        fs::write(&temp, b"torn").unwrap();
        assert_eq!(read(&d).unwrap(), b"first");
        write(&d, b"second").unwrap();
        assert_eq!(read(&d).unwrap(), b"second");
        assert!(!temp.exists());
    }
}
