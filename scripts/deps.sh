#!/usr/bin/env bash
# Installs the Debian packages leasehold's build and tests need. Idempotent:
# installs only what is missing and says what it installs.
#   scripts/deps.sh           build and test (prometheus for promtool, which checks
#                             deploy/monitoring/'s alert rules; buildah for the image)
#   scripts/deps.sh --bench   also what `make bench` needs (matplotlib for the plots)
set -euo pipefail
packages=(cmake ninja-build g++ make pkg-config libgtest-dev nlohmann-json3-dev
          libcurl4-openssl-dev libnghttp2-dev libssl-dev libyaml-cpp-dev python3 clang-14 libclang-rt-14-dev
          libbenchmark-dev prometheus buildah protobuf-compiler libprotobuf-dev)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(python3-matplotlib)
fi
missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "[deps] installing: ${missing[*]}"
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "[deps] all Debian packages present: ${packages[*]}"
fi
if ! command -v go >/dev/null; then
  echo "[deps] error: Go (>= 1.26) is required to build the test control plane; Debian's golang is too old" >&2
  exit 1
fi
gov=$(go env GOVERSION)
echo "[deps] go: $gov"
