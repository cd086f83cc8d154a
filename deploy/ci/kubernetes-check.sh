#!/usr/bin/env bash
# Validates deploy/kubernetes/*.yaml against the Kubernetes API schemas (kubernetes-validate from
# PyPI bundles them; no cluster needed), strictly: a misspelt field fails. That the ConfigMaps fit
# the apps' configs and the ports and probes match is tests/e2e/tests/deploy.rs.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v kubernetes-validate >/dev/null 2>&1 || python3 -m pip install -q 'kubernetes-validate==1.37.0' >&2
kubernetes-validate --strict --quiet deploy/kubernetes/{coordinator,stock,order}.yaml
echo "kubernetes-check.sh: deploy/kubernetes manifests are valid" >&2
