"""Renders every kustomization under deploy/k8s (and deploy/istio) with kustomize and checks
each rendered object against the Kubernetes 1.30 schemas (kubernetes-validate's, strict: an
unknown field fails), and custom resources against the CRD schemas vendored in
deploy/k8s/schemas/. Also checks what no schema can: the two layouts run verdict the same way,
and the probes, ports and grace periods agree with verdict's config.

    python3 deploy/k8s/validate.py LIBKUSTOMIZE.so [TARGET...]

LIBKUSTOMIZE.so is the kustomize library (sigs.k8s.io/kustomize/api) from the PyPI package
pykustomize, called through ctypes; .ci/validate-deploy installs it. A TARGET is a directory
with a kustomization.yaml; without any, every target this file lists is checked.
Exit status 1 when anything fails, with one line per problem.
"""

import copy
import os
import ctypes
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

K8S_VERSION = "1.30.0"
DEPLOY = pathlib.Path(__file__).resolve().parent.parent
SCHEMAS = DEPLOY / "k8s" / "schemas"

# Every kustomization a user may apply, and each component combined with the layout it fits.
TARGETS = {
    "k8s/overlays/daemonset": [],
    "k8s/overlays/sidecar": [],
    "k8s/overlays/proxy": [],
    "k8s/overlays/daemonset+prometheus-operator+remote-bundle": [
        "k8s/overlays/daemonset",
        "k8s/components/prometheus-operator",
        "k8s/components/remote-bundle",
    ],
    "k8s/overlays/sidecar+prometheus-operator+remote-bundle": [
        "k8s/overlays/sidecar",
        "k8s/components/prometheus-operator",
        "k8s/components/remote-bundle",
    ],
    "k8s/admission": [],
    "istio": [],
}

# Custom resources: (apiVersion, kind) -> vendored openAPIV3Schema.
CRDS = {
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor-monitoring-v1.json",
    ("security.istio.io/v1", "AuthorizationPolicy"): "authorizationpolicy-security-v1.json",
    ("networking.istio.io/v1", "ServiceEntry"): "serviceentry-networking-v1.json",
}


class Kustomize:
    """kustomize build through the C ABI of pykustomize's libpykustomize.so."""

    def __init__(self, library):
        self.lib = ctypes.CDLL(library)
        self.lib.pykustomize_build.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.POINTER(ctypes.c_void_p),
        ]
        self.lib.pykustomize_build.restype = ctypes.c_int
        self.lib.pykustomize_last_error.restype = ctypes.c_void_p
        self.lib.pykustomize_free.argtypes = [ctypes.c_void_p]
        self.lib.pykustomize_version_string.restype = ctypes.c_void_p

    def _string(self, pointer):
        text = ctypes.string_at(pointer).decode()
        self.lib.pykustomize_free(pointer)
        return text

    def version(self):
        return self._string(self.lib.pykustomize_version_string())

    def build(self, directory):
        # kustomize's defaults: files only from inside each kustomization's root, no plugins.
        options = json.dumps({"load_restrictions": 0, "reorder": "legacy"}).encode()
        result = ctypes.c_void_p()
        status = self.lib.pykustomize_build(
            str(directory).encode(), options, ctypes.byref(result)
        )
        if status != 0:
            pointer = self.lib.pykustomize_last_error()
            raise RuntimeError(self._string(pointer) if pointer else "kustomize build failed")
        return self._string(result)


