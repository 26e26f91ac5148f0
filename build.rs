#![allow(clippy::expect_used, clippy::unwrap_used)] // a build script that cannot pack the bundle must stop the build
//! Packs `bundles/payment` into a tar.gz in OPA's layout, embedded as `verdict run`'s default,
//! generates the native gRPC API from `proto/verdict/v1/decisions.proto`, and records the
//! build's provenance (commit, time, host) for `?provenance` and `verdict version`. It also
//! chooses how the release binary is linked, for its start and resident memory.

use std::fs::File;
use std::path::{Path, PathBuf};

fn main() {
    pack_payment_bundle();
    compile_protos();
    record_provenance();
    link_release_binary();
}

/// How the release binary is linked. `VERDICT_NO_PIE=1` at build time links it at a fixed
/// address (`-no-pie`, as Go links OPA's): no relocations to apply at start, and no 1.5 MB of
/// `.data.rel.ro` copied to apply them in. The default stays position-independent: the
/// executable's own image then loads at a random address (ASLR), which hardening scanners of a
/// payment platform check for, and a pod starts once.
///
/// Where the linker takes them (tried on a one-line program first, so another toolchain or
/// linker builds as before), two more: the start-up code placed together (`order_hot_code`)
/// and the relocation records packed (`DT_RELR`: 1.5 MB read at every start -> 24 KB).
/// - The host's glibc build: rustup's rustc >= 1.90 links x86_64-unknown-linux-gnu with its own
///   lld (elsewhere, or with a distribution's rustc, GNU ld refuses the probes and the build
///   stays as it was). A packed binary needs glibc >=
///   2.36 to run (2.34 without), and an older one refuses it at exec with "GLIBC_ABI_DT_RELR
///   not found", so it is packed only when the building machine's glibc is that new;
///   `VERDICT_NO_RELR=1` keeps a binary built there runnable on RHEL 9 (2.34) or Ubuntu 22.04
///   (2.35).
/// - The static musl build of the image (`deploy/build-image.sh`, the Dockerfile): rustc links
///   it with the system's GNU ld, which takes neither, so it is linked with rustc's lld instead
///   (through the `gcc-ld` wrapper rustc ships for that). The binary relocates itself, so
///   packing asks nothing of the machine it runs on; the probe is run as well as linked, to see
///   that the C library's start-up applies packed records.
///
/// Any `-C link...` of your own in RUSTFLAGS, or a configured linker (cross builds through zig,
/// say), turns lld, ordering and packing off (`VERDICT_NO_PIE` still applies).
fn link_release_binary() {
    for var in [
        "VERDICT_NO_PIE",
        "VERDICT_NO_ORDER",
        "VERDICT_NO_RELR",
        "RUSTC_LINKER",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let env = |name: &str| std::env::var(name).unwrap_or_default();
    if env("PROFILE") != "release" || env("CARGO_CFG_TARGET_OS") != "linux" {
        return;
    }
    let no_pie = env("VERDICT_NO_PIE") == "1";
    if no_pie {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    if std::env::var_os("RUSTC_LINKER").is_some() || env("CARGO_ENCODED_RUSTFLAGS").contains("link")
    {
        return;
    }
    let (target, host) = (env("TARGET"), env("HOST"));
    // The probes link as the binary will, -no-pie included.
    let probe_only: Vec<String> = if no_pie {
        vec!["-no-pie".into()]
    } else {
        Vec::new()
    };
    let same_arch = target.split('-').next() == host.split('-').next();
    let musl = env("CARGO_CFG_TARGET_ENV") == "musl";
    let (linker, pack) = match env("CARGO_CFG_TARGET_ENV").as_str() {
        "gnu" if target == host => (
            Linker::new(&target, Vec::new(), probe_only, false),
            glibc_version() >= (2, 36),
        ),
        "musl" if same_arch => match rust_lld_wrapper(&host) {
            Some(dir) => (
                Linker::new(
                    &target,
                    vec![format!("-B{}", dir.display()), "-fuse-ld=lld".into()],
                    probe_only,
                    true,
                ),
                true,
            ),
            None => {
                musl_without_lld("this toolchain has no rust-lld wrapper (gcc-ld)");
                return;
            }
        },
        _ => return,
    };
    let Some(linker) = linker else {
        return;
    };
    // Only the musl link has base arguments of its own to check and pass.
    if musl && !linker.take(&[]) {
        musl_without_lld("a test program did not link and run with rust-lld");
        return;
    }
    if !no_pie && pack && env("VERDICT_NO_RELR") != "1" {
        linker.take(&["-Wl,-z,pack-relative-relocs"]);
    }
    if env("VERDICT_NO_ORDER") != "1" {
        order_hot_code(&linker, musl);
    }
}

/// Says why the image's static binary is linked as rustc would by itself: idle RSS ~10 MB
/// higher (benches/README.md, "Footprint").
fn musl_without_lld(why: &str) {
    println!("cargo:warning={why}: linked by the system's linker, without code ordering or packed relocations");
}

/// Places the functions `verdict run` executes at start and on its first decisions
/// (`link/hot-code.txt`, made by `link/hot-code.sh`; `link/hot-code-musl.txt` for the static
/// build, whose symbols cargo names differently) first in `.text`, so the code a running
/// service has touched sits together. The kernel maps an executable's code in 64 KiB runs
/// around each page fault; with that code strewn over the 24 MB `.text`, 13 MB of it were
/// resident at idle for ~4 MB executed. lld takes the file; GNU ld and gold do not. Names
/// missing from the build (another toolchain, updated dependencies) are skipped, which costs
/// memory, not correctness.
fn order_hot_code(linker: &Linker, musl: bool) {
    let order = Path::new(if musl {
        "link/hot-code-musl.txt"
    } else {
        "link/hot-code.txt"
    });
    println!("cargo:rerun-if-changed={}", order.display());
    if let Ok(file) = order.canonicalize() {
        linker.take(&[
            &format!("-Wl,--symbol-ordering-file={}", file.display()),
            "-Wl,--no-warn-symbol-ordering",
        ]);
    }
}

/// The directory of the `ld.lld` wrapper rustup's toolchain ships for the host, which runs
/// rustc's own lld when a C compiler driver is given `-fuse-ld=lld`.
fn rust_lld_wrapper(host: &str) -> Option<PathBuf> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = std::process::Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    let sysroot = String::from_utf8(out.stdout).ok()?;
    let dir = Path::new(sysroot.trim()).join(format!("lib/rustlib/{host}/bin/gcc-ld"));
    dir.join("ld.lld").is_file().then_some(dir)
}

/// The release binary's link arguments: `base` when the first `take` succeeds, then each set
/// of extra ones that a one-line program links with (and, where `run`, runs with).
struct Linker {
    target: String,
    /// The one-line program's source, written once for every probe.
    probe: PathBuf,
    base: Vec<String>,
    /// Given to the probes, passed to the binary's link elsewhere (`-no-pie`).
    probe_only: Vec<String>,
    run: bool,
}

impl Linker {
    /// `None` when the probe cannot be written: a linker not taken, the build goes on as it was.
    fn new(target: &str, base: Vec<String>, probe_only: Vec<String>, run: bool) -> Option<Linker> {
        let out = PathBuf::from(std::env::var("OUT_DIR").ok()?);
        let probe = out.join("link-probe.rs");
        // Formatting reaches vtables: relocations the start-up must have applied.
        std::fs::write(
            &probe,
            "fn main() {\n    println!(\"{}\", std::env::args().count());\n}\n",
        )
        .ok()?;
        Some(Linker {
            target: target.to_string(),
            probe,
            base,
            probe_only,
            run,
        })
    }

    /// Passes `extra` to the binary's link when a probe links (and runs) with the base
    /// arguments and them; `take(&[])` checks and passes the base arguments themselves.
    fn take(&self, extra: &[&str]) -> bool {
        let binary = self.probe.with_extension("");
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let mut link = std::process::Command::new(rustc);
        link.arg(&self.probe)
            .args(["--target", &self.target, "-o"])
            .arg(&binary);
        let base = self.probe_only.iter().chain(&self.base).map(String::as_str);
        for arg in base.chain(extra.iter().copied()) {
            link.arg("-C").arg(format!("link-arg={arg}"));
        }
        let succeeds = |command: &mut std::process::Command| {
            command
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        };
        let taken = succeeds(&mut link)
            && (!self.run || succeeds(&mut std::process::Command::new(&binary)));
        if taken {
            let passed: Vec<&str> = if extra.is_empty() {
                self.base.iter().map(String::as_str).collect()
            } else {
                extra.to_vec()
            };
            for arg in passed {
                println!("cargo:rustc-link-arg-bins={arg}");
            }
        }
        taken
    }
}

/// (major, minor) of the machine's glibc, (0, 0) for another C library.
fn glibc_version() -> (u32, u32) {
    let out = std::process::Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output();
    // "glibc 2.36"
    let text = out.map(|o| o.stdout).unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let mut numbers = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .split('.')
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// `VERDICT_BUILD_COMMIT`, `VERDICT_BUILD_TIMESTAMP` (RFC 3339, UTC) and
/// `VERDICT_BUILD_HOSTNAME` for the crate, as OPA's release builds fill them. Each may be given
/// in the environment (a build without `.git`, a packager's values); otherwise the commit comes
/// from git, the time from `SOURCE_DATE_EPOCH` (reproducible builds) or the clock, and the host
/// from the kernel. Nothing here uses the network. The timestamp is never empty.
fn record_provenance() {
    for var in [
        "VERDICT_BUILD_COMMIT",
        "VERDICT_BUILD_TIMESTAMP",
        "VERDICT_BUILD_HOSTNAME",
        "SOURCE_DATE_EPOCH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let commit = std::env::var("VERDICT_BUILD_COMMIT")
        .ok()
        .or_else(git_commit)
        .unwrap_or_default();
    let timestamp = std::env::var("VERDICT_BUILD_TIMESTAMP")
        .ok()
        .filter(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok())
        .unwrap_or_else(build_time);
    let hostname = std::env::var("VERDICT_BUILD_HOSTNAME")
        .ok()
        .or_else(|| {
            let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
            Some(name.trim().to_string())
        })
        .unwrap_or_default();
    println!("cargo:rustc-env=VERDICT_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=VERDICT_BUILD_TIMESTAMP={timestamp}");
    println!("cargo:rustc-env=VERDICT_BUILD_HOSTNAME={hostname}");
    let target = std::env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=VERDICT_BUILD_TARGET={target}");
    println!("cargo:rerun-if-changed=Cargo.lock");
    println!(
        "cargo:rustc-env=VERDICT_REGORUS_VERSION={}",
        locked_version("regorus").unwrap_or_default()
    );
}

/// A dependency's version as Cargo.lock pins it.
fn locked_version(name: &str) -> Option<String> {
    let lock = std::fs::read_to_string("Cargo.lock").ok()?;
    let entry = format!("name = \"{name}\"\n");
    let after = &lock[lock.find(&entry)? + entry.len()..];
    let version = after.strip_prefix("version = \"")?;
    Some(version[..version.find('"')?].to_string())
}

/// HEAD's short hash, as OPA's `get-build-commit.sh` gives it; the build reruns when HEAD
/// moves (a commit, a checkout).
fn git_commit() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = std::process::Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
        (out.status.success() && !text.is_empty()).then_some(text)
    };
    let head = git(&["rev-parse", "--path-format=absolute", "--git-path", "HEAD"])?;
    println!("cargo:rerun-if-changed={head}");
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(file) = git(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            &reference,
        ]) {
            println!("cargo:rerun-if-changed={file}");
        }
        if let Some(packed) = git(&[
            "rev-parse",
            "--path-format=absolute",
            "--git-path",
            "packed-refs",
        ]) {
            println!("cargo:rerun-if-changed={packed}");
        }
    }
    git(&["rev-parse", "--short", "HEAD"])
}

