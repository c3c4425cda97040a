#!/usr/bin/env python3
"""Checks what a schema cannot: that the rendered overlays keep pdm's operating rules.

    k8s_invariants.py dev=rendered/dev.yaml prod=rendered/prod.yaml \
        --dashboard k8s/dashboards/pdm.json --dashboard-render rendered/dashboards.yaml

For every service of every overlay: a Deployment running `pdm serve <service>` with
native gRPC liveness and readiness probes on its plaintext health port (the default
services.<service>.health_port; the gRPC port is mutual TLS, which the kubelet cannot
speak), CPU and memory requests and limits, a non-root read-only container (uid 65532, no
privilege escalation, every capability dropped, RuntimeDefault seccomp), emptyDirs for
/data and /tmp, secrets only through secretKeyRef (KEK and database URL) and its own
certificate Secret `<service>-tls` mounted whole (no subPath, so renewals reach the pod)
and read-only at tls.dir /etc/pdm/certs as ca.pem, <service>.pem, <service>.key, a Service
with ports `grpc` and `metrics` (not the health port), a ServiceAccount, a
PodDisruptionBudget that never blocks a drain, an autoscaling/v2 HPA for consent and
telemetry; cert-manager: the CA Issuer `pdm-ca` and, per service, the Certificate that
fills the mounted Secret, with SPIFFE URI spiffe://pdm.local/svc/<service>, exactly the
Service's DNS names, server and client auth, a fresh ECDSA key at each renewal; the admin
client certificate, mounted by no service; NetworkPolicies: default deny in and out, one
policy per service, exactly the calls of the design allowed (both the caller's egress and
the callee's ingress), no health port opened. Also the overlay-specific promises (dev: one
replica; prod: PostgreSQL from the CloudNativePG cluster, OTLP export, more than one
replica) and the Grafana dashboard (valid JSON using every pdm metric). The rights
service's SMTP relay (components/smtp-relay, prod): its Secret pdm-smtp mounted by rights
only, whole and read-only where rights.smtp_password_file points, the relay from that
Secret, TLS required (rights.smtp_tls starttls or implicit), and the one egress by address
of the mesh: from rights, to the submission port of that TLS mode (587 or 465) only, never
to the private, loopback or link-local ranges. Every problem is reported; exit status 1 if
any.
"""

import argparse
import ipaddress
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
    "incidents": 50057,
}
# The calls the design makes (caller -> callees); nothing else may be allowed. Each
# service also calls the next of the default audit.witness_ring (every service by name:
# consent -> identity -> incidents -> retention -> rights -> telemetry -> transfers -> consent)
# to have
# its access trail head witnessed.
CALLS = {
    # consent: a ticket declaring special categories needs the subject's explicit consent.
    "identity": {"rights", "incidents", "consent"},
    "consent": {"identity"},
    "telemetry": {"identity", "consent", "transfers"},
    "transfers": {"identity", "consent"},
    "retention": {"identity", "consent", "telemetry", "transfers", "rights"},
    "rights": {"identity", "consent", "telemetry", "transfers", "retention"},
    # incidents: the privacy team's register; asks transfers for the TIAs due for review,
    # the data services who a breach affected (ListSubjectsHeld), rights to tell them
    # (SendNotice), and the next of the witness ring.
    "incidents": {"identity", "consent", "telemetry", "transfers", "rights", "retention"},
    # web: the privacy centre (an HTTP front, FRONTS): sign-in and accounts, choices, the
    # person's own requests; the privacy team's console (registers, dry runs, every
    # service's access trail verified).
    "web": {"identity", "consent", "rights", "telemetry", "retention", "transfers", "incidents"},
}
# HTTP fronts: no gRPC or health port of their own; plain HTTP (TLS ends at the ingress
# controller) with GET /healthz for the probes, reached only from the ingress controller's
# namespace; a client certificate (svc/<front>, client auth, no DNS names).
FRONTS = {"web": 8080}
FRONT_PROBE_PATH = "/healthz"
INGRESS_NAMESPACE = {"pdm.io/web-ingress": "true"}
# Every Deployment of the mesh: the services, then the fronts.
UNITS = list(PORTS) + list(FRONTS)
# Plaintext grpc.health.v1 ports, for the kubelet's probes: the defaults of
# services.<service>.health_port (shared/runtime/src/defaults.toml).
HEALTH_PORTS = {
    "identity": 51051,
    "consent": 51052,
    "telemetry": 51053,
    "retention": 51054,
    "transfers": 51055,
    "rights": 51056,
    "incidents": 51057,
}
AUTOSCALED = {"consent", "telemetry"}

