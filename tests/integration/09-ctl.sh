#!/usr/bin/env bash
# Operators: every anygatectl command in human and --json output, errors
# included; a real unprivileged user reads but every change is refused (exit 4),
# a member of admin_group may change; the same words for weight 256 from the
# socket and from a config file; --dry-run applies nothing; drain: new flows
# avoid the endpoint while a TCP download already on it completes with the
# right checksum; region drill, dial, weight move real traffic; confirm-within
# rolls back unless confirmed; overrides survive a restart (a corrupt state
# file is kept aside); a bad reload changes nothing (the same 5-tuples land on
# the same backends afterwards) and a good one does.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
PY3=/usr/bin/python3
# shellcheck disable=SC2034 # read by lab_up in lib.sh (size of the bulk file)
AG_BULK_MB=16
lab_up || ag_fail "could not build the lab"

SOCK=$AG_RUN/anygated.sock
CONF=$AG_RUN/test.conf
STATE=$AG_RUN/state.json
# A copy nobody may run: the build tree may sit where other users cannot look.
CTL=$AG_RUN/anygatectl
install -m 0755 "$AG_BUILD/controlplane/anygatectl" "$CTL" || ag_fail "cannot copy anygatectl"

NOBODY_GROUP=$(id -gn nobody 2>/dev/null) || ag_skip "no user nobody on this host"
command -v setpriv >/dev/null || ag_skip "setpriv (util-linux) is missing"
ADMIN_GROUP=
getent group adm >/dev/null && ADMIN_GROUP=adm

# write_conf [GROUP...]: the lab config, the socket readable by nobody's group,
# admin_group, and a 2 s UDP idle timeout (re-sent UDP 5-tuples are new flows
# soon: the reload check below relies on it).
write_conf() {
	local extra="control_group = \"$NOBODY_GROUP\"; udp_idle_s = 2;"
	[ -n "$ADMIN_GROUP" ] && extra+=" admin_group = \"$ADMIN_GROUP\";"
	ag_config_write "$CONF" "$@"
	sed -i "s|^\tstate_file = .*|&\n\t$extra|" "$CONF"
	grep -qF "$extra" "$CONF" || ag_fail "could not add the control settings to $CONF"
}
write_conf
agd_start "$CONF" || ag_fail "anygated did not come up"

ctl() { "$CTL" -s "$SOCK" "$@"; }
# run NAME CMD...: output in $AG_RUN/NAME.out/.err, exit status in RC.
run() {
	local name=$1
	shift
	"$@" >"$AG_RUN/$name.out" 2>"$AG_RUN/$name.err"
	RC=$?
}
# json EXPR < JSON: evaluate a Python expression over the document d.
json() { "$PY3" -c 'import json,sys; d=json.load(sys.stdin); r=eval(sys.argv[1]); print(r if not isinstance(r,(dict,list)) else json.dumps(r))' "$1"; }
expect_rc() { # WANT DESCRIPTION (after run)
	[ "$RC" -eq "$1" ] || {
		cat "$AG_RUN/$LAST.out" "$AG_RUN/$LAST.err" >&2
		ag_fail "$2: exit $RC, want $1"
	}
}
c() { LAST=$1; run "$@"; }
name_of() { # 10.N.1.(10+M) -> rNbM
	local a=$1 n m
	n=$(echo "$a" | cut -d. -f2)
	m=$(($(echo "$a" | cut -d. -f4) - 10))
	echo "r${n}b${m}"
}
curls() { # N: N HTTP requests to the VIP, one backend name a line
	local i
	for ((i = 0; i < $1; i++)); do
		nsx client curl -s --max-time 5 "http://$AG_VIP/" || echo FAIL
		echo
	done
}
udp() { # N SPORT-BASE: N UDP flows, one backend name a line
	nsx client "$AG_TESTCLI" --sport-base "$2" --timeout-ms 3000 "$AG_VIP" 5000 "$1"
}
overrides_count() { ctl --json overrides | json 'len(d)'; }
no_overrides() { [ "$(overrides_count)" = 0 ]; }
all_up() { [ "$(ctl --json status | json 'd["backends_up"]')" = 12 ]; }
udp_flows() { ctl --json flows client 10.0.0.2 limit 100000 | json 'len([r for r in d["flows"] if r["proto"] == "udp"])'; }
no_udp_flows() { [ "$(udp_flows)" = 0 ]; }