/// `SOURCE_DATE_EPOCH` when set (reproducible-builds.org), else now.
fn build_time() -> String {
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok());
    let time = match epoch.and_then(|secs| chrono::DateTime::from_timestamp(secs, 0)) {
        Some(time) => time,
        None => chrono::Utc::now(),
    };
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// protox compiles the .proto in Rust, so building needs no `protoc` on the machine; the
/// descriptor set it writes also feeds gRPC server reflection.
fn compile_protos() {
    let proto = "proto/verdict/v1/decisions.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"]).expect("compile decisions.proto");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(
        out.join("verdict_descriptors.pb"),
        prost::Message::encode_to_vec(&descriptors),
    )
    .expect("write descriptor set");
    tonic_prost_build::configure()
        .build_client(true)
        .compile_fds(descriptors)
        .expect("generate the gRPC code");
}

fn pack_payment_bundle() {
    let source = Path::new("bundles/payment");
    println!("cargo:rerun-if-changed={}", source.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let file = File::create(out.join("payment-bundle.tar.gz")).expect("create embedded bundle");
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::best());
    let mut tar = tar::Builder::new(gz);
    let mut files = Vec::new();
    collect(source, source, &mut files);
    files.sort();
    for (name, path) in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(&path).expect("read bundle file");
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes.as_slice())
            .expect("append bundle file");
    }
    tar.into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish embedded bundle");
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    for entry in std::fs::read_dir(dir).expect("read bundle directory") {
        let path = entry.expect("bundle directory entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("inside bundle");
            out.push((rel.to_string_lossy().replace('\\', "/"), path));
        }
    }
}
