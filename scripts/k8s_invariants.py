#!/usr/bin/env python3
"""Checks what a schema cannot: that the rendered overlays keep pdm's operating rules.

    k8s_invariants.py dev=rendered/dev.yaml prod=rendered/prod.yaml \
        --dashboard k8s/dashboards/pdm.json --dashboard-render rendered/dashboards.yaml

For every service of every overlay: a Deployment running `pdm serve <service>` with
native gRPC liveness and readiness probes on its port, CPU and memory requests and limits,
a non-root read-only container (uid 65532, no privilege escalation, every capability
dropped, RuntimeDefault seccomp), emptyDirs for /data and /tmp, secrets only through
secretKeyRef (KEK and database URL), a Service with ports `grpc` and `metrics`, a
ServiceAccount, a PodDisruptionBudget that never blocks a drain, an autoscaling/v2 HPA for
consent and telemetry; NetworkPolicies: default deny in and out, one policy per service,
and exactly the calls of the design allowed (both the caller's egress and the callee's
ingress). Also the overlay-specific promises (dev: one replica; prod: PostgreSQL from the
CloudNativePG cluster, OTLP export, more than one replica) and the Grafana dashboard
(valid JSON using every pdm metric). Every problem is reported; exit status 1 if any.
"""

import argparse
import json
import re
import sys
from collections import defaultdict

import yaml

NAMESPACE = "pdm"
UID = 65532
METRICS_PORT = 9090
PORTS = {
    "identity": 50051,
    "consent": 50052,
    "telemetry": 50053,
    "retention": 50054,
    "transfers": 50055,
    "rights": 50056,
}
# The calls the design makes (caller -> callees); nothing else may be allowed.
CALLS = {
    "identity": {"rights"},
    "consent": {"identity"},
    "telemetry": {"consent"},
    "transfers": {"consent"},
    "retention": {"identity", "consent", "telemetry", "transfers"},
    "rights": {"identity", "consent", "telemetry", "transfers", "retention"},
}
AUTOSCALED = {"consent", "telemetry"}
# Namespaces (by kubernetes.io/metadata.name or label) that app pods may talk to, and how.
CLIENT_NAMESPACE = {"pdm.io/client": "true"}
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
ALLOWED_EGRESS_NAMESPACES = {
    # namespace labels -> allowed (protocol, port) pairs
    (("kubernetes.io/metadata.name", "kube-system"),): {("UDP", 53), ("TCP", 53)},
    (("kubernetes.io/metadata.name", "observability"),): {("TCP", 4317)},
}
POSTGRES_PODS = {"cnpg.io/cluster": "pdm-postgres"}
POSTGRES_PORT = 5432

# Per overlay: Secrets the cluster provides (not rendered), and what must hold.
OVERLAYS = {
    "dev": {"external_secrets": set(), "replicas": "one"},
    "prod": {"external_secrets": {"pdm-kek", "pdm-postgres-app"}, "replicas": "several"},
}
# Metric names the dashboard must use (shared with the metrics code's issue).
DASHBOARD_METRICS = [
    "pdm_rpc_requests_total",
    "pdm_rpc_duration_seconds_bucket",
    "pdm_consent_decisions_total",
    "pdm_telemetry_events_total",
    "pdm_rights_requests_open",
    "pdm_rights_requests_overdue",
    "pdm_retention_purge_runs_total",
]


class Report:
    def __init__(self):
        self.problems = []

    def check(self, ok, where, message):
        if not ok:
            self.problems.append(f"{where}: {message}")
        return ok


# === helpers ===


