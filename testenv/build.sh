#!/usr/bin/env bash
# Builds the real control plane used by leasehold's tests, from the Go module
# proxy, into a cache outside the repository:
#   ${LEASEHOLD_TESTENV_CACHE:-~/.cache/leasehold/testenv}/k8s-v1.36.3-etcd-v3.6.16/
# kube-apiserver and kube-controller-manager v1.36.3 (k8s.io/kubernetes with
# every staging module replaced by its published v0.36.3), etcd v3.6.16, the
# client-go interop peer, the etcd concurrency.Election interop peer
# (etcdpeer), the launchers (testenv, etcdcluster), and kubectl (deploy/'s
# kustomize overlays). Already-built binaries are kept and
# a missing one is built, so a cache made before a binary was added gets it on
# the next run; a cold build takes ~10 minutes on 2 cores. Prints the bin
# directory on the last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
K8S=v1.36.3
ETCD=v3.6.16
cache=${LEASEHOLD_TESTENV_CACHE:-$HOME/.cache/leasehold/testenv}
bin="$cache/k8s-$K8S-etcd-$ETCD/bin"
if [[ "${1:-}" == "--print-bin" ]]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$bin"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly
step=0
cmds=("$here"/cmd/*/)
# kube-apiserver, kubectl, kube-controller-manager, etcd, peer, legacypeer,
# etcdpeer, every testenv/cmd/*.
total=$((7 + ${#cmds[@]}))
build() { # name, module dir, package, ldflags
  local name=$1 dir=$2 pkg=$3 ldflags=$4
  step=$((step + 1))
  # The peer and launcher are ours and small: rebuild when their source changes.
  local stamp="$bin/.$name.src"
  local sum=""
  if [[ $pkg == ./* ]]; then
    sum=$(cd "$dir" && cat go.mod go.sum "$pkg"/*.go | sha256sum | cut -c1-16)
  fi
  if [[ -x "$bin/$name" && "$(cat "$stamp" 2>/dev/null)" == "$sum" ]]; then
    echo "[testenv build $step/$total] $name: cached"
    return
  fi
  echo "[testenv build $step/$total] $name: building $pkg (go $(go env GOVERSION))..."
  local t0=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg")
  mv "$bin/$name.tmp" "$bin/$name"
  echo "$sum" >"$stamp"
  echo "[testenv build $step/$total] $name: built in $((SECONDS - t0))s"
}
kv="-X k8s.io/component-base/version.gitVersion=$K8S -X k8s.io/component-base/version.gitMajor=1"
kv="$kv -X k8s.io/component-base/version.gitMinor=36 -X k8s.io/component-base/version.gitTreeState=clean"
kv="$kv -X k8s.io/client-go/pkg/version.gitVersion=$K8S"
build kube-apiserver "$here" k8s.io/kubernetes/cmd/kube-apiserver "-s -w $kv"
# kubectl: kustomize and server-side dry-run of deploy/ (tests/deploy/kustomize_test.sh)
build kubectl "$here" k8s.io/kubernetes/cmd/kubectl "-s -w $kv"
# The garbage collector that leader-for-life relies on (testenv up runs only it).
build kube-controller-manager "$here" k8s.io/kubernetes/cmd/kube-controller-manager "-s -w $kv"
build etcd "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=leasehold"
build peer "$here" ./peer "-s -w"
# client-go v0.23 (its own module): the last with the ConfigMap/Endpoints locks.
build legacypeer "$here/legacypeer" ./ "-s -w"
# go.etcd.io/etcd/client/v3 v3.6 (its own module, the server's version): the
# concurrency.Election reference candidate for etcd:// interop.
build etcdpeer "$here/etcdpeer" ./ "-s -w"
for c in "${cmds[@]}"; do
  c=${c%/}
  build "$(basename "$c")" "$here" "./cmd/$(basename "$c")" "-s -w"
done
echo "$bin"
