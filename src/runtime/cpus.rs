//! How many CPUs this process may keep busy: its cgroup's CPU quota (v2 `cpu.max`, v1
//! `cpu.cfs_quota_us` / `cpu.cfs_period_us`), rounded up, at least one and never more than the
//! cores the scheduler lets it run on. Async workers, the blocking pool and the ad-hoc slots
//! are sized from it, so that a sidecar limited to 2 CPUs on a 64-core node keeps threads
//! (and their stacks, allocator heaps and warm engines) for 2. Rust's `available_parallelism`
//! applies the quota too, but undocumented as to which files and ancestors: this says it.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The CPUs of this process, read once (file I/O: the first call should come before the
/// async runtime starts, as `cli::run` does).
pub fn available() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| {
        let host = std::thread::available_parallelism().map_or(1, usize::from);
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        cpus(Path::new("/sys/fs/cgroup"), &own, host)
    })
}

/// The threads of the shared blocking pool, where every decision is evaluated: enough to keep
/// each CPU busy while as many evaluations again wait on a lock, a page fault or a stalled
/// runaway policy (one that runs to its time limit holds its thread), and a few for the file
/// I/O that shares the pool. Every thread keeps a warm engine and an allocator heap of its
/// own, so the bound is also the bound on that memory: tokio's default of 512 let 10,000
/// req/s on 2 CPUs start over 60 of them, 154 MB of peak RSS (26 MB with this bound; half of
/// it saved another 0.5 MB only).
pub fn blocking_threads(cpus: usize) -> usize {
    cpus * 4 + 4
}

/// `host` bounded by the quota of the cgroup `root` holds for this process (`own`: the text
/// of /proc/self/cgroup). Where both hierarchies are mounted, v2's limit is the one that
/// applies; with neither, `host`.
pub fn cpus(root: &Path, own: &str, host: usize) -> usize {
    let host = host.max(1);
    let quota = v2_quota(root, own).or_else(|| v1_quota(root, own));
    match quota {
        // Rounded up: a 1.5-CPU limit keeps two threads busy part of the time.
        Some(cpus) => (cpus.ceil() as usize).clamp(1, host),
        None => host,
    }
}

/// The tightest `cpu.max` between this process's cgroup and the root: a parent's quota caps
/// its children's. Inside a cgroup namespace /proc/self/cgroup says "/" and the mount's root
/// is the container's own cgroup.
fn v2_quota(root: &Path, own: &str) -> Option<f64> {
    let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    tightest(&ancestors(root, path), |dir| {
        let text = std::fs::read_to_string(dir.join("cpu.max")).ok()?;
        let mut fields = text.split_whitespace();
        let quota = fields.next()?.parse::<f64>().ok()?; // "max" (no limit) fails here
        let period = fields.next().map_or(Some(100_000.0), |p| p.parse().ok())?;
        ratio(quota, period)
    })
}

/// cgroup v1: the `cpu` controller's hierarchy, mounted as `cpu` or `cpu,cpuacct`; a quota of
/// -1 is no limit.
fn v1_quota(root: &Path, own: &str) -> Option<f64> {
    let path = own.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers.split(',').any(|c| c == "cpu").then_some(path)
    })?;
    ["cpu", "cpu,cpuacct", "cpuacct,cpu"]
        .iter()
        .map(|mount| root.join(mount))
        .filter(|mount| mount.is_dir())
        .find_map(|mount| {
            tightest(&ancestors(&mount, path), |dir| {
                let quota = read_number(&dir.join("cpu.cfs_quota_us"))?;
                let period = read_number(&dir.join("cpu.cfs_period_us"))?;
                ratio(quota, period)
            })
        })
}

/// `root` joined with `path` and each of its parents up to `root` itself; only those that
/// exist (a namespaced process sees a path its mount does not have).
fn ancestors(root: &Path, path: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut dir = Some(Path::new(path.trim_start_matches('/')));
    while let Some(d) = dir {
        let full = root.join(d);
        if full.is_dir() {
            dirs.push(full);
        }
        dir = d.parent();
    }
    if dirs.last().map(PathBuf::as_path) != Some(root) && root.is_dir() {
        dirs.push(root.to_path_buf());
    }
    dirs
}

fn tightest(dirs: &[PathBuf], quota: impl Fn(&Path) -> Option<f64>) -> Option<f64> {
    dirs.iter()
        .filter_map(|dir| quota(dir))
        .min_by(f64::total_cmp)
}