# Mutual TLS: tls.dir in the pods, tls.trust_domain, and what cert-manager must issue.
CERT_DIR = "/etc/pdm/certs"
TRUST_DOMAIN = "pdm.local"
CERT_MANAGER = "cert-manager.io/v1"
CA_ISSUER = "pdm-ca"  # Issuer of kind CA; its Secret holds the CA key
CA_SECRET = "pdm-ca"
ADMIN_SECRET = "admin-tls"
SERVICE_USAGES = {"server auth", "client auth", "digital signature", "key encipherment"}
# Leaf certificates: at most this long-lived, renewed at least this long before expiry.
MAX_CERT_DURATION_H = 2160
MIN_RENEW_BEFORE_H = 24
# Fields of the cert-manager v1 API (custom resources get no schema validation, so a
# misspelt field would otherwise pass unnoticed and be dropped by the API server).
CERTIFICATE_FIELDS = {
    "subject", "literalSubject", "commonName", "duration", "renewBefore",
    "renewBeforePercentage", "dnsNames", "ipAddresses", "uris", "otherNames",
    "emailAddresses", "secretName", "secretTemplate", "keystores", "issuerRef", "isCA",
    "usages", "privateKey", "signatureAlgorithm", "encodeUsagesInRequest",
    "revisionHistoryLimit", "additionalOutputFormats", "nameConstraints",
}
PRIVATE_KEY_FIELDS = {"rotationPolicy", "encoding", "algorithm", "size"}
ISSUER_REF_FIELDS = {"name", "kind", "group"}
ISSUER_TYPES = {"acme", "ca", "vault", "selfSigned", "venafi"}
KEY_USAGES = {
    "signing", "digital signature", "content commitment", "key encipherment",
    "key agreement", "data encipherment", "cert sign", "crl sign", "encipher only",
    "decipher only", "any", "server auth", "client auth", "code signing",
    "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user",
    "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
}
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
# The key store (components/key-store, prod): a CloudNativePG cluster of its own, reached
# only by the services that keep subjects' data keys and by the nightly backup job.
KEY_STORE_PODS = {"cnpg.io/cluster": "pdm-keys"}
KEY_STORE_SERVICES = {"identity", "telemetry", "rights"}
KEY_STORE_SECRET = "pdm-keys-app"
KEY_BACKUP_JOB = "pdm-keys-backup"
# The rights service's SMTP relay (components/smtp-relay): outside the cluster, reached by
# address (NetworkPolicies cannot name hosts) on the submission port of its TLS mode, with
# the Secret the operator makes (relay, username, password).
SMTP_SERVICE = "rights"
SMTP_SECRET = "pdm-smtp"
SMTP_PORTS = {"starttls": ("TCP", 587), "implicit": ("TCP", 465)}
# Ranges an SMTP egress rule must leave out: pods, nodes, the cloud's metadata endpoint.
NOT_THE_RELAY = [ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8",
    "169.254.0.0/16", "fc00::/7", "fe80::/10", "::1/128",
)]

# Per overlay: Secrets the cluster provides (not rendered), and what must hold.
OVERLAYS = {
    "dev": {"external_secrets": set(), "replicas": "one", "smtp": False, "key_store": False},
    "prod": {"external_secrets": {"pdm-kek", "pdm-postgres-app", SMTP_SECRET, KEY_STORE_SECRET},
             "replicas": "several", "smtp": True, "key_store": True},
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
    "pdm_incidents_overdue",
    "pdm_assessments_review_overdue",
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


def spiffe(path):
    return f"spiffe://{TRUST_DOMAIN}/{path}"


def service_dns_names(service):
    return {service, f"{service}.{NAMESPACE}", f"{service}.{NAMESPACE}.svc",
            f"{service}.{NAMESPACE}.svc.cluster.local"}


def hours(duration):
    """A Go duration (`2160h`, `1h30m`) in hours; None if it does not parse."""
    text = str(duration)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 1, "m": 1 / 60, "s": 1 / 3600, "ms": 1 / 3600e3}
    return sum(float(n) * scale[u] for n, u in parts)


def secret_volumes(pod):
    """(volume name, Secret name) of every Secret a pod mounts, projected ones included."""
    found = []
    for v in pod.get("volumes") or []:
        if "secret" in v:
            found.append((v["name"], (v["secret"] or {}).get("secretName")))
        for source in ((v.get("projected") or {}).get("sources") or []):
            if "secret" in source:
                found.append((v["name"], (source["secret"] or {}).get("name")))
    return found


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
    r.check(c.get("args") == ["serve", service] and not c.get("command"), where,
            f"must run the image's entrypoint with args [serve, {service}], got {c.get('args')}")
    named = {p.get("name"): p.get("containerPort") for p in c.get("ports") or []}
    r.check(named.get("metrics") == METRICS_PORT, where, f"container port `metrics` is not {METRICS_PORT}")
    if service in FRONTS:
        http = FRONTS[service]
        r.check(named.get("http") == http, where, f"container port `http` is not {http}")
        r.check(set(named) == {"http", "metrics"}, where, f"a front opens `http` and `metrics` only, got {sorted(named)}")
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe == "startupProbe" and not c.get(probe):
                continue
            get = (c.get(probe) or {}).get("httpGet") or {}
            r.check(get.get("path") == FRONT_PROBE_PATH and get.get("port") in ("http", http)
                    and get.get("scheme", "HTTP") == "HTTP", where,
                    f"{probe} is not an HTTP GET of {FRONT_PROBE_PATH} on port {http}")
    else:
        port = PORTS[service]
        r.check(named.get("grpc") == port, where, f"container port `grpc` is not {port}")
        health = HEALTH_PORTS[service]
        r.check(named.get("health") == health, where, f"container port `health` is not {health}")

        # Probes: native gRPC (grpc.health.v1) on the plaintext health port; the gRPC port
        # wants a client certificate the kubelet does not have.
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe == "startupProbe" and not c.get(probe):
                continue
            grpc = (c.get(probe) or {}).get("grpc") or {}
            r.check(grpc.get("port") == health, where,
                    f"{probe} is not a gRPC probe on the health port {health}"
                    + (" (the gRPC port is mutual TLS)" if grpc.get("port") == port else ""))

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
    check_cert_mount(r, where, service, pod, c)

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