wait_for 20 "every backend healthy" all_up || ag_fail "backends did not come up"

# ------------------------------------------------------------ read commands
for cmd in status listeners endpoints overrides flows stats help version whoami \
	"endpoints eu-west" "endpoints 10.1.1.11" "flows limit 5" "flows backend 10.1.1.11" \
	"flows client 10.0.0.2" "help set"; do
	# shellcheck disable=SC2086
	c human ctl $cmd
	expect_rc 0 "anygatectl $cmd"
	[ -s "$AG_RUN/human.out" ] || ag_fail "anygatectl $cmd printed nothing"
	# shellcheck disable=SC2086
	c js ctl --json $cmd
	expect_rc 0 "anygatectl --json $cmd"
	"$PY3" -c 'import json,sys; json.load(open(sys.argv[1]))' "$AG_RUN/js.out" ||
		ag_fail "anygatectl --json $cmd is not JSON: $(cat "$AG_RUN/js.out")"
done
ctl --json status >"$AG_RUN/st.json"
for k in edge fast_path uptime_s listeners backends publishes last_publish_ms last_failover_ms \
	reloads overrides confirm_pending drill; do
	json "'$k' in d" <"$AG_RUN/st.json" | grep -qx True || ag_fail "status has no $k"
done
[ "$(json 'd["listeners"], d["backends"], d["overrides"]' <"$AG_RUN/st.json")" = "(2, 12, 0)" ] ||
	ag_fail "status counts: $(cat "$AG_RUN/st.json")"
[ "$(ctl --json listeners | json 'len(d)')" = 2 ] || ag_fail "listeners: want 2 rows"
[ "$(ctl --json endpoints | json 'len(d)')" = 12 ] || ag_fail "endpoints: want 12 rows"
[ "$(ctl --json endpoints eu-west | json 'len(d)')" = 4 ] || ag_fail "endpoints eu-west: want 4"
ctl --json endpoints | json '[round(sum(r["share_pct"] for r in d if r["listener"]==l)) for l in ("web/tcp:80","web/udp:5000")]' |
	grep -qx '\[100, 100\]' || ag_fail "table shares of a listener do not add up to 100%"
ctl --json stats | json '[r["reason"] for r in d["reasons"]]' | grep -q drop_no_backend ||
	ag_fail "stats lists no drop reasons"
# stats: the flow table's fill, the sweeper's counters by flow state, what each reason did
ctl --json stats >"$AG_RUN/stats.json"
[ "$(json '(d["flow_max_entries"], sorted(r["state"] for r in d["flows_removed"]), d["sweeps"] > 0)' \
	<"$AG_RUN/stats.json")" = "(65536, ['closing', 'established', 'half-open', 'udp'], True)" ] ||
	ag_fail "stats: no flow table or sweeper counters: $(head -c 600 "$AG_RUN/stats.json")"
[ "$(json '[r["action"] for r in d["reasons"] if r["reason"] in ("tcp_syn_challenge", "drop_tcp_no_flow")]' \
	<"$AG_RUN/stats.json")" = '["drop", "act"]' ] || ag_fail "stats: reasons without their action"
# flows: each row's state (a finished HTTP request is closing, a UDP request udp)
curls 2 >/dev/null
udp 2 31000 >/dev/null || ag_fail "UDP requests failed"
[ "$(ctl --json flows client 10.0.0.2 limit 100000 |
	json 'sorted({(r["proto"], r["state"]) for r in d["flows"]})')" = '[["tcp", "closing"], ["udp", "udp"]]' ] ||
	ag_fail "flows: states $(ctl --json flows client 10.0.0.2 | head -c 600)"
ctl listeners | grep -q 'eu-west .*ms > us-east .*ms > ap-south' ||
	ag_fail "listeners shows no region order with RTTs: $(ctl listeners)"