def load(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def index(objects):
    by_kind = defaultdict(dict)
    for obj in objects:
        by_kind[obj["kind"]][obj["metadata"]["name"]] = obj
    return by_kind


def generated_base(name):
    """`pdm-kek-bggbtmftth` -> `pdm-kek` (kustomize's content-hash suffix)."""
    return re.sub(r"-[a-z0-9]{10}$", "", name)


def quantity(value):
    """A Kubernetes quantity as a float (cores or bytes)."""
    text = str(value)
    suffixes = {
        "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    }
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)


def selects(selector, labels):
    """Whether a label selector (matchLabels only) selects `labels`. {} selects all."""
    selector = selector or {}
    if selector.get("matchExpressions"):
        raise ValueError("matchExpressions are not supported by this checker")
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def ports_of(rule):
    return {(p.get("protocol", "TCP"), p.get("port")) for p in rule.get("ports") or []}


def effective(container, pod, key):
    """A security setting as the kubelet applies it: the container's, else the pod's."""
    csc = container.get("securityContext") or {}
    psc = pod.get("securityContext") or {}
    return csc.get(key, psc.get(key))


# === checks ===


def check_deployment(r, objs, overlay, service, config_env):
    where = f"{overlay}: Deployment {service}"
    dep = objs["Deployment"].get(service)
    if not r.check(dep is not None, where, "missing"):
        return None
    r.check(dep["metadata"].get("namespace") == NAMESPACE, where, f"not in namespace {NAMESPACE}")
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"].get("labels") or {}
    r.check(labels.get("app.kubernetes.io/name") == service, where,
            "pod label app.kubernetes.io/name is not the service name")
    r.check(selects(dep["spec"]["selector"], labels), where, "selector does not select its pods")
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        r.check(not pod.get(key), where, f"{key} is set")

    containers = pod.get("containers") or []
    if not r.check(len(containers) == 1, where, "expected exactly one container"):
        return None
    c = containers[0]
    port = PORTS[service]
    r.check(c.get("args") == ["serve", service] and not c.get("command"), where,
            f"must run the image's entrypoint with args [serve, {service}], got {c.get('args')}")
    named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    r.check(named.get("grpc") == port, where, f"container port `grpc` is not {port}")
    r.check(named.get("metrics") == METRICS_PORT, where, f"container port `metrics` is not {METRICS_PORT}")

    # Probes: native gRPC on the service's port (grpc.health.v1).
    for probe in ("livenessProbe", "readinessProbe"):
        grpc = (c.get(probe) or {}).get("grpc") or {}
        r.check(grpc.get("port") == port, where, f"{probe} is not a gRPC probe on port {port}")
    if c.get("startupProbe"):
        r.check(((c["startupProbe"].get("grpc")) or {}).get("port") == port, where,
                f"startupProbe is not a gRPC probe on port {port}")

    # Resources: requests and limits for CPU and memory, requests <= limits.
    res = c.get("resources") or {}
    for resource in ("cpu", "memory"):
        req = (res.get("requests") or {}).get(resource)
        lim = (res.get("limits") or {}).get(resource)
        if r.check(req is not None and lim is not None, where, f"{resource} request and limit required"):
            r.check(quantity(req) <= quantity(lim), where, f"{resource} request {req} exceeds limit {lim}")

    # Security context.
    r.check(effective(c, pod, "runAsNonRoot") is True, where, "runAsNonRoot must be true")
    r.check(effective(c, pod, "runAsUser") == UID, where, f"runAsUser must be {UID}")
    csc = c.get("securityContext") or {}
    r.check(csc.get("readOnlyRootFilesystem") is True, where, "readOnlyRootFilesystem must be true")
    r.check(csc.get("allowPrivilegeEscalation") is False, where, "allowPrivilegeEscalation must be false")
    r.check(not csc.get("privileged"), where, "must not be privileged")
    caps = csc.get("capabilities") or {}
    r.check("ALL" in (caps.get("drop") or []), where, "capabilities must drop ALL")
    r.check(not caps.get("add"), where, f"adds capabilities {caps.get('add')}")
    seccomp = effective(c, pod, "seccompProfile") or {}
    r.check(seccomp.get("type") == "RuntimeDefault", where, "seccompProfile must be RuntimeDefault")

    # Writable paths: emptyDirs at /data and /tmp, nothing else from the node.
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for v in volumes.values():
        r.check("hostPath" not in v, where, f"volume {v['name']} is a hostPath")
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    for path in ("/data", "/tmp"):
        vol = volumes.get(mounts.get(path), {})
        r.check("emptyDir" in vol, where, f"{path} must be an emptyDir volume")

    # Service account: its own, without an API token.
    r.check(pod.get("serviceAccountName") == service, where, f"serviceAccountName must be {service}")
    r.check(pod.get("automountServiceAccountToken") is False, where,
            "automountServiceAccountToken must be false")

    # Environment: secrets only by reference; config maps and secrets must exist.
    env = {e["name"]: e for e in c.get("env") or []}
    for name in ("PDM__CRYPTO__KEK", "PDM__DATABASE__URL"):
        ref = ((env.get(name) or {}).get("valueFrom") or {}).get("secretKeyRef")
        r.check(ref is not None, where, f"{name} must come from a secretKeyRef")
    kek_ref = ((env.get("PDM__CRYPTO__KEK") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if kek_ref:
        r.check(generated_base(kek_ref.get("name", "")) == "pdm-kek" and kek_ref.get("key") == "kek",
                where, "PDM__CRYPTO__KEK must come from Secret pdm-kek, key kek")
    for e in env.values():
        sensitive = re.search(r"KEK|PASSWORD|SECRET|TOKEN|DATABASE_URL|DATABASE__URL", e["name"])
        r.check(not (sensitive and "value" in e), where, f"{e['name']} is set in plain text")
        ref = (e.get("valueFrom") or {}).get("secretKeyRef")
        if ref:
            check_secret_ref(r, objs, overlay, where, ref["name"], ref["key"])
    own_config = False
    for source in c.get("envFrom") or []:
        cm = (source.get("configMapRef") or {}).get("name")
        if cm:
            r.check(cm in objs["ConfigMap"], where, f"ConfigMap {cm} is not rendered")
            own_config |= generated_base(cm) == f"{service}-config"
        r.check("secretRef" not in source, where, "envFrom secretRef would expose a whole Secret")
    r.check(own_config, where, f"no ConfigMap {service}-config in envFrom")
    for source in c.get("envFrom") or []:
        cm = objs["ConfigMap"].get((source.get("configMapRef") or {}).get("name"), {})
        config_env.setdefault(service, {}).update(cm.get("data") or {})
    config_env[service].update({k: v["value"] for k, v in env.items() if "value" in v})
    return dep


def check_secret_ref(r, objs, overlay, where, name, key):
    secret = objs["Secret"].get(name)
    if secret is not None:
        r.check(key in (secret.get("data") or {}) or key in (secret.get("stringData") or {}),
                where, f"Secret {name} has no key {key}")
    else:
        r.check(name in OVERLAYS[overlay]["external_secrets"], where,
                f"Secret {name} is neither rendered nor provided by the cluster "
                f"(expected external: {sorted(OVERLAYS[overlay]['external_secrets']) or 'none'})")


def check_config(r, overlay, service, env):
    where = f"{overlay}: {service} configuration"
    r.check(env.get("PDM__SERVER__HOST") == "0.0.0.0", where, "PDM__SERVER__HOST must be 0.0.0.0")
    listen = env.get("PDM__METRICS__LISTEN", "")
    r.check(listen.endswith(f":{METRICS_PORT}"), where, f"PDM__METRICS__LISTEN must use port {METRICS_PORT}")
    r.check(env.get("PDM__DATA_DIR") == "/data", where, "PDM__DATA_DIR must be /data (the emptyDir)")
    for peer in CALLS[service]:
        endpoint = env.get(f"PDM__SERVICES__{peer.upper()}__ENDPOINT", "")
        r.check(re.fullmatch(rf"https?://{peer}(\.{NAMESPACE}(\.svc(\..+)?)?)?:{PORTS[peer]}", endpoint),
                where, f"endpoint of {peer} must be its Service on port {PORTS[peer]}, got {endpoint!r}")


def check_service(r, objs, overlay, service, pod_labels):
    where = f"{overlay}: Service {service}"
    svc = objs["Service"].get(service)
    if not r.check(svc is not None, where, "missing"):
        return
    r.check(selects({"matchLabels": svc["spec"].get("selector")}, pod_labels) and svc["spec"].get("selector"),
            where, "selector does not select the Deployment's pods")
    ports = {p.get("name"): p for p in svc["spec"].get("ports") or []}
    grpc, metrics = ports.get("grpc"), ports.get("metrics")
    r.check(grpc is not None and grpc.get("port") == PORTS[service]
            and grpc.get("targetPort") in ("grpc", PORTS[service]),
            where, f"port `grpc` must be {PORTS[service]}")
    r.check(metrics is not None and metrics.get("port") == METRICS_PORT
            and metrics.get("targetPort") in ("metrics", METRICS_PORT),
            where, f"port `metrics` must be {METRICS_PORT}")
    sa = objs["ServiceAccount"].get(service)
    if r.check(sa is not None, f"{overlay}: ServiceAccount {service}", "missing"):
        r.check(sa.get("automountServiceAccountToken") is False, f"{overlay}: ServiceAccount {service}",
                "automountServiceAccountToken must be false")


def check_pdb(r, objs, overlay, service, pod_labels, replicas):
    where = f"{overlay}: PodDisruptionBudget of {service}"
    pdbs = [p for p in objs["PodDisruptionBudget"].values()
            if p["spec"].get("selector") and selects(p["spec"]["selector"], pod_labels)]
    if not r.check(len(pdbs) == 1, where, f"expected one, found {len(pdbs)}"):
        return
    spec = pdbs[0]["spec"]
    if "minAvailable" in spec:
        r.check(isinstance(spec["minAvailable"], int) and spec["minAvailable"] < replicas, where,
                f"minAvailable {spec['minAvailable']} with {replicas} replica(s) blocks every drain")
    else:
        r.check(spec.get("maxUnavailable") not in (None, 0, "0%"), where,
                "needs maxUnavailable > 0 (or minAvailable below the replica count)")


def check_scaling(r, objs, overlay, service, dep):
    where = f"{overlay}: {service} scaling"
    hpas = [h for h in objs["HorizontalPodAutoscaler"].values()
            if h["spec"]["scaleTargetRef"].get("kind") == "Deployment"
            and h["spec"]["scaleTargetRef"].get("name") == service]
    if service in AUTOSCALED:
        if not r.check(len(hpas) == 1, where, f"expected one HorizontalPodAutoscaler, found {len(hpas)}"):
            return 1
        hpa = hpas[0]
        r.check(hpa["apiVersion"] == "autoscaling/v2", where, "HPA must be autoscaling/v2")
        lo, hi = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        r.check(1 <= lo <= hi, where, f"HPA bounds {lo}..{hi} are not ordered")
        r.check(hpa["spec"].get("metrics"), where, "HPA has no metrics")
        r.check("replicas" not in dep["spec"], where,
                "an autoscaled Deployment must not set replicas (every apply would reset the HPA's choice)")
        replicas = lo
    else:
        r.check(not hpas, where, "unexpected HorizontalPodAutoscaler")
        replicas = dep["spec"].get("replicas", 1)
    if OVERLAYS[overlay]["replicas"] == "one":
        r.check(replicas == 1 and (not hpas or hpas[0]["spec"]["maxReplicas"] == 1), where,
                "dev runs exactly one replica (SQLite lives in the pod)")
    else:
        r.check(replicas >= 2, where, f"{replicas} replica(s): prod needs at least two")
    return replicas


def check_network(r, objs, overlay, pod_labels):
    policies = list(objs["NetworkPolicy"].values())
    where = f"{overlay}: NetworkPolicy"
    deny = [p for p in policies if p["spec"].get("podSelector") in ({}, None)
            and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    r.check(deny, where, "no default-deny policy (podSelector {}, Ingress and Egress, no rules)")

    app_pods = {s: labels for s, labels in pod_labels.items()}
    ingress_from = defaultdict(set)  # callee -> callers allowed in on its gRPC port
    egress_to = defaultdict(set)  # caller -> callees it may reach on their gRPC ports
    own_policy = defaultdict(list)
    for pol in policies:
        name = pol["metadata"]["name"]
        spec = pol["spec"]
        for service, labels in app_pods.items():
            if not selects(spec.get("podSelector"), labels):
                continue
            if (spec.get("podSelector") or {}).get("matchLabels", {}).get("app.kubernetes.io/name") == service:
                own_policy[service].append(name)
            types = spec.get("policyTypes") or ["Ingress"]
            for rule in (spec.get("ingress") or []) if "Ingress" in types else []:
                peers = rule.get("from")
                ports = ports_of(rule)
                r.check(peers, f"{where} {name}", f"ingress to {service} from anywhere")
                r.check(ports, f"{where} {name}", f"ingress to {service} on every port")
                for peer in peers or []:
                    check_ingress_peer(r, f"{where} {name}", service, peer, ports, app_pods, ingress_from)
            for rule in (spec.get("egress") or []) if "Egress" in types else []:
                peers = rule.get("to")
                ports = ports_of(rule)
                r.check(peers, f"{where} {name}", f"egress from {service} to anywhere")
                r.check(ports, f"{where} {name}", f"egress from {service} on every port")
                for peer in peers or []:
                    check_egress_peer(r, f"{where} {name}", service, peer, ports, app_pods, egress_to)

    for service in PORTS:
        r.check(own_policy[service], where, f"no NetworkPolicy selects {service} by name")
        callers = {c for c, callees in CALLS.items() if service in callees}
        r.check(ingress_from[service] == callers, f"{where} ingress to {service}",
                f"allows {sorted(ingress_from[service])}, the design calls from {sorted(callers)}")
        r.check(egress_to[service] == CALLS[service], f"{where} egress from {service}",
                f"allows {sorted(egress_to[service])}, the design calls {sorted(CALLS[service])}")


def check_ingress_peer(r, where, service, peer, ports, app_pods, ingress_from):
    grpc = {("TCP", PORTS[service])}
    if "ipBlock" in peer:
        r.check(False, where, f"ipBlock ingress to {service}")
        return
    ns = peer.get("namespaceSelector")
    if ns is not None:
        labels = (ns or {}).get("matchLabels") or {}
        if labels == CLIENT_NAMESPACE:
            r.check(ports == grpc, where, f"client namespaces may reach {service} only on its gRPC port")
        elif labels == MONITORING_NAMESPACE:
            r.check(ports == {("TCP", METRICS_PORT)}, where, f"monitoring may reach {service} only on {METRICS_PORT}")
        else:
            r.check(False, where, f"ingress to {service} from unexpected namespaces {labels or 'ALL'}")
        return
    callers = [s for s, labels in app_pods.items() if selects(peer.get("podSelector"), labels)]
    r.check(callers, where, f"ingress to {service} from pods that are not pdm services")
    r.check(ports == grpc, where, f"peers may reach {service} only on its gRPC port, got {sorted(ports)}")
    if ports == grpc:
        ingress_from[service].update(callers)


def check_egress_peer(r, where, service, peer, ports, app_pods, egress_to):
    if "ipBlock" in peer:
        r.check(False, where, f"ipBlock egress from {service}")
        return
    ns = peer.get("namespaceSelector")
    if ns is not None:
        labels = tuple(sorted(((ns or {}).get("matchLabels") or {}).items()))
        allowed = ALLOWED_EGRESS_NAMESPACES.get(labels)
        r.check(allowed is not None and not peer.get("podSelector") and ports <= allowed, where,
                f"egress from {service} to namespaces {dict(labels) or 'ALL'} on {sorted(ports)}")
        return
    selector = peer.get("podSelector") or {}
    if (selector.get("matchLabels") or {}) == POSTGRES_PODS:
        r.check(ports == {("TCP", POSTGRES_PORT)}, where, f"PostgreSQL egress from {service} must be {POSTGRES_PORT} only")
        return
    callees = [s for s, labels in app_pods.items() if selects(selector, labels)]
    r.check(callees, where, f"egress from {service} to pods that are neither pdm services nor PostgreSQL")
    for callee in callees:
        if r.check(("TCP", PORTS[callee]) in ports, where, f"egress from {service} to {callee} not on its gRPC port"):
            egress_to[service].add(callee)
    r.check(ports <= {("TCP", PORTS[c]) for c in callees}, where, f"egress from {service} on extra ports {sorted(ports)}")


def check_overlay(r, overlay, objects):
    objs = index(objects)
    r.check(NAMESPACE in objs["Namespace"], overlay, f"Namespace {NAMESPACE} is not rendered")
    for obj in objects:
        if obj["kind"] != "Namespace":
            r.check(obj["metadata"].get("namespace") == NAMESPACE, overlay,
                    f"{obj['kind']} {obj['metadata']['name']} is not in namespace {NAMESPACE}")
    config_env, pod_labels, images = {}, {}, set()
    for service in PORTS:
        dep = check_deployment(r, objs, overlay, service, config_env)
        if dep is None:
            continue
        pod_labels[service] = dep["spec"]["template"]["metadata"]["labels"]
        image = dep["spec"]["template"]["spec"]["containers"][0].get("image", "")
        images.add(image)
        r.check(re.search(r"(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$", image) and not image.endswith(":latest"),
                f"{overlay}: Deployment {service}", f"image {image!r} needs a tag (not latest) or a digest")
        check_config(r, overlay, service, config_env.get(service, {}))
        check_service(r, objs, overlay, service, pod_labels[service])
        replicas = check_scaling(r, objs, overlay, service, dep)
        check_pdb(r, objs, overlay, service, pod_labels[service], replicas or 1)
    r.check(len(images) <= 1, overlay, f"services run different images: {sorted(images)}")
    if len(pod_labels) == len(PORTS):
        try:
            check_network(r, objs, overlay, pod_labels)
        except ValueError as err:
            r.check(False, overlay, str(err))

    if overlay == "prod":
        cluster = objs.get("Cluster", {}).get("pdm-postgres")
        if r.check(cluster is not None and cluster["apiVersion"].startswith("postgresql.cnpg.io/"),
                   overlay, "no CloudNativePG Cluster pdm-postgres"):
            r.check(cluster["spec"].get("instances", 1) >= 2, overlay, "pdm-postgres needs a standby")
        for service in PORTS:
            dep = objs["Deployment"].get(service)
            if not dep:
                continue
            env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0].get("env") or []}
            ref = ((env.get("PDM__DATABASE__URL") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
            r.check(ref.get("name") == "pdm-postgres-app" and ref.get("key") == "uri",
                    f"prod: Deployment {service}", "PDM__DATABASE__URL must come from pdm-postgres-app/uri")
            otlp = config_env.get(service, {}).get("PDM__OTLP__ENDPOINT", "")
            r.check(otlp.startswith("http"), f"prod: {service} configuration", "PDM__OTLP__ENDPOINT is not set")
    print(f"  {overlay}: {len(objects)} objects, {len(pod_labels)} services checked")


def check_dashboard(r, path, rendered):
    where = f"dashboard {path}"
    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        r.check(False, where, f"unreadable: {err}")
        return
    panels = []
    for p in dash.get("panels") or []:
        panels.append(p)
        panels.extend(p.get("panels") or [])
    ids = [p.get("id") for p in panels]
    r.check(len(ids) == len(set(ids)) and None not in ids, where, "panel ids must be present and unique")
    exprs = []
    for p in panels:
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        r.check(targets and all(t.get("expr") for t in targets), where, f"panel {p.get('title')!r} has no query")
        r.check((p.get("datasource") or {}).get("uid") == "${datasource}", where,
                f"panel {p.get('title')!r} must use the $datasource variable")
        exprs.extend(t.get("expr", "") for t in targets)
    text = "\n".join(exprs)
    for metric in DASHBOARD_METRICS:
        r.check(re.search(rf"\b{metric}\b", text), where, f"no panel uses {metric}")
    variables = {v.get("name") for v in (dash.get("templating") or {}).get("list") or []}
    r.check("datasource" in variables, where, "no datasource variable")
    if rendered:
        cms = [o for o in load(rendered) if o.get("kind") == "ConfigMap"]
        found = [cm for cm in cms if "pdm.json" in (cm.get("data") or {})]
        if r.check(found, rendered, "no ConfigMap carries pdm.json"):
            cm = found[0]
            r.check(json.loads(cm["data"]["pdm.json"]) == dash, rendered, "ConfigMap differs from pdm.json")
            r.check((cm["metadata"].get("labels") or {}).get("grafana_dashboard") == "1", rendered,
                    "ConfigMap lacks the grafana_dashboard: \"1\" label")
    print(f"  dashboard: {len(panels)} panels, {len(exprs)} queries, all {len(DASHBOARD_METRICS)} metrics used")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("renders", nargs="+", metavar="OVERLAY=FILE")
    parser.add_argument("--dashboard", required=True)
    parser.add_argument("--dashboard-render")
    args = parser.parse_args()

    r = Report()
    for item in args.renders:
        overlay, _, path = item.partition("=")
        if overlay not in OVERLAYS or not path:
            sys.exit(f"unknown overlay {item!r}: expected one of {sorted(OVERLAYS)} as NAME=FILE")
        check_overlay(r, overlay, load(path))
    check_dashboard(r, args.dashboard, args.dashboard_render)

    if r.problems:
        print(f"k8s invariants FAILED ({len(r.problems)} problems):", file=sys.stderr)
        for problem in r.problems:
            print(f"  {problem}", file=sys.stderr)
        sys.exit(1)
    print("  invariants hold: probes, resources, security contexts, secrets, services, PDBs, HPAs, "
          "network policies (call graph exact), dashboard")


if __name__ == "__main__":
    main()
