#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Install the Debian packages anygate needs to build, test and run its lab.
# Idempotent: asks dpkg which are missing and installs only those, so a second
# run touches nothing (and needs no network).
set -euo pipefail

PKGS=(
	# build
	build-essential pkg-config meson ninja-build clang llvm
	libclang-rt-dev # libFuzzer (tests/fuzz), a Recommends of clang that --no-install-recommends skips
	libbpf-dev bpftool libxdp-dev xdp-tools libconfig-dev libjemalloc-dev
	libcunit1-dev libmicrohttpd-dev libjansson-dev dpdk dpdk-dev libdpdk-dev
	# lab, tests and benchmarks
	iproute2 ethtool iperf3 socat curl python3 procps kmod coreutils
	util-linux findutils grep gawk sed iputils-ping
	python3-prometheus-client
	# the style gate (scripts/check.sh)
	git clang-format-14 clang-tidy-14 shellcheck
)

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: must run as root (it installs Debian packages with apt-get)" >&2
	exit 1
fi
if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
	echo "deps.sh: needs a Debian-based system (dpkg-query and apt-get)" >&2
	exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps.sh: all ${#PKGS[@]} packages present"
	exit 0
fi

echo "deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
