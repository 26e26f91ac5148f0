//! Persisted bundles: the last activated download of a remote bundle, kept on disk so that a
//! node starts serving without the network.
//!
//! A write is atomic and durable: a temporary file in the same directory is written and
//! fsynced, renamed over the old one, and the directory is fsynced. A crash at any point
//! leaves either the old file or the new one, never a torn one; a stray temporary file is
//! ignored and overwritten by the next write. What is read back is verified and checked like
//! any download before it is served.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// OPA's file name inside `<persistence_directory>/bundles/<name>/`.
const FILE_NAME: &str = "bundle.tar.gz";
const TEMP_NAME: &str = ".bundle.tar.gz.tmp";

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
    let temp = dir.join(TEMP_NAME);
    {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temp, path(dir))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)?.sync_all()
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
        fs::write(d.join(TEMP_NAME), b"torn").unwrap();
        assert_eq!(read(&d).unwrap(), b"first");
        write(&d, b"second").unwrap();
        assert_eq!(read(&d).unwrap(), b"second");
        assert!(!d.join(TEMP_NAME).exists());
    }
}
