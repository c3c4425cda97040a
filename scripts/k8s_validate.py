#!/usr/bin/env python3
"""Validates rendered Kubernetes manifests offline against the Kubernetes JSON schemas
(kubernetes-validate, strict: unknown fields are errors).

    k8s_validate.py --kubernetes-version 1.32.0 rendered/dev.yaml rendered/prod.yaml

Custom resources have no schema in that package. Only the kinds in CUSTOM_RESOURCES are
skipped, each one printed; any other object without a schema is an error, so a typo in an
apiVersion cannot slip through as "unknown". Exit status 1 on any problem.
"""

import argparse
import sys

import kubernetes_validate
import yaml

# (apiVersion, kind) of the custom resources the overlays use, and who defines them.
# cert-manager's kinds come from the base (k8s/base/certificates.yaml: the mesh's CA and
# mutual-TLS certificates); scripts/k8s_invariants.py checks their fields instead.
CUSTOM_RESOURCES = {
    ("postgresql.cnpg.io/v1", "Cluster"): "CloudNativePG operator",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "Prometheus Operator",
    ("cert-manager.io/v1", "Issuer"): "cert-manager operator",
    ("cert-manager.io/v1", "Certificate"): "cert-manager operator",
}


def describe(obj):
    meta = obj.get("metadata") or {}
    name = meta.get("name", "?")
    namespace = meta.get("namespace")
    where = f"{namespace}/{name}" if namespace else name
    return f"{obj.get('kind', '?')} {where} ({obj.get('apiVersion', '?')})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubernetes-version", required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    wanted = ".".join(args.kubernetes_version.lstrip("v").split(".")[:2])

    failures = []
    checked = 0
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        if not docs:
            failures.append(f"{path}: no objects rendered")
        for obj in docs:
            if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
                failures.append(f"{path}: not a Kubernetes object: {str(obj)[:80]}")
                continue
            key = (obj["apiVersion"], obj["kind"])
            if key in CUSTOM_RESOURCES:
                print(f"  skipped (custom resource of the {CUSTOM_RESOURCES[key]}, no schema): "
                      f"{path}: {describe(obj)}")
                continue
            try:
                used = kubernetes_validate.validate(obj, args.kubernetes_version, strict=True)
            except kubernetes_validate.ValidationError as err:
                field = ".".join(str(p) for p in err.path) or "(root)"
                failures.append(f"{path}: {describe(obj)}: {field}: {err.message}")
                continue
            except kubernetes_validate.SchemaNotFoundError as err:
                failures.append(f"{path}: {describe(obj)}: {err.message} "
                                "(a custom resource must be listed in CUSTOM_RESOURCES)")
                continue
            except kubernetes_validate.VersionNotSupportedError:
                sys.exit(f"kubernetes-validate has no schemas for Kubernetes {args.kubernetes_version}")
            if used != wanted:
                failures.append(f"{path}: {describe(obj)}: validated against {used}, not {wanted}")
                continue
            checked += 1

    if failures:
        print(f"schema validation FAILED (Kubernetes {wanted}, strict):", file=sys.stderr)
        for failure in failures:
            print(f"  {failure}", file=sys.stderr)
        sys.exit(1)
    print(f"  {checked} objects valid against the Kubernetes {wanted} schemas (strict)")


if __name__ == "__main__":
    main()