def check_cert_mount(r, where, service, pod, c):
    """Its own certificate Secret, whole and read-only at tls.dir; no other Secret."""
    secret = f"{service}-tls"
    for volume, name in secret_volumes(pod):
        if service == SMTP_SERVICE and name == SMTP_SECRET:
            continue  # the relay's password (check_smtp)
        r.check(name == secret, where, f"volume {volume} mounts Secret {name}: the only Secret "
                f"a pod mounts is its own {secret} (a peer's, admin's or the CA's is a stolen identity)")
    mounts = [m for m in c.get("volumeMounts") or [] if m.get("mountPath", "").rstrip("/") == CERT_DIR]
    if not r.check(len(mounts) == 1, where, f"no volume mounted at {CERT_DIR} (tls.dir)"):
        return
    m = mounts[0]
    r.check(m.get("readOnly") is True, where, f"{CERT_DIR} must be mounted readOnly")
    r.check(not m.get("subPath") and not m.get("subPathExpr"), where,
            f"{CERT_DIR} must not use subPath: subPath mounts never see a renewed certificate")
    vol = next((v for v in pod.get("volumes") or [] if v["name"] == m["name"]), {})
    src = vol.get("secret")
    if not r.check(src is not None and src.get("secretName") == secret, where,
                   f"{CERT_DIR} must be the Secret {secret} (from its Certificate)"):
        return
    r.check(not src.get("optional"), where, f"Secret {secret} must not be optional (no TLS, no start)")
    items = {i.get("key"): i.get("path") for i in src.get("items") or []}
    want = {"ca.crt": "ca.pem", "tls.crt": f"{service}.pem", "tls.key": f"{service}.key"}
    r.check(items == want, where, f"Secret {secret} must be mapped {want} (tls.dir file names), got {items}")
    modes = [src.get("defaultMode", 0o644)] + [i["mode"] for i in src.get("items") or [] if "mode" in i]
    for mode in modes:
        r.check(mode & 0o007 == 0 and mode & 0o222 == 0, where,
                f"certificate files mode {mode:#o}: no write bits, nothing for others (the key is in there)")
        r.check(mode & 0o040, where,
                f"certificate files mode {mode:#o} is not group-readable: uid {UID} reads them through fsGroup")
    r.check((pod.get("securityContext") or {}).get("fsGroup") == UID, where,
            f"fsGroup must be {UID} so the non-root user can read its key")


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
    r.check(env.get("PDM__TLS__DIR") == CERT_DIR, where, f"PDM__TLS__DIR must be {CERT_DIR} (the certs mount)")
    r.check(env.get("PDM__TLS__ENABLED", "true").lower() == "true", where,
            "PDM__TLS__ENABLED must stay true: these manifests have no mesh sidecar doing mTLS")
    r.check(env.get("PDM__TLS__TRUST_DOMAIN", TRUST_DOMAIN) == TRUST_DOMAIN, where,
            f"PDM__TLS__TRUST_DOMAIN must be {TRUST_DOMAIN}, the domain of the Certificates' URIs")
    if service in FRONTS:
        value = env.get(f"PDM__{service.upper()}__PORT")
        r.check(value is None or str(value) == str(FRONTS[service]), where,
                f"PDM__{service.upper()}__PORT={value} differs from the port the manifests use "
                f"({FRONTS[service]})")
    for name, ports in (("HEALTH_PORT", HEALTH_PORTS), ("PORT", PORTS)) if service in PORTS else ():
        value = env.get(f"PDM__SERVICES__{service.upper()}__{name}")
        r.check(value is None or str(value) == str(ports[service]), where,
                f"PDM__SERVICES__{service.upper()}__{name}={value} differs from the port the "
                f"manifests use ({ports[service]})")
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
    metrics = ports.get("metrics")
    if service in FRONTS:
        http = ports.get("http")
        r.check(http is not None and http.get("port") == FRONTS[service]
                and http.get("targetPort") in ("http", FRONTS[service]) and set(ports) == {"http", "metrics"},
                where, f"ports must be `http` {FRONTS[service]} and `metrics`")
    else:
        grpc = ports.get("grpc")
        r.check(grpc is not None and grpc.get("port") == PORTS[service]
                and grpc.get("targetPort") in ("grpc", PORTS[service]),
                where, f"port `grpc` must be {PORTS[service]}")
    r.check(metrics is not None and metrics.get("port") == METRICS_PORT
            and metrics.get("targetPort") in ("metrics", METRICS_PORT),
            where, f"port `metrics` must be {METRICS_PORT}")
    r.check(not any(p.get("name") == "health" or HEALTH_PORTS.get(service) in (p.get("port"), p.get("targetPort"))
                    for p in ports.values()),
            where, "exposes the plaintext health port (it is for the kubelet's probes only)")
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
    by_address = defaultdict(set)  # caller -> ports it may reach by address (the SMTP relay)
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
                r.check(("TCP", HEALTH_PORTS.get(service)) not in ports, f"{where} {name}",
                        f"opens {service}'s plaintext health port {HEALTH_PORTS.get(service)} (probes come from the node)")
                for peer in peers or []:
                    check_ingress_peer(r, f"{where} {name}", service, peer, ports, app_pods, ingress_from)
            for rule in (spec.get("egress") or []) if "Egress" in types else []:
                peers = rule.get("to")
                ports = ports_of(rule)
                r.check(peers, f"{where} {name}", f"egress from {service} to anywhere")
                r.check(ports, f"{where} {name}", f"egress from {service} on every port")
                for peer in peers or []:
                    check_egress_peer(r, f"{where} {name}", service, peer, ports, app_pods, egress_to,
                                      by_address)

    for service in UNITS:
        r.check(own_policy[service], where, f"no NetworkPolicy selects {service} by name")
        callers = {c for c, callees in CALLS.items() if service in callees}
        r.check(ingress_from[service] == callers, f"{where} ingress to {service}",
                f"allows {sorted(ingress_from[service])}, the design calls from {sorted(callers)}")
        r.check(egress_to[service] == CALLS[service], f"{where} egress from {service}",
                f"allows {sorted(egress_to[service])}, the design calls {sorted(CALLS[service])}")
    return by_address


