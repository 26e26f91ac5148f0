//! The process memory ceiling for evaluations: past it, an evaluation that keeps allocating is
//! stopped with an error (one failed decision) instead of the kernel killing the process (every
//! decision on the node failing until it restarts).
//!
//! regorus counts allocations in its allocator (mimalloc) and checks the ceiling inside its
//! loops and builtins, where a runaway `numbers.range(1, 1e9)` would otherwise grow unbounded.

use std::path::Path;

/// The ceiling to use: the configured one (0 = none), else 90% of the cgroup's limit (v2, or
/// v1 where the node still runs it).
pub fn limit(configured: Option<u64>, cgroup_root: &Path) -> Option<u64> {
    match configured {
        Some(0) => None,
        Some(bytes) => Some(bytes),
        None => cgroup_limit(cgroup_root).map(|max| max / 10 * 9),
    }
}

/// The memory limit of this process's cgroup, when it sets one: cgroup v2's `memory.max`
/// ("max" when unlimited), else cgroup v1's `memory/memory.limit_in_bytes` (a number near
/// `i64::MAX` when unlimited).
fn cgroup_limit(root: &Path) -> Option<u64> {
    if let Ok(text) = std::fs::read_to_string(root.join("memory.max")) {
        return text.trim().parse().ok();
    }
    let text = std::fs::read_to_string(root.join("memory/memory.limit_in_bytes")).ok()?;
    let limit: u64 = text.trim().parse().ok()?;
    // v1 writes its "unlimited" as the largest page-aligned i64.
    (limit < (1 << 62)).then_some(limit)
}

/// Turns transparent huge pages off for this process. The allocator (regorus's mimalloc) asks
/// for them on its arenas, and the kernel then backs every 2 MiB range the heap touches with a
/// whole zeroed huge page: measured on the payment bundle, 4 MB of heap held 22 MB of RSS at
/// idle and the zeroing added ~3 ms of CPU to the start. A policy's heap is small and
/// scattered, so the TLB gain is not worth that. Call it first in `main`: the flag covers the
/// mappings the allocator already made, from their next page fault on.
pub fn no_huge_pages() {
    // Not fatal: a kernel without the flag leaves things as they were.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// Installs the ceiling for the whole process.
pub fn apply(limit: Option<u64>) {
    regorus::set_global_memory_limit(limit);
    match limit {
        Some(bytes) => tracing::info!(bytes, "evaluation memory limit set"),
        None => tracing::info!("no evaluation memory limit (turned off, or no cgroup limit)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_follows_config_then_the_cgroup() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(limit(None, dir.path()), None, "no cgroup file");
        std::fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(limit(None, dir.path()), None, "unlimited cgroup");
        std::fs::write(dir.path().join("memory.max"), "536870912\n").unwrap();
        assert_eq!(limit(None, dir.path()), Some(536870912 / 10 * 9));
        assert_eq!(limit(Some(1000), dir.path()), Some(1000));
        assert_eq!(limit(Some(0), dir.path()), None);
    }

    #[test]
    fn a_cgroup_v1_limit_counts_too() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("memory")).unwrap();
        let v1 = dir.path().join("memory/memory.limit_in_bytes");
        std::fs::write(&v1, "9223372036854771712\n").unwrap();
        assert_eq!(limit(None, dir.path()), None, "unlimited v1 cgroup");
        std::fs::write(&v1, "536870912\n").unwrap();
        assert_eq!(limit(None, dir.path()), Some(536870912 / 10 * 9));
        // Where both hierarchies are mounted, v2's file is the one that applies.
        std::fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(limit(None, dir.path()), None);
    }
}
