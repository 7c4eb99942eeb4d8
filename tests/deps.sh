#!/bin/bash
# Install the Debian packages pagefold needs to build, test and benchmark,
# skipping those already present. Usage: tests/deps.sh [--bench]
set -euo pipefail

pkgs=(gcc libc6-dev pkg-config meson ninja-build
      libfuse3-dev fuse3 liblz4-dev libxxhash-dev uthash-dev libzstd-dev
      util-linux kmod man-db groff-base sqlite3 git tar stress-ng)
if [ "${1:-}" = --bench ]; then
	pkgs+=(fio redis-server redis-tools gnuplot-nox lz4)
fi

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
