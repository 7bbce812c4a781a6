#!/usr/bin/env bash
# Renders deploy/base/release-readiness.yaml from the chart's defaults (with cert-manager issuing the webhook
# certificate: a static manifest must not carry a private key), so `kubectl apply -k deploy/` installs what
# `helm install` would. `make manifests` runs it; a test fails when the committed file drifts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
{
  echo "# Generated from charts/release-readiness by hack/render-kustomize.sh (make manifests). DO NOT EDIT."
  "$root/bin/helm" template release-readiness "$root/charts/release-readiness" --namespace release-readiness --include-crds \
    --set webhook.certManager.enabled=true --set installDefaultChecklist=false \
    | grep -v '^# Source: '
} > "$root/deploy/base/release-readiness.yaml"
echo "wrote deploy/base/release-readiness.yaml"
