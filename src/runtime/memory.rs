//! The process memory ceiling for evaluations: past it, an evaluation that keeps allocating is
//! stopped with an error (one failed decision) instead of the kernel killing the process (every
//! decision on the node failing until it restarts).
//!
//! regorus counts allocations in its allocator (mimalloc) and checks the ceiling inside its
//! loops and builtins, where a runaway `numbers.range(1, 1e9)` would otherwise grow unbounded.

use std::path::Path;

/// The ceiling to use: the configured one (0 = none), else 90% of the cgroup v2 limit.
pub fn limit(configured: Option<u64>, cgroup_root: &Path) -> Option<u64> {
    match configured {
        Some(0) => None,
        Some(bytes) => Some(bytes),
        None => cgroup_limit(cgroup_root).map(|max| max / 10 * 9),
    }
}

/// The cgroup v2 `memory.max` of this process's cgroup, when it sets one.
fn cgroup_limit(root: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(root.join("memory.max")).ok()?;
    text.trim().parse().ok()
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
}