def strict(schema):
    """A CRD schema as the API server applies it to `kubectl apply` (field validation Strict):
    fields the schema does not name are errors, unless it preserves unknown fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    # apiVersion, kind and metadata are the API server's, not in every CRD schema.
    for key in ("apiVersion", "kind", "metadata"):
        schema.setdefault("properties", {}).setdefault(key, {})
    return schema


def check_object(obj, where):
    """Problems with one rendered object, as strings."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    name = f"{where}: {kind}/{obj.get('metadata', {}).get('name')}"
    crd = CRDS.get((api_version, kind))
    if crd is not None:
        schema = strict(json.loads((SCHEMAS / crd).read_text()))
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{name}: {'.'.join(map(str, e.path)) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.path)))
        ]
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path) or "(root)"
        return [f"{name}: {path}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"{name}: no Kubernetes {K8S_VERSION} schema and no vendored CRD schema"]
    return []


def pod_spec(obj):
    if obj["kind"] in ("DaemonSet", "Deployment"):
        return obj["spec"]["template"]["spec"]
    return None


def verdict_container(objects):
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            if c["name"] == "verdict":
                return spec, c
    return None, None


def check_layout(objects, where):
    """What no schema checks: probes, ports and grace periods agree with verdict's config."""
    problems = []
    spec, container = verdict_container(objects)
    if container is None:
        return [f"{where}: no container named verdict"]
    configs = [
        o for o in objects if o["kind"] == "ConfigMap" and "verdict.yaml" in o.get("data", {})
    ]
    if len(configs) != 1:
        return [f"{where}: want one ConfigMap with verdict.yaml, found {len(configs)}"]
    config = yaml.safe_load(configs[0]["data"]["verdict.yaml"])
    grace = config.get("verdict", {}).get("shutdown_grace_period_seconds", 10)
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    total = spec.get("terminationGracePeriodSeconds", 30)
    if total < pre_stop + grace:
        problems.append(
            f"{where}: terminationGracePeriodSeconds {total} < preStop {pre_stop} s "
            f"+ shutdown_grace_period_seconds {grace} s: SIGKILL would cut requests in flight"
        )
    ports = {p["containerPort"] for p in container.get("ports", [])}
    grpc_port = int(str(config["plugins"]["envoy_ext_authz_grpc"]["addr"]).rsplit(":", 1)[1])
    http_port = int(str(config["verdict"]["addr"][0]).rsplit(":", 1)[1])
    proxy_ports = {port for port, _ in proxies(container)}
    if ports != {grpc_port, http_port} | proxy_ports:
        problems.append(
            f"{where}: container ports {sorted(ports)} vs config {http_port}, {grpc_port}"
            f" and proxies {sorted(proxy_ports)}"
        )
    probes = {
        "livenessProbe": ("httpGet", "/health/live"),
        "readinessProbe": ("httpGet", "/health?bundles"),
        "startupProbe": ("grpc", None),
    }
    for probe, (how, path) in probes.items():
        p = container.get(probe, {}).get(how)
        if p is None:
            problems.append(f"{where}: verdict has no {how} {probe}")
        elif path is not None and p.get("path") != path:
            problems.append(f"{where}: {probe} asks {p.get('path')}, want {path}")
    # A bundle being read is held whole: the size limit plus the process must fit the limit.
    limit = config["verdict"].get("bundle_size_limit_bytes", 256 << 20)
    memory = str(container.get("resources", {}).get("limits", {}).get("memory", "0"))
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    memory_bytes = int(memory[:-2]) * units[memory[-2:]] if memory[-2:] in units else int(memory)
    if limit + (64 << 20) > memory_bytes:
        problems.append(
            f"{where}: memory limit {memory} cannot hold a bundle of bundle_size_limit_bytes "
            f"{limit} plus the process (64 Mi): a large bundle would get verdict OOM-killed"
        )
    security = container.get("securityContext", {})
    pod_security = spec.get("securityContext", {})
    if not (security.get("runAsNonRoot") or pod_security.get("runAsNonRoot")):
        problems.append(f"{where}: verdict may run as root")
    if not security.get("readOnlyRootFilesystem"):
        problems.append(f"{where}: verdict's root filesystem is writable")
    mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
    wanted = {config["persistence_directory"], "/etc/verdict", *config["verdict"].get("bundles", [])}
    if not wanted <= mounts:
        problems.append(f"{where}: nothing mounted at {sorted(wanted - mounts)}")
    return problems


def proxies(container):
    """The `--proxy ADDR=UPSTREAM` arguments as (listen port, upstream)."""
    args = container.get("args", [])
    found = []
    for flag, value in zip(args, args[1:]):
        if flag == "--proxy":
            addr, upstream = value.split("=", 1)
            found.append((int(addr.rsplit(":", 1)[1]), upstream))
    return found


def check_proxy(objects, where):
    """verdict fronts the gateway: the Service reaches verdict's proxy listener, the proxy's
    upstream is the gateway on loopback, and the gateway exposes no port around verdict."""
    problems = []
    spec, container = verdict_container(objects)
    listeners = proxies(container or {})
    if len(listeners) != 1:
        return [f"{where}: want one --proxy on verdict, found {len(listeners)}"]
    port, upstream = listeners[0]
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    service = next((o for o in objects if o["kind"] == "Service"), None)
    if service is None:
        return [f"{where}: no Service for the gateway"]
    for p in service["spec"]["ports"]:
        target = p.get("targetPort")
        if named.get(target, target) != port:
            problems.append(f"{where}: Service port {p['port']} reaches {target}, not verdict's proxy {port}")
    gateway = next(c for c in spec["containers"] if c["name"] == "gateway")
    if gateway.get("ports"):
        problems.append(f"{where}: the gateway exposes {gateway['ports']}: requests could go around verdict")
    env = {e["name"]: e.get("value") for e in gateway.get("env", [])}
    listen = env.get("LISTEN_ADDR", "")
    if not listen.startswith("127.0.0.1:") or upstream != f"http://{listen}":
        problems.append(f"{where}: proxy upstream {upstream} vs gateway LISTEN_ADDR {listen!r} (loopback only)")
    return problems


def check_admission(objects, where):
    """The webhook reaches the port verdict's admission listener has, with TLS, and a missed
    deadline is verdict's answer, not the API server's timeout."""
    problems = []
    spec, container = verdict_container(objects)
    if container is None:
        return [f"{where}: no container named verdict"]
    config = next(
        yaml.safe_load(o["data"]["verdict.yaml"])
        for o in objects
        if o["kind"] == "ConfigMap" and "verdict.yaml" in o.get("data", {})
    )
    admission = config["verdict"]["admission"]
    port = int(str(admission["addr"]).rsplit(":", 1)[1])
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    if named.get("webhook") != port:
        problems.append(f"{where}: container port 'webhook' is {named.get('webhook')}, config {port}")
    for probe in ("readinessProbe", "livenessProbe"):
        get = container.get(probe, {}).get("httpGet", {})
        if get.get("scheme") != "HTTPS" or get.get("port") != "webhook":
            problems.append(f"{where}: {probe} must ask the webhook port over HTTPS")
    if not (container.get("securityContext", {}).get("readOnlyRootFilesystem")
            and spec.get("securityContext", {}).get("runAsNonRoot")):
        problems.append(f"{where}: verdict may run as root or write its root filesystem")
    service = next(o for o in objects if o["kind"] == "Service")
    webhooks = next(o for o in objects if o["kind"] == "ValidatingWebhookConfiguration")
    for hook in webhooks["webhooks"]:
        ref = hook["clientConfig"]["service"]
        ports = {p["port"]: p["targetPort"] for p in service["spec"]["ports"]}
        if ref["name"] != service["metadata"]["name"] or ports.get(ref.get("port", 443)) != "webhook":
            problems.append(f"{where}: {hook['name']} does not reach verdict's webhook port")
        if admission.get("deadline_ms", 0) >= hook.get("timeoutSeconds", 10) * 1000:
            problems.append(f"{where}: deadline_ms must be below the webhook's timeoutSeconds")
        if hook.get("failurePolicy", "Fail") != admission.get("failure_policy", "Fail"):
            problems.append(f"{where}: failurePolicy differs from verdict's failure_policy")
    return problems


def same_verdict(rendered):
    """The DaemonSet's and the sidecar's verdict containers differ only where they must."""
    keys = ("image", "args", "terminationMessagePolicy", "startupProbe", "readinessProbe",
            "livenessProbe", "resources")
    pairs = {}
    for where in ("k8s/overlays/daemonset", "k8s/overlays/sidecar"):
        _, container = verdict_container(rendered.get(where, []))
        if container is None:
            return []
        pairs[where] = {k: container.get(k) for k in keys}
        # Port names differ (a sidecar shares the pod's port names with the gateway).
        for probe in ("readinessProbe", "livenessProbe"):
            if pairs[where][probe]:
                pairs[where][probe] = dict(pairs[where][probe], httpGet=dict(
                    pairs[where][probe]["httpGet"], port=None))
    a, b = pairs.values()
    return [
        f"verdict's {k} differs between the daemonset and sidecar layouts: {a[k]} vs {b[k]}"
        for k in keys
        if a[k] != b[k]
    ]


def check_envoy_examples(rendered):
    """What Envoy and istiod would read, checked against the layouts (no Envoy or istiod runs
    here): the providers and the ext_authz cluster point at verdict's gRPC port and Service."""
    problems = []
    if "k8s/overlays/daemonset" not in rendered:
        return []
    objects = rendered["k8s/overlays/daemonset"]
    service = next((o for o in objects if o["kind"] == "Service"), None)
    if service is None:
        return ["k8s/overlays/daemonset: no Service"]
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"
    grpc = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
    mesh = yaml.safe_load((DEPLOY / "istio" / "mesh-config.yaml").read_text())
    providers = {p["name"]: p["envoyExtAuthzGrpc"] for p in mesh["spec"]["meshConfig"]["extensionProviders"]}
    if providers.get("verdict-node", {}).get("service") != host:
        problems.append(f"istio/mesh-config.yaml: verdict-node does not ask {host}")
    for name, p in providers.items():
        if p.get("port") != grpc or p.get("failOpen", False):
            problems.append(f"istio/mesh-config.yaml: {name} must ask port {grpc} and fail closed")
    policies = [o for o in rendered.get("istio", []) if o["kind"] == "AuthorizationPolicy"]
    for o in policies:
        if o["spec"]["provider"]["name"] not in providers:
            problems.append(f"istio: {o['metadata']['name']} names an unknown provider")
    envoy = yaml.safe_load((DEPLOY / "istio" / "envoy.yaml").read_text())
    clusters = {c["name"]: c for c in envoy["static_resources"]["clusters"]}
    cluster = clusters.get("verdict")
    if cluster is None:
        return problems + ["istio/envoy.yaml: no verdict cluster"]
    address = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    if address["socket_address"] != {"address": host, "port_value": grpc}:
        problems.append(f"istio/envoy.yaml: the verdict cluster does not ask {host}:{grpc}")
    if "http2_protocol_options" not in json.dumps(cluster):
        problems.append("istio/envoy.yaml: the verdict cluster must speak HTTP/2 (gRPC)")
    filters = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    authz = [f for f in filters["typed_config"]["http_filters"] if f["name"] == "envoy.filters.http.ext_authz"]
    if not authz or authz[0]["typed_config"]["grpc_service"]["envoy_grpc"]["cluster_name"] != "verdict":
        problems.append("istio/envoy.yaml: no ext_authz filter asking the verdict cluster")
    elif authz[0]["typed_config"].get("failure_mode_allow", False):
        problems.append("istio/envoy.yaml: ext_authz must fail closed")
    return problems


def render(kustomize, target, parts, scratch):
    if not parts:
        return kustomize.build(DEPLOY / target)
    # A layout with components: a kustomization of its own, outside the tree.
    directory = scratch / target.replace("/", "_").replace("+", "_")
    directory.mkdir(parents=True, exist_ok=True)
    layout, *components = parts
    (directory / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [os.path.relpath(DEPLOY / layout, directory)],
                "components": [os.path.relpath(DEPLOY / c, directory) for c in components],
            }
        )
    )
    return kustomize.build(directory)


