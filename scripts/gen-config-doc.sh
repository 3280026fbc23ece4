#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Rewrite the key tables of docs/config.md from the key declarations
# (controlplane/config/keys.c): each table between its markers
#   <!-- keys:ID begin -->  ...  <!-- keys:ID end -->
# is replaced by what build/controlplane/ag-config-doc prints for block ID.
# Everything outside the markers is left as it is. The unit test
# config-doc fails while the page and the declarations differ.
#
#   scripts/gen-config-doc.sh            (after ninja -C build)
# Env: AG_BUILD (default build/).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${AG_BUILD:-$ROOT/build}
TOOL=$BUILD/controlplane/ag-config-doc
DOC=$ROOT/docs/config.md

[ -x "$TOOL" ] || { echo "gen-config-doc: $TOOL is missing: build first" >&2; exit 1; }
tables=$(mktemp)
out=$(mktemp)
trap 'rm -f "$tables" "$out"' EXIT
"$TOOL" >"$tables"

# First file: the generated tables, by id. Second: the page, each marked
# section replaced. Ids on one side only are errors.
awk '
	FNR == NR {
		if (match($0, /^<!-- keys:[A-Za-z_]+ begin -->$/)) {
			id = substr($0, 11, length($0) - 20); order[++n] = id; body[id] = ""
		}
		body[id] = body[id] $0 "\n"
		next
	}
	match($0, /^<!-- keys:[A-Za-z_]+ begin -->$/) {
		id = substr($0, 11, length($0) - 20)
		if (!(id in body)) { print "gen-config-doc: no block \"" id "\"" > "/dev/stderr"; bad = 1 }
		printf "%s", body[id]; seen[id] = 1; skip = 1
		next
	}
	skip && $0 == "<!-- keys:" id " end -->" { skip = 0; next }
	!skip { print }
	END {
		if (skip) { print "gen-config-doc: no end marker for \"" id "\"" > "/dev/stderr"; bad = 1 }
		for (i = 1; i <= n; i++)
			if (!(order[i] in seen)) {
				print "gen-config-doc: docs/config.md has no markers for block \"" order[i] "\"" > "/dev/stderr"
				bad = 1
			}
		exit bad
	}
' "$tables" "$DOC" >"$out"
if cmp -s "$out" "$DOC"; then
	echo "docs/config.md: key tables up to date"
else
	cat "$out" >"$DOC"
	echo "docs/config.md: key tables rewritten"
fi
