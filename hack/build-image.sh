#!/usr/bin/env bash
# Builds the operator image from the Dockerfile without a Docker engine: buildah, chroot isolation (no container
# runtime, no network or user namespace), and writes it as an OCI archive, dist/release-readiness-<version>.oci.tar,
# whose reference is the chart's default image (values.yaml image.repository : Chart.yaml appVersion).
#
# The base (the Dockerfile's BASE_IMAGE):
#   IMAGE_BASE=<reference>  that image, pulled from its registry;
#   unset                   the Python project's slim bookworm image where its registry answers, and otherwise a
#                           Debian bookworm root filesystem made by mmdebstrap from Debian's packages (python3,
#                           python3-venv, and libstdc++6 for cel-expr-python's C++ extension, which the slim image
#                           has through apt; the essential variant, no docs), imported as a local image. It is cached
#                           outside the clone, keyed by its recipe, like the Go-built tools; IMAGE_BASE_REFRESH=1
#                           makes it again (for Debian's security updates).
# buildah's storage lives in the same cache (overlay where the kernel allows it, else vfs; IMAGE_STORAGE_DRIVER
# overrides), so the layers of a second build are reused.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"
log() { printf '[image] %s\n' "$*" >&2; }
start=$SECONDS

version="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
app_version="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' charts/release-readiness/Chart.yaml)"
repository="$(sed -n '/^image:/,/^[^ ]/s/^  repository: *\([^ ]*\) *$/\1/p' charts/release-readiness/values.yaml)"
if [[ "$version" != "$app_version" || -z "$repository" ]]; then
  log "pyproject.toml's version ($version) must equal charts/release-readiness/Chart.yaml's appVersion ($app_version)," \
    "and values.yaml must name image.repository ('$repository'): the chart deploys repository:appVersion"
  exit 1
fi
reference="$repository:$version"
archive="dist/release-readiness-$version.oci.tar"
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
if [[ "$revision" != unknown && -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  revision="$revision-dirty"
fi
source_url="$(sed -n 's/^home: *\([^ ]*\) *$/\1/p' charts/release-readiness/Chart.yaml)"

cache_root="${RELEASE_READINESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/release-readiness}"
store="$cache_root/containers"
mkdir -p "$store" dist

# Storage: overlay where this kernel mounts it, vfs otherwise (copies every layer: slower, but needs nothing).
driver="${IMAGE_STORAGE_DRIVER:-}"
if [[ -z "$driver" ]]; then
  if buildah --root "$store/overlay" --runroot "$store/run-overlay" --storage-driver overlay info >/dev/null 2>&1; then
    driver=overlay
  else
    driver=vfs
  fi
fi
buildah_() { buildah --root "$store/$driver" --runroot "$store/run-$driver" --storage-driver "$driver" "$@"; }
export BUILDAH_ISOLATION=chroot

# The Debian base: mmdebstrap's root filesystem, imported as localhost/release-readiness-base:<key>.
debian_base() {
  local suite=bookworm
  local recipe=(
    --variant=essential --include=python3,python3-venv,libstdc++6 --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  )
  local key
  key="$(printf '%s\n' "$suite" "${recipe[@]}" "$(mmdebstrap --version)" | sha256sum | cut -c1-12)"
  local image="localhost/release-readiness-base:$suite-$key" rootfs="$cache_root/image-base-$suite-$key.tar"
  if [[ -n "${IMAGE_BASE_REFRESH:-}" ]]; then
    rm -f "$rootfs"; buildah_ rmi "$image" >/dev/null 2>&1 || true
  fi
  if buildah_ inspect --type image "$image" >/dev/null 2>&1; then
    log "base $image: cached"
    echo "$image"; return
  fi
  if [[ ! -s "$rootfs" ]]; then
    # Debian's packages come from this machine's own apt sources (its mirror, its proxy).
    local sources="${IMAGE_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}"
    [[ -s "$sources" ]] || sources=/etc/apt/sources.list
    local logfile="$cache_root/image-base-$suite.log" t=$SECONDS
    log "base: mmdebstrap $suite (python3, python3-venv, libstdc++6) from $sources; log: $logfile"
    mmdebstrap --format=tar "${recipe[@]}" "$suite" "$rootfs.tmp.$$" "$sources" >"$logfile" 2>&1 || {
      log "FAILED: mmdebstrap; last lines of $logfile:"; tail -n 25 "$logfile" >&2; rm -f "$rootfs.tmp.$$"; exit 1; }
    mv "$rootfs.tmp.$$" "$rootfs"
    log "base: root filesystem in $((SECONDS - t))s ($(du -h "$rootfs" | cut -f1))"
  fi
  local ctr
  ctr="$(buildah_ from scratch)"
  buildah_ add "$ctr" "$rootfs" / >/dev/null
  buildah_ config --env LANG=C.UTF-8 --cmd '["python3"]' \
    --label "org.opencontainers.image.description=Debian $suite, python3, python3-venv and libstdc++6 (mmdebstrap)" "$ctr"
  buildah_ commit --quiet --rm "$ctr" "$image" >/dev/null
  log "base $image: imported"
  echo "$image"
}

registry_base=docker.io/library/python:3.11-slim-bookworm
if [[ -n "${IMAGE_BASE:-}" ]]; then
  base="$IMAGE_BASE"
  log "base $base (IMAGE_BASE)"
elif timeout 30 skopeo inspect --retry-times 0 --no-tags "docker://$registry_base" >/dev/null 2>&1; then
  base="$registry_base"
  log "base $base (its registry answers)"
else
  log "no registry serves $registry_base here: the base is Debian's, made by mmdebstrap"
  base="$(debian_base)"
fi

# The builder's trust store reaches pip in the build stage as a secret (a TLS-re-signing proxy needs it); it is
# in no layer. Its path: PIP_CERT, else the system bundle.
ca_bundle="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
secret=()
[[ -s "$ca_bundle" ]] && secret=(--secret "id=ca-bundle,src=$ca_bundle")

# Each build leaves its intermediate layers for the next one; past a bound, the unused ones go.
used_gb="$(du -s --block-size=1G "$store/$driver" 2>/dev/null | cut -f1 || echo 0)"
if (( used_gb > ${IMAGE_STORAGE_PRUNE_GB:-6} )); then
  log "storage holds ${used_gb} GiB: pruning unused layers"
  buildah_ rmi --prune >/dev/null 2>&1 || true
fi

t=$SECONDS
logfile="$cache_root/image-build.log"
log "buildah build (chroot isolation, $driver storage) $reference; log: $logfile"
# The revision is also set with --label: buildah reuses the cached layer of the Dockerfile's LABEL step when only
# the REVISION build-arg changed (seen: a docs-only commit got the previous commit's revision, and the image test
# refused the archive).
buildah_ build --isolation chroot --layers "${secret[@]}" \
  --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
  --build-arg "SOURCE=$source_url" --label "org.opencontainers.image.revision=$revision" \
  --tag "$reference" --file Dockerfile . >"$logfile" 2>&1 || {
  log "FAILED: buildah build; last lines of $logfile:"; tail -n 40 "$logfile" >&2; exit 1; }
log "built in $((SECONDS - t))s"

rm -f "$archive.tmp"
buildah_ push --quiet "$reference" "oci-archive:$root/$archive.tmp:$reference" >/dev/null
mv "$archive.tmp" "$archive"
size="$(buildah_ images --format '{{.Size}}' "$reference" | head -1)"
log "wrote $archive ($(du -h "$archive" | cut -f1) compressed, $size unpacked): $reference, revision $revision," \
  "base $base, in $((SECONDS - start))s"
