#!/usr/bin/env python3
"""Measures the figures deploy/README.md gives: how long verdict takes from process start to
its first decision in each recovery case, what it does when a bad bundle arrives or the disk
is full, and its CPU and memory under load (for the pods' requests and limits).

    python3 deploy/measure.py [VERDICT]     # default: the static musl release binary
    RUNS=5 LOAD_SECONDS=10 python3 deploy/measure.py

Everything runs on 127.0.0.1 (ports 28xxx), with benches/bundle_server.py as the bundle
server; load comes from oha (cargo install oha). The disk-full case mounts a small tmpfs and
needs root; it is skipped otherwise. Prints a Markdown summary.
"""

import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

REPO = pathlib.Path(__file__).resolve().parent.parent
VERDICT = sys.argv[1] if len(sys.argv) > 1 else str(
    REPO / "target/x86_64-unknown-linux-musl/release/verdict"
)
RUNS = int(os.environ.get("RUNS", "5"))
LOAD_SECONDS = int(os.environ.get("LOAD_SECONDS", "10"))
HTTP, GRPC, BUNDLES = "127.0.0.1:28181", "127.0.0.1:29191", 28484
TIMEOUT = 30.0
INPUT = {"input": {"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500,
                   "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 1}}
ALLOW = {"result": {"allow": True, "reasons": []}}


def request(path, body=None, method=None, timeout=1.0):
    """(status, JSON body or None); (0, None) when nothing answers."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{HTTP}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read()
            return r.status, json.loads(text) if text else None
    except urllib.error.HTTPError as e:
        return e.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def until(what, done, timeout=TIMEOUT):
    """Polls `done` every 2 ms until it is true; the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if done():
            return time.monotonic() - start
        time.sleep(0.002)
    raise SystemExit(f"timed out waiting for {what}")


def decides():
    return request("/v1/data/payment/decision", INPUT) == (200, ALLOW)


class Verdict:
    """One `verdict run`, its log in a file."""

    def __init__(self, args, log):
        self.log = log
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [VERDICT, "run", "--addr", HTTP, "--grpc-addr", GRPC, *args],
            stdout=subprocess.DEVNULL, stderr=open(log, "ab"),
        )

    def first_decision(self):
        """Seconds from process start to the first correct decision."""
        until("the first decision", decides)
        return time.monotonic() - self.started

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=TIMEOUT)


class BundleServer:
    def __init__(self, served):
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "benches/bundle_server.py"), str(BUNDLES), str(served)]
        )
        until("the bundle server", lambda: _listening(BUNDLES))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=TIMEOUT)


def _listening(port):
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def bundle_tarball(dest, revision, broken=False):
    """The example payment bundle as a .tar.gz with `revision`; `broken` adds a module that
    does not compile (what a bad push looks like)."""
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(REPO / "bundles/payment", d, dirs_exist_ok=True)
        manifest = json.loads((pathlib.Path(d) / ".manifest").read_text())
        manifest["revision"] = revision
        (pathlib.Path(d) / ".manifest").write_text(json.dumps(manifest))
        if broken:
            (pathlib.Path(d) / "payment/broken.rego").write_text("package payment\nallow if {\n")
        tmp = f"{dest}.tmp"
        with tarfile.open(tmp, "w:gz") as t:
            for p in sorted(pathlib.Path(d).rglob("*")):
                if p.is_file():
                    t.add(p, arcname="/" + str(p.relative_to(d)))
        os.replace(tmp, dest)  # atomic: the server never serves half a file


def remote_config(work, persistence):
    path = work / "remote.yaml"
    path.write_text(
        "services:\n"
        f"  ctl: {{url: 'http://127.0.0.1:{BUNDLES}'}}\n"
        "bundles:\n"
        "  payment:\n"
        "    service: ctl\n"
        "    resource: payment.tar.gz\n"
        "    persist: true\n"
        "    polling: {min_delay_seconds: 1, max_delay_seconds: 2}\n"
        f"persistence_directory: {persistence}\n"
    )
    return str(path)


def revision():
    status, body = request("/v1/status")
    if status != 200:
        return None
    return body["result"]["bundles"]["payment"].get("active_revision")


def median_ms(values):
    return f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f}, max {max(values) * 1000:.0f}, n={len(values)})"


def measure_starts(work, results):
    times = []
    for _ in range(RUNS):
        v = Verdict([], work / "embedded.log")
        times.append(v.first_decision())
        v.stop()
    results["start, built-in bundle"] = median_ms(times)

    times = []
    for _ in range(RUNS):
        v = Verdict(["-c", str(REPO / "deploy/k8s/base/verdict.yaml"),
                     "-b", str(REPO / "deploy/k8s/base/bundle"),
                     "--set", f"persistence_directory={work / 'cm-state'}"], work / "cm.log")
        times.append(v.first_decision())
        v.stop()
    results["start, k8s config + ConfigMap bundle directory"] = median_ms(times)


