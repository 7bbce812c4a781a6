#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's packages when they are missing (metric-gate and alert-rule
# tests need a real server). The Debian service is not started: tests run their own Prometheus processes.
set -euo pipefail

if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  echo "[prometheus] $(prometheus --version 2>&1 | head -1)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
  echo "[prometheus] missing, and not root: install Debian's 'prometheus' package (it ships promtool)" >&2
  exit 1
fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "[prometheus] installing Debian's prometheus package"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
# policy-rc.d keeps the package's own service from starting (nothing should listen on :9090 behind our back).
policy=/usr/sbin/policy-rc.d
restore=""
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null && $SUDO chmod +x $policy && restore=1
fi
$SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
[[ -n $restore ]] && $SUDO rm -f $policy
echo "[prometheus] $(prometheus --version 2>&1 | head -1)"
