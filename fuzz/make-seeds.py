#!/usr/bin/env python3
"""Writes the small seed corpora under fuzz/seeds/ from the repository's own fixtures.

Run from anywhere: python3 fuzz/make-seeds.py. The seeds are committed; the corpus a run grows
(fuzz/corpus/) is not.
"""
import gzip
import io
import pathlib
import shutil
import tarfile

FUZZ = pathlib.Path(__file__).resolve().parent
REPO = FUZZ.parent
SEEDS = FUZZ / "seeds"


def write(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def tar_gz(root):
    """A bundle directory packed as OPA packs it: entries named /path, gzip around a tar."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return tar_gz_entries([("/" + p.relative_to(root).as_posix(), p.read_bytes()) for p in files])


def tar_gz_entries(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def gzip_bytes(data):
    return gzip.compress(data, mtime=0)


def request_body():
    # The first byte picks the decoder (see fuzz_targets/request_body.rs):
    # bit 0 YAML, bit 1 gzip, bits 2-3 envelope / bare input / Data API document / ?input=.
    payment = (
        b'{"method": "POST", "path": "/api/payment", "role": "customer", "amount": 2500,'
        b' "currency": "EUR", "merchant": "m-123", "country": "DE", "velocity": 3}'
    )
    envelope = b'{"input": ' + payment + b"}"
    yaml = b"input:\n  role: customer\n  amount: 2500\n  tags: [a, b]\n"
    write("request_body", "envelope.json", b"\x00" + envelope)
    write("request_body", "envelope.yaml", b"\x01" + yaml)
    write("request_body", "envelope.json.gz", b"\x02" + gzip_bytes(envelope))
    write("request_body", "two-members.gz", b"\x02" + gzip_bytes(envelope[:20]) + gzip_bytes(envelope[20:]))
    write("request_body", "input.json", b"\x04" + payment)
    write("request_body", "input.yaml.gz", b"\x07" + gzip_bytes(b"role: admin\nn: 1e3\n"))
    write("request_body", "document.json", b"\x08" + (REPO / "bundles/payment/payment/config/data.json").read_bytes())
    write("request_body", "param.json", b"\x0c" + b'{"a": [1, 2.5e10, "\\u00e9", null, true]}')


def query():
    queries = {
        "decision": "data.payment.decision",
        "allow-with": 'data.payment.allow with input.role as "admin"',
        "assign": "x := input.amount + 1; y := [z | z := data.payment.reasons[_]]",
        "some-in": "some r in data.payment.reasons; startswith(r, \"role\")",
        "object": 'o := {"a": {1, 2}, "b": sprintf("%d", [input.amount])}',
        "every": "every k, v in input { k != \"\" }",
    }
    for name, text in queries.items():
        write("query", name, text.encode())


def bundle():
    fixtures = REPO / "tests/golden/fixtures"
    for name in ["payment-bundle.tar.gz", "variants/bad-compile.tar.gz", "variants/bad-roots.tar.gz"]:
        write("bundle", pathlib.Path(name).name, (fixtures / name).read_bytes())
    write("bundle", "golden-bundle.tar.gz", tar_gz(fixtures / "bundle"))
    write("bundle", "debugbundle.tar.gz", tar_gz(fixtures / "debugbundle"))
    # A delta for the fuzz target's serving bundle (roots a, b).
    patch = (
        b'{"data": [{"op": "upsert", "path": "/a/x/-", "value": 3},'
        b' {"op": "remove", "path": "/a/m/k"},'
        b' {"op": "replace", "path": "/a/x/0", "value": {"q": [1, "~1"]}},'
        b' {"op": "upsert", "path": "/b/new~1key/deep", "value": null}]}'
    )
    manifest = b'{"revision": "r2", "roots": ["a", "b"]}'
    write("bundle", "delta.tar.gz", tar_gz_entries([("/.manifest", manifest), ("/patch.json", patch)]))


if __name__ == "__main__":
    shutil.rmtree(SEEDS, ignore_errors=True)
    request_body()
    query()
    bundle()