def check_ingress_peer(r, where, service, peer, ports, app_pods, ingress_from):
    grpc = {("TCP", PORTS[service])} if service in PORTS else set()
    if "ipBlock" in peer:
        r.check(False, where, f"ipBlock ingress to {service}")
        return
    ns = peer.get("namespaceSelector")
    if ns is not None:
        labels = (ns or {}).get("matchLabels") or {}
        if service in FRONTS and labels == INGRESS_NAMESPACE:
            r.check(ports == {("TCP", FRONTS[service])} and not peer.get("podSelector"), where,
                    f"the ingress controller may reach {service} only on {FRONTS[service]}")
        elif service in FRONTS and labels != MONITORING_NAMESPACE:
            r.check(False, where, f"ingress to the front {service} from namespaces {labels or 'ALL'}: "
                    f"only the ingress controller's ({INGRESS_NAMESPACE}) and monitoring")
        elif labels == CLIENT_NAMESPACE:
            r.check(ports == grpc, where, f"client namespaces may reach {service} only on its gRPC port")
        elif labels == MONITORING_NAMESPACE:
            r.check(ports == {("TCP", METRICS_PORT)}, where, f"monitoring may reach {service} only on {METRICS_PORT}")
        else:
            r.check(False, where, f"ingress to {service} from unexpected namespaces {labels or 'ALL'}")
        return
    callers = [s for s, labels in app_pods.items() if selects(peer.get("podSelector"), labels)]
    r.check(callers, where, f"ingress to {service} from pods that are not pdm services")
    r.check(service in PORTS, where, f"pods of the mesh call the front {service}: nothing does")
    r.check(ports == grpc, where, f"peers may reach {service} only on its gRPC port, got {sorted(ports)}")
    if ports == grpc:
        ingress_from[service].update(callers)


def check_egress_peer(r, where, service, peer, ports, app_pods, egress_to, by_address):
    if "ipBlock" in peer:
        check_smtp_block(r, where, service, peer["ipBlock"] or {}, ports)
        by_address[service] |= ports
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
    if (selector.get("matchLabels") or {}) == KEY_STORE_PODS:
        r.check(service in KEY_STORE_SERVICES, where,
                f"{service} reaches the key store, which only {sorted(KEY_STORE_SERVICES)} use")
        r.check(ports == {("TCP", POSTGRES_PORT)}, where, f"key store egress from {service} must be {POSTGRES_PORT} only")
        return
    callees = [s for s, labels in app_pods.items() if selects(selector, labels)]
    r.check(callees, where, f"egress from {service} to pods that are neither pdm services nor PostgreSQL")
    for callee in callees:
        if not r.check(callee in PORTS, where, f"egress from {service} to the front {callee}: nothing calls it"):
            continue
        if r.check(("TCP", PORTS[callee]) in ports, where, f"egress from {service} to {callee} not on its gRPC port"):
            egress_to[service].add(callee)
    r.check(ports <= {("TCP", PORTS[c]) for c in callees if c in PORTS}, where, f"egress from {service} on extra ports {sorted(ports)}")


