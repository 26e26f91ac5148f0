//! Opening the pushed-data store when another process may hold it. SQLite only says "locked"
//! after its busy wait; a second `verdict run` started in the same directory is told at once
//! which process owns the store (its pid, from the kernel's lock table), and fails with that
//! instead of calling the store unreadable. The wait itself stays, so that a restart whose
//! predecessor is still exiting goes on.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use regorus::Value;

use super::AppError;
use crate::runtime::store::{PushedStore, FILE_NAME};
use crate::runtime::StartupError;

/// OPA's default `persistence_directory`, which the store uses for a config that names none.
const DEFAULT_DIR: &str = ".opa";

/// The process holding a lock on the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// Its command name (`verdict`), or "process" when it cannot be read.
    pub process: String,
}

/// `PushedStore::open`, saying who holds the store when another process does.
pub fn open_pushed(dir: &Path) -> Result<(PushedStore, Value), AppError> {
    let path = store_path(dir);
    let before = holder(&path);
    if let Some(h) = &before {
        tracing::warn!(
            path = %path.display(),
            pid = h.pid,
            process = %h.process,
            "pushed data store is locked by a running {} (pid {}); waiting for it to let go",
            h.process,
            h.pid
        );
    }
    match PushedStore::open(dir) {
        Ok(opened) => Ok(opened),
        Err(error) => match holder(&path).or(before) {
            Some(Holder { pid, process }) => Err(AppError::StoreLocked { path, pid, process }),
            None => Err(StartupError::from(error).into()),
        },
    }
}

fn store_path(dir: &Path) -> PathBuf {
    match dir.as_os_str().is_empty() {
        true => Path::new(DEFAULT_DIR).join(FILE_NAME),
        false => dir.join(FILE_NAME),
    }
}

/// Another process holding a lock on `path`, from `/proc/locks` (Linux); `None` when there is
/// none, the file does not exist, or the table cannot be read.
pub fn holder(path: &Path) -> Option<Holder> {
    let meta = std::fs::metadata(path).ok()?;
    let table = std::fs::read_to_string("/proc/locks").ok()?;
    let pid = lock_holder(&table, meta.dev(), meta.ino(), std::process::id())?;
    let process = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_string())
        .ok()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "process".into());
    Some(Holder { pid, process })
}

/// The pid of a lock in `table` (the text of `/proc/locks`) on the file `dev`/`ino` held by
/// a process other than `own`. Waiting requests (`->`) hold nothing and are skipped.
fn lock_holder(table: &str, dev: u64, ino: u64, own: u32) -> Option<u32> {
    // The kernel prints the device as hex major:minor, from the same dev_t split as glibc's.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    let file = format!("{major:02x}:{minor:02x}:{ino}");
    table.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.get(1) == Some(&"->") {
            return None;
        }
        // "1: POSIX  ADVISORY  WRITE 1234 fe:00:7144564 1073741824 1073742335"
        let pid = fields.get(4)?.parse::<u32>().ok()?;
        (fields.get(5) == Some(&file.as_str()) && pid != own).then_some(pid)
    })
}

#[cfg(test)]
mod tests {
    use super::lock_holder;

    const TABLE: &str = "\
1: FLOCK  ADVISORY  WRITE 2280 fe:00:7144564 0 EOF
2: POSIX  ADVISORY  WRITE 4242 fe:01:99 1073741824 1073742335
2: -> POSIX  ADVISORY  WRITE 5151 fe:01:99 1073741824 1073742335
3: POSIX  ADVISORY  READ 77 fe:01:123 0 EOF
";

    fn dev(major: u64, minor: u64) -> u64 {
        (major << 8) | minor
    }

    #[test]
    fn the_holder_is_found_by_device_and_inode() {
        assert_eq!(lock_holder(TABLE, dev(0xfe, 1), 99, 1), Some(4242));
        assert_eq!(lock_holder(TABLE, dev(0xfe, 1), 123, 1), Some(77));
        assert_eq!(
            lock_holder(TABLE, dev(0xfe, 0), 99, 1),
            None,
            "another device"
        );
        assert_eq!(
            lock_holder(TABLE, dev(0xfe, 1), 99, 4242),
            None,
            "our own lock"
        );
        assert_eq!(lock_holder(TABLE, dev(0xfe, 1), 7, 1), None);
    }
}