ctl help | grep -q '^region fail' || ag_fail "help does not list region fail"

# 100 clients at once, then garbage, a huge line and a half-closed connection:
# every client gets its own correct answer and the daemon keeps serving.
pids=()
for ((i = 0; i < 100; i++)); do
	ctl --json status >"$AG_RUN/par$i.out" 2>&1 &
	pids+=($!)
done
# Only these: the lab's servers are children of this shell too.
wait "${pids[@]}"
for ((i = 0; i < 100; i++)); do
	[ "$(json 'd["backends"]' <"$AG_RUN/par$i.out")" = 12 ] ||
		ag_fail "concurrent client $i: $(cat "$AG_RUN/par$i.out")"
done
printf 'status\n\x01\xff garbage "unterminated\n' | timeout 10 socat -t 5 - "UNIX-CONNECT:$SOCK" \
	>"$AG_RUN/garbage.out" 2>&1
grep -c '"ok":false' "$AG_RUN/garbage.out" | grep -qx 1 || ag_fail "garbage: $(cat "$AG_RUN/garbage.out")"
# The daemon answers and closes mid-line: a writer that stops at EPIPE, then reads.
"$PY3" - "$SOCK" >"$AG_RUN/huge.out" 2>&1 <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(10); s.connect(sys.argv[1])
try:
    s.sendall(b"a" * 100000)
except OSError:
    pass
out = b""
while True:
    try:
        b = s.recv(65536)
    except OSError:
        break
    if not b:
        break
    out += b
print(out.decode(errors="replace"))
PY
grep -q 'line too long' "$AG_RUN/huge.out" || ag_fail "huge line: $(head -c 300 "$AG_RUN/huge.out")"
printf 'ping' | timeout 10 socat -t 5 - "UNIX-CONNECT:$SOCK" >"$AG_RUN/half.out" 2>&1
grep -q '"data":"pong"' "$AG_RUN/half.out" || ag_fail "half-closed: $(cat "$AG_RUN/half.out")"
c alive ctl ping
expect_rc 0 "ping after garbage"
ag_info "100 concurrent status requests answered; garbage, a 100 kB line and a half-closed client left the daemon serving"

# ------------------------------------------------------------ errors
c e1 ctl no-such-command
expect_rc 2 "unknown command"
c e2 ctl set weight 10.1.1.11
expect_rc 2 "set weight with one argument"
grep -q 'usage: set weight ENDPOINT WEIGHT' "$AG_RUN/e2.err" || ag_fail "no usage line: $(cat "$AG_RUN/e2.err")"
c e3 ctl set weight 10.9.9.9 5
expect_rc 1 "set weight on an unknown endpoint"
grep -q 'no endpoint matches 10.9.9.9' "$AG_RUN/e3.err" || ag_fail "$(cat "$AG_RUN/e3.err")"
c e4 ctl set dial nowhere 5
expect_rc 1 "set dial on an unknown group"
grep -q 'no endpoint group matches nowhere' "$AG_RUN/e4.err" || ag_fail "$(cat "$AG_RUN/e4.err")"
c e5 ctl drain web/eu-west/10.1.1
expect_rc 1 "drain with a bad selector"
c e6 ctl --json flows limit 0
expect_rc 1 "flows limit 0"
[ "$(json 'd["code"]' <"$AG_RUN/e6.out")" = invalid ] || ag_fail "flows limit 0: $(cat "$AG_RUN/e6.out")"
c e7 ctl confirm
expect_rc 1 "confirm with nothing pending"
grep -q 'nothing to confirm' "$AG_RUN/e7.err" || ag_fail "$(cat "$AG_RUN/e7.err")"
c e8 ctl drain 10.1.1.11 --confirm-within soon
expect_rc 1 "--confirm-within soon"
c e9 ctl drain 10.1.1.11 --dry-run --confirm-within 5
expect_rc 2 "--dry-run with --confirm-within"
c e10 ctl drain 10.1.1.11 --force
expect_rc 2 "unknown option"
c e11 ctl overrides clear
expect_rc 1 "overrides clear with no overrides"
c e12 ctl --json set dial eu-west 101
expect_rc 1 "dial 101"
[ "$(json 'd["error"]' <"$AG_RUN/e12.out")" = "traffic_dial: must be 0-100 (got 101)" ] ||
	ag_fail "dial 101: $(cat "$AG_RUN/e12.out")"
