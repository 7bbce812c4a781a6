#!/usr/bin/env bash
# Renders deploy/base/release-readiness.yaml from the chart's defaults, so `kubectl apply -k deploy/` (and
# deploy/install.yaml) installs what `helm install` would: no key material (the operator creates and rotates the
# webhook certificate) and no checklist object (the operator applies the default checklist once its webhook
# answers). `make manifests` runs it; a test fails when the committed file drifts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
{
  echo "# Generated from charts/release-readiness by hack/render-kustomize.sh (make manifests). DO NOT EDIT."
  "$root/bin/helm" template release-readiness "$root/charts/release-readiness" --namespace release-readiness --include-crds \
    | grep -v '^# Source: '
} > "$root/deploy/base/release-readiness.yaml"
echo "wrote deploy/base/release-readiness.yaml"
