#!/usr/bin/env bash
# Installs what `make image` needs from Debian's packages when it is missing: buildah (builds the Dockerfile
# without a Docker engine, in chroot isolation), skopeo (copies the OCI archive to a registry), mmdebstrap (makes
# the Debian base root filesystem where no registry serves a Python base image) and uidmap (buildah's dependency).
# No container runtime (runc/crun) is installed: chroot isolation needs none.
set -euo pipefail

want=(buildah skopeo mmdebstrap)
missing=()
for tool in "${want[@]}"; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "[image-tools] $(buildah --version), $(skopeo --version), mmdebstrap $(mmdebstrap --version | awk '{print $2}')"
  exit 0
fi
if [[ $(id -u) -ne 0 ]] && ! command -v sudo >/dev/null; then
  echo "[image-tools] missing ${missing[*]}, and not root: install Debian's packages: ${want[*]} uidmap" >&2
  exit 1
fi
SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
echo "[image-tools] installing Debian's packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" uidmap >/dev/null
echo "[image-tools] $(buildah --version), $(skopeo --version), mmdebstrap $(mmdebstrap --version | awk '{print $2}')"