[ "$(overrides_count)" = 0 ] || ag_fail "a refused command left an override"

# weight 256: the words of the config file's error, from the socket.
c w256 ctl --json set weight eu-west/10.1.1.11 256
expect_rc 1 "set weight 256"
sock_words=$(json 'd["error"]' <"$AG_RUN/w256.out")
cp "$CONF" "$AG_RUN/w256.conf"
sed -i '0,/weight = 128;/s//weight = 256;/' "$AG_RUN/w256.conf"
"$AG_ANYGATED" --check "$AG_RUN/w256.conf" 2>"$AG_RUN/w256check.err" && ag_fail "--check took weight 256"
file_words=$(grep -o 'weight: .*' "$AG_RUN/w256check.err")
ag_info "weight 256: socket \"$sock_words\", config file \"...$file_words\""
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ -n "$file_words" ] && [ "$sock_words" = "$file_words" ] ||
	ag_fail "weight 256: socket says \"$sock_words\", config file \"$file_words\""

# ------------------------------------------------------------ who may change
changes=("set weight 10.1.1.11 5" "set dial eu-west 50" "drain 10.1.1.11" "undrain 10.1.1.11"
	"region fail eu-west" "region restore eu-west" "overrides clear" "confirm" "reload" "check")
as_nobody() { setpriv --reuid=nobody --regid="$NOBODY_GROUP" --clear-groups "$CTL" -s "$SOCK" "$@"; }
c n0 as_nobody status
expect_rc 0 "status as nobody"
c n1 as_nobody --json whoami
expect_rc 0 "whoami as nobody"
[ "$(json 'd["access"]' <"$AG_RUN/n1.out")" = read ] || ag_fail "nobody is not read-only: $(cat "$AG_RUN/n1.out")"
for cmd in "${changes[@]}"; do
	# shellcheck disable=SC2086
	c n2 as_nobody $cmd
	expect_rc 4 "\"$cmd\" as nobody"
	# shellcheck disable=SC2086
	c n3 as_nobody --json $cmd
	expect_rc 4 "\"$cmd\" as nobody (--json)"
	[ "$(json 'd["code"]' <"$AG_RUN/n3.out")" = denied ] || ag_fail "$cmd as nobody: $(cat "$AG_RUN/n3.out")"
done
[ "$(overrides_count)" = 0 ] || ag_fail "a denied change left an override"
if [ -n "$ADMIN_GROUP" ]; then
	c n4 setpriv --reuid=nobody --regid="$NOBODY_GROUP" --groups="$ADMIN_GROUP" "$CTL" -s "$SOCK" \
		--json drain 10.1.1.11 --dry-run
	expect_rc 0 "drain --dry-run as nobody in group $ADMIN_GROUP"
else
	echo "NOTE: no group adm: admin_group membership not exercised"
fi

# ------------------------------------------------------------ dry run
share_of() { # ADDRESS LISTENER
	ctl --json endpoints "$1" | json "[r['share_pct'] for r in d if r['listener']=='$2'][0]"
}
before=$(share_of 10.1.1.11 web/tcp:80)
c dry ctl --json drain 10.1.1.11 --dry-run
expect_rc 0 "drain --dry-run"
json 'd["dry_run"] and d["slots_changed"] > 0 and all(r["new_pct"] == 0 for r in d["endpoints"] if r["address"] == "10.1.1.11") and any(r["old_pct"] > 0 for r in d["endpoints"] if r["address"] == "10.1.1.11")' \
	<"$AG_RUN/dry.out" | grep -qx True || ag_fail "dry run: $(cat "$AG_RUN/dry.out")"