def main(argv):
    import tempfile

    kustomize = Kustomize(argv[1])
    chosen = argv[2:]
    targets = {t: TARGETS.get(t, []) for t in chosen} if chosen else TARGETS
    print(f"kustomize: {kustomize.version()}; schemas: Kubernetes {K8S_VERSION} (strict)")
    problems, rendered = [], {}
    with tempfile.TemporaryDirectory() as scratch:
        for target, parts in targets.items():
            try:
                text = render(kustomize, target, parts, pathlib.Path(scratch))
            except RuntimeError as e:
                problems.append(f"{target}: kustomize build failed: {e}")
                continue
            objects = [o for o in yaml.safe_load_all(text) if o]
            rendered[target] = objects
            found = [p for o in objects for p in check_object(o, target)]
            if target.startswith("k8s/overlays/"):
                found += check_layout(objects, target)
            if target.startswith("k8s/overlays/proxy"):
                found += check_proxy(objects, target)
            elif target == "k8s/admission":
                found += check_admission(objects, target)
            kinds = ", ".join(sorted({o["kind"] for o in objects}))
            print(f"{'FAIL' if found else 'ok  '} {target}: {len(objects)} objects ({kinds})")
            problems += found
    checks = {"layouts agree": same_verdict(rendered), "envoy and istio examples": check_envoy_examples(rendered)}
    for check, found in checks.items():
        print(f"{'FAIL' if found else 'ok  '} {check}")
        problems += found
    for p in problems:
        print(f"  {p}")
    failed = {t for t in targets if any(p.startswith(t + ":") for p in problems)}
    failed |= {c for c, found in checks.items() if found}
    total = len(targets) + len(checks)
    print(f"validate-deploy: {total - len(failed)} passed, {len(failed)} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