def measure_remote(work, results):
    persistence = work / "state"
    served = work / "payment.tar.gz"
    bundle_tarball(served, "good-1")
    config = remote_config(work, persistence)
    server = BundleServer(served)
    v = Verdict(["-c", config], work / "remote.log")
    results["start, remote bundle, server up (download + activate)"] = median_ms([v.first_decision()])
    persisted = persistence / "bundles/payment/bundle.tar.gz"
    until("the persisted bundle", persisted.exists)

    # The bundle server goes away; verdict keeps serving what it has.
    server.stop()
    assert decides(), "verdict stopped deciding when the bundle server went away"

    # Crash with the server down: restart from the persisted bundle.
    times, kill_to_decision = [], []
    for _ in range(RUNS):
        v.kill9()
        killed = time.monotonic()
        v = Verdict(["-c", config], work / "remote.log")
        times.append(v.first_decision())
        kill_to_decision.append(time.monotonic() - killed)
    results["start, persisted remote bundle, bundle server down"] = median_ms(times)
    results["kill -9 to first decision (restarted at once), server down"] = median_ms(kill_to_decision)

    # A bad bundle pushed: rejected, the last good one keeps deciding, readiness stays 200.
    bundle_tarball(served, "bad-2", broken=True)
    server = BundleServer(served)
    pushed = time.monotonic()
    until("the rejection of bad-2", lambda: "bad-2" not in str(revision())
          and "rego_parse_error" in json.dumps(request("/v1/status")[1] or {}))
    rejected = time.monotonic() - pushed
    health = request("/health?bundles")[0]
    results["bad bundle pushed: rejected after"] = (
        f"{rejected * 1000:.0f} ms; still deciding on {revision()}, /health?bundles {health}"
    )
    # ...and across a crash: the persisted bundle is the last good one, not the bad download.
    v.kill9()
    v = Verdict(["-c", config], work / "remote.log")
    t = v.first_decision()
    results["kill -9 while the server serves the bad bundle"] = (
        f"first decision after {t * 1000:.0f} ms, on {revision()} (persisted last good bundle)"
    )
    # The fix is published: picked up within the polling delay.
    bundle_tarball(served, "good-3")
    fixed = time.monotonic()
    until("good-3 active", lambda: revision() == "good-3")
    results["fixed bundle published: active after"] = (
        f"{(time.monotonic() - fixed) * 1000:.0f} ms (polling delay 1-2 s here; "
        "min/max_delay_seconds in production)"
    )
    v.stop()
    server.stop()


def measure_disk_full(work, results):
    if os.geteuid() != 0:
        results["disk full"] = "skipped: mounting a tmpfs needs root"
        return
    persistence = work / "full"
    persistence.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(persistence)], check=True)
    try:
        # Fill it up.
        fd = os.open(persistence / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"\0" * 4096):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        served = work / "payment-full.tar.gz"
        bundle_tarball(served, "full-1")
        server = BundleServer(served)
        v = Verdict(["-c", remote_config(work, persistence)], work / "full.log")
        t = v.first_decision()
        log = work / "full.log"
        until("the persistence error", lambda: b"cannot persist the bundle" in log.read_bytes())
        health = request("/health?bundles")[0]
        status, _ = request("/v1/data/sanctions", {"blocked": ["m-999"]}, method="PUT")
        results["disk full (persistence volume)"] = (
            f"remote bundle downloaded and active after {t * 1000:.0f} ms (revision "
            f"{revision()}, /health?bundles {health}); its persistence fails (logged "
            f"'cannot persist the bundle', retried); a Data API write answers {status}"
        )
        v.stop()
        server.stop()
    finally:
        subprocess.run(["umount", str(persistence)], check=False)


def cpu_seconds(pid):
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid, key):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def measure_load(work, results):
    oha = shutil.which("oha") or str(pathlib.Path.home() / ".cargo/bin/oha")
    v = Verdict(["-c", str(REPO / "deploy/k8s/base/verdict.yaml"),
                 "-b", str(REPO / "deploy/k8s/base/bundle"),
                 "--set", f"persistence_directory={work / 'load-state'}"], work / "load.log")
    v.first_decision()
    pid = v.proc.pid
    results["RSS idle, after the first decision"] = f"{memory_kib(pid, 'VmRSS') / 1024:.1f} MiB"
    body = work / "input.json"
    body.write_text(json.dumps(INPUT))
    for rate in (1000, 5000):
        before = cpu_seconds(pid)
        out = subprocess.run(
            [oha, "--no-tui", "--output-format", "json", "-z", f"{LOAD_SECONDS}s", "-q", str(rate),
             "--latency-correction", "-c", "16",
             "-m", "POST", "-T", "application/json", "-D", str(body),
             f"http://{HTTP}/v1/data/payment/decision"],
            capture_output=True, text=True, check=True,
        )
        used = cpu_seconds(pid) - before
        summary = json.loads(out.stdout)
        p99 = summary["latencyPercentiles"]["p99"] * 1000
        ok = summary["statusCodeDistribution"].get("200", 0)
        results[f"{rate} req/s for {LOAD_SECONDS} s"] = (
            f"{used / LOAD_SECONDS * 1000:.0f} millicores, p99 {p99:.2f} ms, {ok} answered 200, "
            f"RSS {memory_kib(pid, 'VmRSS') / 1024:.1f} MiB"
        )
    results["peak RSS over the load runs"] = f"{memory_kib(pid, 'VmHWM') / 1024:.1f} MiB"
    v.stop()


def main():
    results = {}
    with tempfile.TemporaryDirectory() as d:
        work = pathlib.Path(d)
        for step in (measure_starts, measure_remote, measure_disk_full, measure_load):
            step(work, results)
            print(f"{step.__name__}: done", file=sys.stderr)
    print(f"verdict: {VERDICT}")
    print("| case | measured |\n|---|---|")
    for case, figure in results.items():
        print(f"| {case} | {figure} |")


if __name__ == "__main__":
    main()
