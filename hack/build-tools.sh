#!/usr/bin/env bash
# Builds the test control plane (etcd, kube-apiserver, kubectl, helm) from Go modules and links
# them into bin/. Binaries are cached outside the clone, keyed by tool, version and a hash of the
# tool's go.mod/go.sum/main.go, so a second run (or CI on a clean clone of this machine) is instant.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
# shellcheck source=hack/versions.env
source "$here/versions.env"

cache_root="${RELEASE_READINESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/release-readiness}"
bin_dir="$root/bin"
mkdir -p "$bin_dir" "$cache_root"

export CGO_ENABLED=0
export GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false"
export GOTOOLCHAIN=local

log() { printf '[tools] %s\n' "$*" >&2; }

# key NAME VERSION FILES... -> cache directory for that exact build
key() {
  local name="$1" version="$2"; shift 2
  local sum
  sum="$(cat "$@" 2>/dev/null | sha256sum | cut -c1-12)"
  printf '%s/%s-%s-%s' "$cache_root" "$name" "$version" "$sum"
}

# build NAME VERSION DIR_OR_EMPTY LDFLAGS PACKAGE_OR_MODULE@VERSION
# With DIR, the wrapper module in hack/DIR is built (its main.go, or PACKAGE, a tool of that module: a command
# whose module needs the wrapper's replace directives); without, PACKAGE@VERSION is installed as is.
build() {
  local name="$1" version="$2" moddir="$3" ldflags="$4" target="$5"
  local files=()
  if [[ -n "$moddir" ]]; then
    local f
    for f in go.mod go.sum main.go; do [[ -e "$here/$moddir/$f" ]] && files+=("$here/$moddir/$f"); done
  fi
  local dir; dir="$(key "$name" "$version" "${files[@]}" "$here/build-tools.sh")"
  if [[ -x "$dir/$name" ]]; then
    log "$name $version: cached ($dir)"
  else
    local logfile="$cache_root/$name-$version.build.log"
    log "$name $version: building (first time; this takes minutes; log: $logfile)"
    local start=$SECONDS tmp="$dir.tmp.$$"
    mkdir -p "$tmp"
    if [[ -n "$moddir" ]]; then
      (cd "$here/$moddir" && go build -ldflags "$ldflags" -o "$tmp/$name" "${target:-.}") >"$logfile" 2>&1 || {
        log "FAILED to build $name $version; last lines of $logfile:"; tail -n 25 "$logfile" >&2; rm -rf "$tmp"; exit 1; }
    else
      GOBIN="$tmp" go install -ldflags "$ldflags" "$target" >"$logfile" 2>&1 || {
        log "FAILED to build $name $version; last lines of $logfile:"; tail -n 25 "$logfile" >&2; rm -rf "$tmp"; exit 1; }
    fi
    rm -rf "$dir"; mv "$tmp" "$dir"
    log "$name $version: built in $((SECONDS - start))s"
  fi
  ln -sfn "$dir/$name" "$bin_dir/$name"
}

k8s_ldflags() {
  local v="$KUBERNETES_VERSION" minor
  minor="$(echo "$v" | cut -d. -f2)"
  printf '%s ' -s -w \
    "-X k8s.io/component-base/version.gitVersion=$v" \
    "-X k8s.io/component-base/version.gitMajor=1" \
    "-X k8s.io/component-base/version.gitMinor=$minor" \
    "-X k8s.io/component-base/version.gitTreeState=clean" \
    "-X k8s.io/client-go/pkg/version.gitVersion=$v" \
    "-X k8s.io/client-go/pkg/version.gitMajor=1" \
    "-X k8s.io/client-go/pkg/version.gitMinor=$minor"
}

want="${*:-etcd kube-apiserver kubectl helm}"
start=$SECONDS
for tool in $want; do
  case "$tool" in
    etcd) build etcd "$ETCD_VERSION" etcd "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=release" "" ;;
    kube-apiserver) build kube-apiserver "$KUBERNETES_VERSION" kube-apiserver "$(k8s_ldflags)" "" ;;
    kubectl) build kubectl "$KUBERNETES_VERSION" kubectl "$(k8s_ldflags)" "" ;;
    helm) build helm "$HELM_VERSION" "" "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" ;;
    # Benchmark-only tools (`make bench`; `make test` never builds them).
    vegeta) build vegeta "$VEGETA_VERSION" "" "-s -w -X main.Version=$VEGETA_VERSION" "github.com/tsenart/vegeta/v12@$VEGETA_VERSION" ;;
    kyverno) build kyverno "$KYVERNO_VERSION" kyverno "-s -w" "github.com/kyverno/kyverno/cmd/kyverno" ;;
    *) log "unknown tool '$tool' (known: etcd kube-apiserver kubectl helm vegeta kyverno)"; exit 2 ;;
  esac
done
log "tools ready in $((SECONDS - start))s: $(cd "$bin_dir" && echo *)"