def check_smtp_block(r, where, service, block, ports):
    """The one egress by address: rights to its SMTP relay, submission ports only."""
    if not r.check(service == SMTP_SERVICE, where,
                   f"ipBlock egress from {service} (only {SMTP_SERVICE} may reach its SMTP relay by address)"):
        return
    r.check(ports and ports <= set(SMTP_PORTS.values()), where,
            f"egress by address from {service} on {sorted(ports)}: only the SMTP submission ports "
            f"{sorted(p for _, p in SMTP_PORTS.values())}")
    try:
        cidr = ipaddress.ip_network(block.get("cidr", ""))
        excepted = [ipaddress.ip_network(e) for e in block.get("except") or []]
    except ValueError as err:
        r.check(False, where, f"ipBlock {block}: {err}")
        return
    for private in NOT_THE_RELAY:
        if private.version != cidr.version or not cidr.overlaps(private):
            continue
        r.check(any(e.version == private.version and e.supernet_of(private) for e in excepted), where,
                f"SMTP egress from {service} to {cidr} reaches {private} (pods, nodes or metadata): except it")


def check_smtp(r, objs, overlay, config_env, by_address):
    """The rights service's relay: from Secret pdm-smtp, TLS required, its port open."""
    where = f"{overlay}: {SMTP_SERVICE} SMTP relay"
    dep = objs["Deployment"].get(SMTP_SERVICE)
    if dep is None:
        return
    pod = dep["spec"]["template"]["spec"]
    c = (pod.get("containers") or [{}])[0]
    env = {e["name"]: e for e in c.get("env") or []}
    config = config_env.get(SMTP_SERVICE, {})
    relay_ref = ((env.get("PDM__RIGHTS__SMTP_RELAY") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    if not OVERLAYS[overlay]["smtp"]:
        r.check(not relay_ref and "PDM__RIGHTS__SMTP_RELAY" not in config and not by_address[SMTP_SERVICE],
                where, "configured in an overlay that promises none")
        return
    r.check(relay_ref.get("name") == SMTP_SECRET and relay_ref.get("key") == "relay", where,
            f"PDM__RIGHTS__SMTP_RELAY must come from Secret {SMTP_SECRET}, key relay "
            "(without a relay, confirmations go to a file nobody reads)")
    mode = config.get("PDM__RIGHTS__SMTP_TLS", "starttls")
    if r.check(mode in SMTP_PORTS, where, f"PDM__RIGHTS__SMTP_TLS={mode!r}: TLS is required "
               f"({' or '.join(SMTP_PORTS)})"):
        r.check(SMTP_PORTS[mode] in by_address[SMTP_SERVICE], where,
                f"no NetworkPolicy lets {SMTP_SERVICE} reach the relay on {SMTP_PORTS[mode][1]} ({mode})")
    user_ref = ((env.get("PDM__RIGHTS__SMTP_USERNAME") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    r.check(user_ref.get("name") == SMTP_SECRET, where,
            f"PDM__RIGHTS__SMTP_USERNAME must come from Secret {SMTP_SECRET}")
    password_file = config.get("PDM__RIGHTS__SMTP_PASSWORD_FILE", "")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    mounts = [m for m in c.get("volumeMounts") or []
              if ((volumes.get(m["name"]) or {}).get("secret") or {}).get("secretName") == SMTP_SECRET]
    if not r.check(len(mounts) == 1, where, f"Secret {SMTP_SECRET} must be mounted once (the password file)"):
        return
    m = mounts[0]
    src = volumes[m["name"]]["secret"]
    r.check(m.get("readOnly") is True and not m.get("subPath") and not m.get("subPathExpr"), where,
            f"Secret {SMTP_SECRET} must be mounted readOnly, without subPath (a rotated password must reach the pod)")
    files = {f"{m['mountPath'].rstrip('/')}/{i.get('path')}": i.get("key") for i in src.get("items") or []}
    r.check(files.get(password_file) == "password", where,
            f"PDM__RIGHTS__SMTP_PASSWORD_FILE={password_file!r} must be the key `password` of the "
            f"mounted Secret {SMTP_SECRET} (mounted: {sorted(files)})")
    mode_bits = src.get("defaultMode", 0o644)
    r.check(mode_bits & 0o007 == 0 and mode_bits & 0o222 == 0, where,
            f"password file mode {mode_bits:#o}: no write bits, nothing for others")
    r.check(not any(name == SMTP_SECRET for other, dep2 in objs["Deployment"].items() if other != SMTP_SERVICE
                    for _, name in secret_volumes(dep2["spec"]["template"]["spec"])),
            where, f"only {SMTP_SERVICE} may mount {SMTP_SECRET}")


def mounted_cert_secret(dep):
    """The Secret a Deployment mounts at tls.dir, if any."""
    pod = dep["spec"]["template"]["spec"]
    c = (pod.get("containers") or [{}])[0]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for m in c.get("volumeMounts") or []:
        if m.get("mountPath", "").rstrip("/") == CERT_DIR:
            return ((volumes.get(m["name"]) or {}).get("secret") or {}).get("secretName")
    return None


def check_cert_fields(r, where, cert):
    """What a schema would catch, for cert-manager's Certificate (no schema here)."""
    spec = cert.get("spec") or {}
    r.check(cert.get("apiVersion") == CERT_MANAGER, where, f"apiVersion must be {CERT_MANAGER}")
    unknown = set(spec) - CERTIFICATE_FIELDS
    r.check(not unknown, where, f"unknown Certificate fields {sorted(unknown)}")
    unknown = set(spec.get("privateKey") or {}) - PRIVATE_KEY_FIELDS
    r.check(not unknown, where, f"unknown privateKey fields {sorted(unknown)}")
    unknown = set(spec.get("issuerRef") or {}) - ISSUER_REF_FIELDS
    r.check(not unknown, where, f"unknown issuerRef fields {sorted(unknown)}")
    unknown = set(spec.get("usages") or []) - KEY_USAGES
    r.check(not unknown, where, f"unknown usages {sorted(unknown)}")
    r.check(spec.get("secretName"), where, "no secretName")
    for key in ("duration", "renewBefore"):
        if key in spec:
            r.check(hours(spec[key]) is not None, where, f"{key} {spec[key]!r} is not a Go duration")


def issuer_of(r, where, objs, cert):
    """The rendered Issuer a Certificate names, or None (reported)."""
    ref = (cert.get("spec") or {}).get("issuerRef") or {}
    ok = (ref.get("kind", "Issuer") == "Issuer" and ref.get("group", "cert-manager.io") == "cert-manager.io"
          and ref.get("name") in objs["Issuer"])
    r.check(ok, where, f"issuerRef {ref} is not an Issuer rendered in namespace {NAMESPACE}")
    return objs["Issuer"].get(ref.get("name")) if ok else None


def check_certificates(r, objs, overlay):
    certs = objs["Certificate"]
    issuers = objs["Issuer"]
    where = f"{overlay}: cert-manager"
    for name, issuer in issuers.items():
        spec = issuer.get("spec") or {}
        r.check(issuer.get("apiVersion") == CERT_MANAGER and len(set(spec) & ISSUER_TYPES) == 1
                and not set(spec) - ISSUER_TYPES,
                f"{where}: Issuer {name}", f"must be {CERT_MANAGER} with exactly one of {sorted(ISSUER_TYPES)}")
    for name, cert in certs.items():
        check_cert_fields(r, f"{where}: Certificate {name}", cert)
    by_secret = defaultdict(list)
    by_uri = defaultdict(list)
    for name, cert in certs.items():
        by_secret[(cert.get("spec") or {}).get("secretName")].append(name)
        for uri in (cert.get("spec") or {}).get("uris") or []:
            by_uri[uri].append(name)
    for secret, names in by_secret.items():
        r.check(len(names) == 1, where, f"Certificates {sorted(names)} all write Secret {secret}")
    for uri, names in by_uri.items():
        r.check(len(names) == 1, where, f"Certificates {sorted(names)} all claim {uri}")

    # The CA: Issuer pdm-ca signs with the Secret pdm-ca, which a CA Certificate fills.
    ca_issuer = issuers.get(CA_ISSUER)
    if r.check(ca_issuer is not None, where, f"no Issuer {CA_ISSUER}"):
        r.check(((ca_issuer.get("spec") or {}).get("ca") or {}).get("secretName") == CA_SECRET,
                f"{where}: Issuer {CA_ISSUER}", f"must be of kind CA with spec.ca.secretName {CA_SECRET}")
    ca_certs = [c for c in certs.values() if (c.get("spec") or {}).get("secretName") == CA_SECRET]
    ca = ca_certs[0] if ca_certs else None
    r.check(len(ca_certs) <= 1, where, f"several Certificates write the CA Secret {CA_SECRET}")
    r.check(ca is not None or CA_SECRET in OVERLAYS[overlay]["external_secrets"], where,
            f"nothing fills the Secret {CA_SECRET}: a CA Certificate, or a Secret the cluster provides")
    leaf_max = 0.0
    for name, cert in certs.items():
        spec = cert.get("spec") or {}
        cw = f"{where}: Certificate {name}"
        if cert is ca:
            continue
        r.check(not spec.get("isCA"), cw, f"only {CA_SECRET} may be a CA")
        issuer = issuer_of(r, cw, objs, cert)
        r.check(issuer is None or (issuer.get("spec") or {}).get("ca", {}).get("secretName") == CA_SECRET, cw,
                f"must be issued by the CA Issuer {CA_ISSUER} (the CA every pod trusts)")
        r.check(spec.get("duration") and hours(spec.get("duration") or "") is not None
                and hours(spec["duration"]) <= MAX_CERT_DURATION_H, cw,
                f"duration must be set and at most {MAX_CERT_DURATION_H}h")
        r.check(spec.get("renewBefore") and hours(spec.get("renewBefore") or "") is not None
                and MIN_RENEW_BEFORE_H <= hours(spec["renewBefore"]) < (hours(spec.get("duration") or "") or 0), cw,
                f"renewBefore must be set, at least {MIN_RENEW_BEFORE_H}h and below the duration")
        key = spec.get("privateKey") or {}
        r.check(key.get("algorithm") == "ECDSA" and key.get("size") in (256, 384), cw,
                "privateKey must be ECDSA P-256 (or P-384)")
        r.check(key.get("rotationPolicy") == "Always", cw,
                "privateKey.rotationPolicy must be Always (a new key at each renewal)")
        leaf_max = max(leaf_max, hours(spec.get("duration") or "") or 0)
    if ca is not None:
        spec = ca.get("spec") or {}
        cw = f"{where}: Certificate {ca['metadata']['name']}"
        r.check(spec.get("isCA") is True, cw, "the CA Certificate needs isCA: true")
        issuer = issuer_of(r, cw, objs, ca)
        r.check(issuer is None or "selfSigned" in (issuer.get("spec") or {}), cw,
                "the CA must come from a selfSigned Issuer (the bootstrap)")
        key = spec.get("privateKey") or {}
        r.check(key.get("algorithm") == "ECDSA", cw, "the CA key must be ECDSA")
        r.check(key.get("rotationPolicy") == "Never", cw,
                "the CA key must not rotate on renewal (every pod would distrust its peers until all "
                "certificates were reissued); rotate it as a planned change")
        renew = hours(spec.get("renewBefore") or "")
        r.check(renew is not None and renew > leaf_max, cw,
                f"renewBefore must exceed the longest certificate duration ({leaf_max:g}h), so every "
                "Secret's ca.crt moves to the renewed CA before the old one expires")
        for other in certs.values():
            if other is not ca:
                ref = (other.get("spec") or {}).get("issuerRef") or {}
                iss = issuers.get(ref.get("name"), {})
                r.check("selfSigned" not in (iss.get("spec") or {}),
                        f"{where}: Certificate {other['metadata']['name']}",
                        "issued by the selfSigned bootstrap Issuer, not by the CA")

    # Services: the Certificate filling the Secret each Deployment mounts is that service's.
    mounted = {}
    for service in UNITS:
        dep = objs["Deployment"].get(service)
        secret = mounted_cert_secret(dep) if dep else None
        mounted[service] = secret
        sw = f"{where}: {service}"
        if not r.check(secret, sw, f"its Deployment mounts no certificate Secret at {CERT_DIR}"):
            continue
        names = by_secret.get(secret) or []
        if not r.check(len(names) == 1, sw, f"no Certificate has secretName {secret} (the Secret it mounts)"):
            continue
        spec = certs[names[0]].get("spec") or {}
        cw = f"{where}: Certificate {names[0]}"
        r.check(spec.get("uris") == [spiffe(f"svc/{service}")], cw,
                f"uris must be exactly [{spiffe(f'svc/{service}')}] (the caller identity of {service})")
        r.check(spec.get("commonName") in (None, service), cw, f"commonName must be {service}")
        r.check(not spec.get("ipAddresses") and not spec.get("emailAddresses"), cw,
                "no IP or email SANs")
        if service in FRONTS:
            usages = set(spec.get("usages") or [])
            r.check("client auth" in usages and "server auth" not in usages and not spec.get("dnsNames"), cw,
                    f"{service} is only a client of the mesh: client auth, not server auth, no DNS names")
            continue
        r.check(set(spec.get("dnsNames") or []) == service_dns_names(service), cw,
                f"dnsNames must be exactly {sorted(service_dns_names(service))} (peers dial the Service)")
        missing = SERVICE_USAGES - set(spec.get("usages") or [])
        r.check(not missing, cw, f"usages lack {sorted(missing)} (services are servers and clients)")

    # The privacy team's admin client certificate: client auth only, mounted by no service.
    admin = by_uri.get(spiffe("admin")) or []
    if r.check(len(admin) == 1, where, f"no Certificate for {spiffe('admin')}"):
        spec = certs[admin[0]].get("spec") or {}
        cw = f"{where}: Certificate {admin[0]}"
        r.check(spec.get("secretName") == ADMIN_SECRET, cw, f"secretName must be {ADMIN_SECRET}")
        r.check(spec.get("uris") == [spiffe("admin")], cw, f"uris must be exactly [{spiffe('admin')}]")
        usages = set(spec.get("usages") or [])
        r.check("client auth" in usages and "server auth" not in usages, cw,
                "admin is a client: usages must include client auth and not server auth")
        r.check(not spec.get("dnsNames") and not spec.get("ipAddresses"), cw, "a client certificate names no host")
    for name, cert in certs.items():
        spec = cert.get("spec") or {}
        if cert is not ca and name not in admin:
            uris = spec.get("uris") or []
            r.check(len(uris) == 1 and re.fullmatch(rf"spiffe://{re.escape(TRUST_DOMAIN)}/(svc|client)/[a-z0-9-]+",
                                                    uris[0]), f"{where}: Certificate {name}",
                    f"needs exactly one SPIFFE URI in {TRUST_DOMAIN} (svc/<service> or client/<name>), got {uris}")
    print(f"  {overlay}: {len(certs)} Certificates, {len(issuers)} Issuers checked")


def check_key_store(r, objs, overlay):
    """Subjects' keys apart from the data: pdm-keys, its readers, its bounded backups."""
    where = f"{overlay}: key store"
    wanted = OVERLAYS[overlay]["key_store"]
    cluster = objs.get("Cluster", {}).get("pdm-keys")
    if not wanted:
        r.check(cluster is None, where, "the key store cluster belongs to prod only")
        return
    if r.check(cluster is not None, where, "no CloudNativePG Cluster pdm-keys"):
        r.check(cluster["spec"].get("instances", 1) >= 2, where, "pdm-keys needs a standby")
    for service in UNITS:
        dep = objs["Deployment"].get(service)
        if not dep:
            continue
        env = {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0].get("env") or []}
        ref = ((env.get("PDM__CRYPTO__KEY_STORE_URL") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if service in KEY_STORE_SERVICES:
            r.check(ref.get("name") == KEY_STORE_SECRET and ref.get("key") == "uri", f"{where}: {service}",
                    f"PDM__CRYPTO__KEY_STORE_URL must come from {KEY_STORE_SECRET}/uri")
        else:
            r.check("PDM__CRYPTO__KEY_STORE_URL" not in env, f"{where}: {service}", "keeps no keys: no key store URL")
    job = objs.get("CronJob", {}).get(KEY_BACKUP_JOB)
    if not r.check(job is not None, where, f"no CronJob {KEY_BACKUP_JOB} (the purge of key store backups)"):
        return
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    r.check(c.get("args") == ["keys", "backup"], where, f"{KEY_BACKUP_JOB} must run `pdm keys backup`")
    env = {e["name"]: e for e in c.get("env") or []}
    backup_dir = (env.get("PDM__CRYPTO__KEY_BACKUP_DIR") or {}).get("value")
    claims = {v["name"] for v in pod.get("volumes") or [] if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts") or []}
    r.check(backup_dir is not None and mounts.get(backup_dir) in claims, where,
            "crypto.key_backup_dir must be a mounted PersistentVolumeClaim (backups outlive the pod)")
    sc = c.get("securityContext") or {}
    r.check(sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False,
            where, f"{KEY_BACKUP_JOB} must run read-only without privilege escalation")
    days = objs["ConfigMap"].get("pdm-shared", {}).get("data", {}).get("PDM__CRYPTO__KEY_BACKUP_DAYS")
    for cm in objs["ConfigMap"].values():
        if cm["metadata"]["name"].startswith("pdm-shared"):
            days = (cm.get("data") or {}).get("PDM__CRYPTO__KEY_BACKUP_DAYS", days)
    r.check(days is not None and 1 <= int(days) <= 90, where,
            "PDM__CRYPTO__KEY_BACKUP_DAYS (how long a key backup can resurrect data) must be set, 1-90")


def check_overlay(r, overlay, objects):
    objs = index(objects)
    r.check(NAMESPACE in objs["Namespace"], overlay, f"Namespace {NAMESPACE} is not rendered")
    for obj in objects:
        if obj["kind"] != "Namespace":
            r.check(obj["metadata"].get("namespace") == NAMESPACE, overlay,
                    f"{obj['kind']} {obj['metadata']['name']} is not in namespace {NAMESPACE}")
    config_env, pod_labels, images = {}, {}, set()
    for service in UNITS:
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
    check_certificates(r, objs, overlay)
    check_key_store(r, objs, overlay)
    if len(pod_labels) == len(UNITS):
        try:
            by_address = check_network(r, objs, overlay, pod_labels)
            check_smtp(r, objs, overlay, config_env, by_address)
        except ValueError as err:
            r.check(False, overlay, str(err))

    if overlay == "prod":
        cluster = objs.get("Cluster", {}).get("pdm-postgres")
        if r.check(cluster is not None and cluster["apiVersion"].startswith("postgresql.cnpg.io/"),
                   overlay, "no CloudNativePG Cluster pdm-postgres"):
            r.check(cluster["spec"].get("instances", 1) >= 2, overlay, "pdm-postgres needs a standby")
        for service in UNITS:
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
    print("  invariants hold: probes (health ports), resources, security contexts, secrets, "
          "certificates (mTLS mounts, SPIFFE ids, DNS names), services, PDBs, HPAs, "
          "network policies (call graph exact), SMTP relay (TLS, Secret, submission port only), key store (own cluster, readers, bounded backups), dashboard")


if __name__ == "__main__":
    main()