c dryh ctl drain 10.1.1.11 --dry-run
expect_rc 0 "drain --dry-run (human)"
grep -q 'SLOTS_CHANGED' "$AG_RUN/dryh.out" || ag_fail "dry run table: $(cat "$AG_RUN/dryh.out")"
[ "$(overrides_count)" = 0 ] || ag_fail "--dry-run left an override"
[ "$(share_of 10.1.1.11 web/tcp:80)" = "$before" ] || ag_fail "--dry-run changed the table"

# ------------------------------------------------------------ drain under a download
cat >"$AG_RUN/slowget.py" <<'PY'
# Download the bulk port in two halves: the first part, then (after GO exists) the rest.
import hashlib, os, socket, sys, time
vip, port, first, go, portfile, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:7]
s = socket.create_connection((vip, port), timeout=60)
h, n = hashlib.sha256(), 0
while n < first:
    b = s.recv(65536)
    if not b:
        sys.exit("eof after %d bytes" % n)
    h.update(b); n += len(b)
with open(portfile + ".tmp", "w") as f:
    f.write("%d\n" % s.getsockname()[1])
os.rename(portfile + ".tmp", portfile)
deadline = time.monotonic() + 120
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("no go")
    time.sleep(0.05)
while True:
    b = s.recv(65536)
    if not b:
        break
    h.update(b); n += len(b)
with open(out, "w") as f:
    f.write("%d %s\n" % (n, h.hexdigest()))
PY
rm -f "$AG_RUN/go" "$AG_RUN/dl.port" "$AG_RUN/dl.sum"
nsx client "$PY3" "$AG_RUN/slowget.py" "$AG_VIP" 8001 1048576 "$AG_RUN/go" "$AG_RUN/dl.port" \
	"$AG_RUN/dl.sum" 2>"$AG_RUN/dl.err" &
dl_pid=$!
wait_for 20 "the download's first megabyte" test -s "$AG_RUN/dl.port" || ag_fail "download: $(cat "$AG_RUN/dl.err")"
dport=$(cat "$AG_RUN/dl.port")
ctl --json flows client 10.0.0.2 limit 100000 >"$AG_RUN/dlflow.json"
B=$(json "[r['backend'].split(':')[0] for r in d['flows'] if r['client'] == '10.0.0.2:$dport'][0]" \
	<"$AG_RUN/dlflow.json") || ag_fail "the download's flow is not listed: $(cat "$AG_RUN/dlflow.json")"
BN=$(name_of "$B")
valid_backend "$BN" || ag_fail "download backend $B"
ag_log "the download runs on $BN ($B), client port $dport"
curls 40 >"$AG_RUN/pre.txt"
grep -qx "$BN" "$AG_RUN/pre.txt" || ag_fail "before the drain no request reached $BN: $(sort "$AG_RUN/pre.txt" | uniq -c)"
c drain ctl --json drain "$B"
expect_rc 0 "drain $B"
[ "$(json 'd["matched"]' <"$AG_RUN/drain.out")" = 2 ] || ag_fail "drain matched: $(cat "$AG_RUN/drain.out")"
curls 40 >"$AG_RUN/post.txt"
udp 100 32000 >"$AG_RUN/post-udp.txt" || ag_fail "UDP flows failed during the drain"
if grep -qx "$BN" "$AG_RUN/post.txt" "$AG_RUN/post-udp.txt"; then
	ag_fail "new flows reached drained $BN: $(cat "$AG_RUN/post.txt" "$AG_RUN/post-udp.txt" | sort | uniq -c)"
fi
grep -qx FAIL "$AG_RUN/post.txt" && ag_fail "requests failed during the drain"
ctl --json endpoints "$B" |
	json 'len(d) == 2 and all(r["effective"] == 0 and r["share_pct"] == 0 and r["override"] == "drained" for r in d)' |
	grep -qx True || ag_fail "endpoints $B: $(ctl endpoints "$B")"
[ "$(ctl --json flows backend "$B" limit 100000 | json "len([r for r in d['flows'] if r['client'] == '10.0.0.2:$dport'])")" = 1 ] ||
	ag_fail "the download's flow is gone from flows backend $B"
