#!/usr/bin/env bash
# Installs Debian's Chromium (and a font for the screenshots) when it is missing: the dashboard's tests drive the
# pages in headless Chromium (tests/integration/test_dashboard.py). Installed once; later runs only check.
set -euo pipefail

if command -v chromium >/dev/null; then
  echo "[chromium] $(chromium --version 2>/dev/null | head -1)"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
  echo "[chromium] missing, and not root: install Debian's 'chromium' and 'fonts-dejavu-core' packages" >&2
  exit 1
fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "[chromium] installing Debian's chromium package"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "[chromium] $(chromium --version 2>/dev/null | head -1)"
