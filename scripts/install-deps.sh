#!/usr/bin/env bash
# Installs the Debian packages statherd needs to build, test and demo, if any are missing.
# Idempotent and quiet when everything is there.
# Usage: scripts/install-deps.sh [build|demo|container|test|all]
# (container: the engine for the image and package tests; scripts/container-setup.sh configures it)
set -euo pipefail

what=${1:-all}
build_pkgs=(cmake make g++ pkg-config libboost-dev libboost-system-dev nlohmann-json3-dev
            libyaml-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev prometheus-cpp-dev libsnappy-dev
            libgoogle-perftools-dev libre2-dev dpkg-dev file)
test_pkgs=(graphite-carbon graphite-web python3-whisper python3-prometheus-client python3 clang libclang-rt-14-dev
           systemd shellcheck python3-yaml prometheus chromium tzdata etcd-server)
# podman with runc (crun refuses this kernel's cgroups), debootstrap for the base image.
container_pkgs=(podman runc debootstrap podman-compose)

# make demo builds only the two daemons (no tests, no benchmarks) and runs Python writers.
demo_pkgs=(cmake make g++ pkg-config libboost-dev libboost-system-dev nlohmann-json3-dev
           libyaml-cpp-dev prometheus-cpp-dev libsnappy-dev libgoogle-perftools-dev libre2-dev python3)

case "$what" in
  build) pkgs=("${build_pkgs[@]}") ;;
  demo) pkgs=("${demo_pkgs[@]}") ;;
  container) pkgs=("${container_pkgs[@]}") ;;
  *) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}" "${container_pkgs[@]}") ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