ctl endpoints "$B" | grep -q drained || ag_fail "endpoints does not say drained"
touch "$AG_RUN/go"
wait "$dl_pid" || ag_fail "download: $(cat "$AG_RUN/dl.err")"
want="$(stat -c %s "$AG_RUN/bulk.bin") $(sha256sum "$AG_RUN/bulk.bin" | cut -d' ' -f1)"
[ "$(cat "$AG_RUN/dl.sum")" = "$want" ] || ag_fail "download through the drain: got $(cat "$AG_RUN/dl.sum"), want $want"
ag_info "drain: a 16 MB download on drained $BN completed intact; 40 TCP + 100 UDP new flows avoided it"
c undrain ctl undrain "$B"
expect_rc 0 "undrain"
[ "$(overrides_count)" = 0 ] || ag_fail "undrain left overrides: $(ctl overrides)"
curls 40 >"$AG_RUN/back.txt"
grep -qx "$BN" "$AG_RUN/back.txt" || ag_fail "after undrain no request reached $BN"

# ------------------------------------------------------------ weight, dial, region drill
c wz ctl set weight eu-west/10.1.1.11 0
expect_rc 0 "set weight 0"
udp 100 33000 >"$AG_RUN/w0.txt" || ag_fail "UDP flows failed at weight 0"
grep -qx r1b1 "$AG_RUN/w0.txt" && ag_fail "weight 0: r1b1 still gets new flows"
grep -qx r1b2 "$AG_RUN/w0.txt" || ag_fail "weight 0: r1b2 gets nothing"
c dial ctl set dial eu-west 50
expect_rc 0 "set dial 50"
udp 200 34000 >"$AG_RUN/d50.txt" || ag_fail "UDP flows failed at dial 50"
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
grep -qx r1b2 "$AG_RUN/d50.txt" && grep -q '^r2b' "$AG_RUN/d50.txt" ||
	ag_fail "dial 50 does not split eu-west/us-east: $(sort "$AG_RUN/d50.txt" | uniq -c)"
ctl listeners | grep -q 'eu-west .*\[dial 50\]' || ag_fail "listeners does not show the dial"
c drill ctl region fail eu-west
expect_rc 0 "region fail"
udp 100 35000 >"$AG_RUN/drill.txt" || ag_fail "UDP flows failed during the drill"
grep -q '^r1b' "$AG_RUN/drill.txt" && ag_fail "drill: eu-west still gets new flows"
grep -q '^r2b' "$AG_RUN/drill.txt" || ag_fail "drill: us-east gets nothing: $(sort "$AG_RUN/drill.txt" | uniq -c)"
ctl listeners | grep -q 'eu-west .*\[DRILL\]' || ag_fail "listeners does not show the drill"
ctl --json listeners | json 'all(r["drill"] for r in d)' | grep -qx True || ag_fail "listeners drill flag"
ctl endpoints eu-west | grep -q DRILL || ag_fail "endpoints does not show the drill"
[ "$(ctl --json status | json 'd["drill"]')" = web/eu-west ] || ag_fail "status drill: $(ctl status)"
grep -q 'DR drill: region eu-west failed on purpose' "$AG_AGD_LOG" || ag_fail "no drill in the log"
c restore ctl region restore eu-west
expect_rc 0 "region restore"
ctl --json overrides | json '[(r["kind"], r["selector"], r["value"]) for r in d]' |
	grep -qx '\[\["weight", "eu-west/10.1.1.11", 0\], \["dial", "eu-west", 50\]\]' ||
	ag_fail "overrides after restore: $(ctl overrides)"
c clr1 ctl overrides clear 10.1.1.11
expect_rc 0 "overrides clear 10.1.1.11"
[ "$(overrides_count)" = 1 ] || ag_fail "clear 10.1.1.11: $(ctl overrides)"
c clr2 ctl --json overrides clear
expect_rc 0 "overrides clear"
[ "$(overrides_count)" = 0 ] || ag_fail "clear: $(ctl overrides)"