fn ratio(quota: f64, period: f64) -> Option<f64> {
    (quota > 0.0 && period > 0.0).then(|| quota / period)
}

fn read_number(path: &Path) -> Option<f64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, file: &str, text: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn no_cgroup_files_leave_the_host_count() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cpus(dir.path(), "0::/\n", 6), 6);
        assert_eq!(cpus(dir.path(), "", 6), 6);
        assert_eq!(cpus(dir.path(), "", 0), 1, "at least one");
    }

    #[test]
    fn v2_cpu_max_is_rounded_up_and_bounded_by_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let own = "0::/\n";
        write(dir.path(), "cpu.max", "max 100000\n");
        assert_eq!(cpus(dir.path(), own, 8), 8, "no limit");
        write(dir.path(), "cpu.max", "150000 100000\n");
        assert_eq!(cpus(dir.path(), own, 8), 2, "1.5 CPUs");
        write(dir.path(), "cpu.max", "200000 100000\n");
        assert_eq!(cpus(dir.path(), own, 8), 2);
        write(dir.path(), "cpu.max", "10000 100000\n");
        assert_eq!(
            cpus(dir.path(), own, 8),
            1,
            "a tenth of a CPU still gets one thread"
        );
        write(dir.path(), "cpu.max", "1600000 100000\n");
        assert_eq!(cpus(dir.path(), own, 4), 4, "a quota above the cores");
    }

    #[test]
    fn v2_takes_the_tightest_quota_on_the_way_to_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let own = "0::/kubepods/pod1/sidecar\n";
        write(dir.path(), "kubepods/pod1/cpu.max", "300000 100000\n");
        write(dir.path(), "kubepods/pod1/sidecar/cpu.max", "max 100000\n");
        assert_eq!(
            cpus(dir.path(), own, 16),
            3,
            "the pod's limit caps the container"
        );
        write(dir.path(), "kubepods/pod1/sidecar/cpu.max", "50000 50000\n");
        assert_eq!(cpus(dir.path(), own, 16), 1);
    }

    #[test]
    fn v2_inside_a_namespace_reads_the_mount_root() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "cpu.max", "250000 100000\n");
        assert_eq!(cpus(dir.path(), "0::/\n", 16), 3);
        // A path the namespaced mount does not show falls back to its root.
        assert_eq!(cpus(dir.path(), "0::/elsewhere/x\n", 16), 3);
    }

    #[test]
    fn v1_cfs_quota_counts_when_v2_has_no_limit() {
        let dir = tempfile::tempdir().unwrap();
        let own = "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n";
        write(
            dir.path(),
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
            "-1\n",
        );
        write(
            dir.path(),
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us",
            "100000\n",
        );
        assert_eq!(cpus(dir.path(), own, 8), 8, "-1 is no limit");
        write(
            dir.path(),
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us",
            "250000\n",
        );
        assert_eq!(cpus(dir.path(), own, 8), 3);
        // The plain `cpu` mount name works the same.
        let other = tempfile::tempdir().unwrap();
        write(other.path(), "cpu/docker/abc/cpu.cfs_quota_us", "100000\n");
        write(other.path(), "cpu/docker/abc/cpu.cfs_period_us", "100000\n");
        assert_eq!(cpus(other.path(), own, 8), 1);
    }

    #[test]
    fn v2_wins_where_both_are_mounted() {
        let dir = tempfile::tempdir().unwrap();
        let own = "0::/\n4:cpu,cpuacct:/\n";
        write(dir.path(), "cpu,cpuacct/cpu.cfs_quota_us", "100000\n");
        write(dir.path(), "cpu,cpuacct/cpu.cfs_period_us", "100000\n");
        write(dir.path(), "cpu.max", "300000 100000\n");
        assert_eq!(cpus(dir.path(), own, 8), 3);
    }

    #[test]
    fn unreadable_values_are_no_limit() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "cpu.max", "garbage\n");
        assert_eq!(cpus(dir.path(), "0::/\n", 5), 5);
        write(dir.path(), "cpu.max", "0 100000\n");
        assert_eq!(cpus(dir.path(), "0::/\n", 5), 5);
    }

    #[test]
    fn the_blocking_pool_grows_with_the_cpus() {
        assert!(blocking_threads(1) >= 2);
        assert!(blocking_threads(4) > blocking_threads(2));
    }
}
