#!/bin/sh
# Build and run the Maglev build-time benchmark (optimised, no sanitizers).
# Usage: scripts/bench/maglev/run.sh   (from anywhere; CC overrides the compiler)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT INT TERM
${CC:-cc} -std=gnu11 -O2 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
	-I"$root/controlplane/tables" -I"$root/dataplane/core" \
	"$here/bench.c" "$root/controlplane/tables/maglev.c" -o "$out/maglev-bench"
"$out/maglev-bench"