# ------------------------------------------------------------ confirm-within
c cw ctl --json set weight eu-west/10.1.1.11 0 --confirm-within 2
expect_rc 0 "--confirm-within 2"
[ "$(json 'd["pending_change"]' <"$AG_RUN/cw.out")" = "set weight eu-west/10.1.1.11 0" ] ||
	ag_fail "pending: $(cat "$AG_RUN/cw.out")"
ctl --json status | json 'd["confirm_pending"]' | grep -q 'rolls back in' || ag_fail "status has no pending deadline"
grep -q '"deadline_ms"' "$STATE" || ag_fail "the pending rollback is not in the state file"
wait_for 20 "the unconfirmed change to roll back" no_overrides ||
	ag_fail "not rolled back: $(ctl overrides)"
grep -q 'confirm-within: not confirmed in time: rolling back "set weight eu-west/10.1.1.11 0"' "$AG_AGD_LOG" ||
	ag_fail "no rollback in the log"
[ "$(ctl --json status | json 'd["confirm_pending"]')" = None ] || ag_fail "still pending after rollback"
c cw2 ctl set dial us-east 40 --confirm-within 600
expect_rc 0 "--confirm-within 600"
c cf ctl --json confirm
expect_rc 0 "confirm"
[ "$(json 'd["confirmed"]' <"$AG_RUN/cf.out")" = "set dial us-east 40" ] || ag_fail "confirm: $(cat "$AG_RUN/cf.out")"
[ "$(ctl --json status | json 'd["confirm_pending"]')" = None ] || ag_fail "pending after confirm"
grep -q '"pending": null' "$STATE" || ag_fail "state file still pending after confirm"
[ "$(overrides_count)" = 1 ] || ag_fail "confirmed change is gone"
ctl overrides clear >/dev/null || ag_fail "clear after confirm"

# ------------------------------------------------------------ restart keeps overrides
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
ctl set weight 10.1.1.12 7 >/dev/null && ctl region fail ap-south >/dev/null || ag_fail "setting overrides"
ctl --json overrides | json '[(r["kind"], r["selector"], r["value"]) for r in d]' >"$AG_RUN/ovr.before"
agd_stop || ag_fail "anygated stop: $AGD_STATUS"
agd_start "$CONF" || ag_fail "anygated did not come back"
grep -q "overrides: 2 loaded from $STATE" "$AG_AGD_LOG" || ag_fail "restart did not load the overrides"
ctl --json overrides | json '[(r["kind"], r["selector"], r["value"]) for r in d]' >"$AG_RUN/ovr.after"
cmp -s "$AG_RUN/ovr.before" "$AG_RUN/ovr.after" || ag_fail "overrides after restart: $(cat "$AG_RUN/ovr.after")"
ctl endpoints 10.1.1.12 | grep -q 'weight 7' || ag_fail "restart: weight 7 not in force"
ctl listeners | grep -q 'ap-south .*\[DRILL\]' || ag_fail "restart: ap-south drill not in force"
ag_info "restart: $(tr -d '\n' <"$AG_RUN/ovr.after") kept"
agd_stop || ag_fail "anygated stop: $AGD_STATUS"
echo '{"anygate_state": 1, "overrides": [ {"kind": "weight"' >"$STATE"
agd_start "$CONF" || ag_fail "anygated did not start with a corrupt state file"
grep -q "error: overrides: $STATE:.*not valid JSON.*starting with no overrides; the bad file is kept as $STATE.bad" "$AG_AGD_LOG" ||
	ag_fail "no error naming the corrupt state file: $(grep overrides "$AG_AGD_LOG")"
[ -s "$STATE.bad" ] || ag_fail "the corrupt state file was not kept"
[ "$(overrides_count)" = 0 ] || ag_fail "overrides from a corrupt file"

# ------------------------------------------------------------ reload
# Fresh 5-tuples and UDP flows that expire after 2 s: a re-sent tuple is looked
# up in the table again, so the same answers mean the same tables.
# An override that must hold across reloads (ap-south takes no traffic here).
ctl drain 10.3.1.11 >/dev/null || ag_fail "drain 10.3.1.11"
still_drained() {
	ctl --json endpoints 10.3.1.11 |
		json 'len(d) == 2 and all(r["override"] == "drained" and r["effective"] == 0 for r in d)' |
		grep -qx True || ag_fail "after $1 the drain of 10.3.1.11 is gone: $(ctl endpoints 10.3.1.11)"
}
udp 150 40000 >"$AG_RUN/r0.txt" || ag_fail "UDP before reload"
shares0=$(ctl --json endpoints | json '[r["share_pct"] for r in d]')
cp "$CONF" "$AG_RUN/good.conf"
write_conf "eu-west:r1b1=0,r1b2=256" "us-east:r2b1=128,r2b2=128" "ap-south:r3b1=128,r3b2=128"
bad_line=$(grep -n 'weight = 256;' "$CONF" | head -1 | cut -d: -f1)
c rl ctl reload
expect_rc 1 "reload of a bad config"
grep -q "^$CONF:$bad_line: .*weight: must be 0-255 (got 256)" "$AG_RUN/rl.err" ||
	ag_fail "reload errors: $(cat "$AG_RUN/rl.err")"
c rlj ctl --json reload
expect_rc 1 "reload of a bad config (--json)"
json 'd["code"] == "invalid" and "'"$CONF:$bad_line"':" in d["error"]' <"$AG_RUN/rlj.out" | grep -qx True ||
	ag_fail "reload --json: $(cat "$AG_RUN/rlj.out")"
c ck ctl check
expect_rc 1 "check of the bad config"
grep -q "$CONF:$bad_line: " "$AG_RUN/ck.err" || ag_fail "check: $(cat "$AG_RUN/ck.err")"
c ck2 ctl --json check --daemon "$AG_RUN/good.conf"
expect_rc 0 "check --daemon good.conf"
[ "$(json 'd["ok"]' <"$AG_RUN/ck2.out")" = True ] || ag_fail "check good: $(cat "$AG_RUN/ck2.out")"
[ "$(ctl --json endpoints | json '[r["share_pct"] for r in d]')" = "$shares0" ] ||
	ag_fail "a refused reload changed the tables"
wait_for 20 "UDP flows to expire" no_udp_flows || ag_fail "UDP flows did not expire: $(udp_flows)"
udp 150 40000 >"$AG_RUN/r1.txt" || ag_fail "UDP after the refused reload"
cmp -s "$AG_RUN/r0.txt" "$AG_RUN/r1.txt" ||
	ag_fail "after a refused reload the same flows land elsewhere: $(diff "$AG_RUN/r0.txt" "$AG_RUN/r1.txt" | head)"
[ "$(ctl --json status | json 'd["reload_failures"]')" = 2 ] || ag_fail "reload_failures: $(ctl status)"
still_drained "a refused reload"
# A good reload does change them (so the check above can fail).
write_conf "eu-west:r1b1=0,r1b2=128" "us-east:r2b1=128,r2b2=128" "ap-south:r3b1=128,r3b2=128"
c rl2 ctl --json reload
expect_rc 0 "reload of a good config"
[ "$(json 'd["overrides"]' <"$AG_RUN/rl2.out")" = 1 ] || ag_fail "reload reply: $(cat "$AG_RUN/rl2.out")"
still_drained "a good reload"
wait_for 20 "UDP flows to expire" no_udp_flows || ag_fail "UDP flows did not expire"
udp 150 40000 >"$AG_RUN/r2.txt" || ag_fail "UDP after the good reload"
grep -qx r1b1 "$AG_RUN/r2.txt" && ag_fail "after reload with r1b1 weight 0 it still gets new flows"
grep -qx r1b1 "$AG_RUN/r0.txt" || ag_fail "r1b1 got none of the first 150 flows"
ag_info "reload: refused bad config left 150/150 flows in place; good config moved $(diff "$AG_RUN/r0.txt" "$AG_RUN/r2.txt" | grep -c '^>') of 150"
echo "PASS: control socket commands, access, drain, drill, confirm-within, restart, reload"
