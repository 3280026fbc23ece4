#!/usr/bin/env bash
# The control socket under clients that ask for large replies and never read
# them: the flow table holds 200,000 live flows (written into the pinned maps
# as the program writes them), 24 clients of one unprivileged user each ask
# for `flows limit 100000` (about 20 MB of JSON) and read nothing. anygated's
# memory grows by less than the bound on queued reply bytes (docs/control.md:
# 64 MiB in total; the streamed walks hold about 192 KiB each), and meanwhile
# root's status and a full walk read by another client are answered. The
# figure (RSS before and after) is printed for the summary: on ad55e81, which
# built each reply whole, it was 41 -> 602 MiB.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
PY3=/usr/bin/python3
FLOWS=200000
SLOW=24
lab_up || ag_fail "could not build the lab"

NOBODY_GROUP=$(id -gn nobody 2>/dev/null) || ag_skip "no user nobody on this host"
command -v setpriv >/dev/null || ag_skip "setpriv (util-linux) is missing"
SOCK=$AG_RUN/anygated.sock
CONF=$AG_RUN/test.conf
CTL=$AG_BUILD/controlplane/anygatectl
ag_config_write "$CONF"
sed -i "s|^\tmax_flows = .*|\tmax_flows = 262144;\n\tcontrol_group = \"$NOBODY_GROUP\";|" "$CONF"
grep -q 'max_flows = 262144' "$CONF" || ag_fail "could not resize the flow table in $CONF"
agd_start "$CONF" || ag_fail "anygated did not come up"
PID=$(cat "$AG_AGD_PIDFILE")
# The run directory must let nobody reach the socket (its group may connect).
chmod 0755 "$AG_RUN"

ctl() { "$CTL" -s "$SOCK" --timeout 60 "$@"; }
json() { "$PY3" -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$PID/status"; }

"$AG_BUILD/tests/integration/ag-flowfill" "$AG_BPFFS" "$FLOWS" "$AG_NAT_ADDR" 10.1.1.11:80 \
	"$AG_VIP:80" || ag_fail "could not fill the flow table"
count=$(ctl --json flows limit 1 | json 'd["count"]')
[ "$count" = "$FLOWS" ] || ag_fail "flows: count $count, want $FLOWS live flows"

rss0=$(rss_kib)
# The slow clients: connect as nobody, send the request, wait until the
# daemon's answer has started to arrive on every connection, then hold them
# (reading nothing) until stdin closes.
cat >"$AG_RUN/slow.py" <<'PY'
import fcntl, socket, struct, sys, termios, time
path, n = sys.argv[1], int(sys.argv[2])
conns = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b"flows limit 100000\n")
    conns.append(s)
def queued(s):
    return struct.unpack("i", fcntl.ioctl(s, termios.FIONREAD, b"\0\0\0\0"))[0]
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not all(queued(s) > 65536 for s in conns):
    time.sleep(0.05)
print("started" if all(queued(s) > 65536 for s in conns) else "not started", flush=True)
sys.stdin.read()
PY
mkfifo "$AG_RUN/slow.ctl"
setpriv --reuid nobody --regid "$NOBODY_GROUP" --clear-groups "$PY3" "$AG_RUN/slow.py" "$SOCK" \
	"$SLOW" <"$AG_RUN/slow.ctl" >"$AG_RUN/slow.out" 2>&1 &
SLOWPID=$!
exec 9>"$AG_RUN/slow.ctl"
wait_for 90 "every slow client got the start of its reply" grep -qx started "$AG_RUN/slow.out" ||
	ag_fail "slow clients: $(cat "$AG_RUN/slow.out")"

# Others are served meanwhile: root's status, and a whole walk read to the end.
ctl --json status >/dev/null || ag_fail "status while $SLOW clients do not read"
shown=$(ctl --json flows limit 100000 | json 'd["shown"], d["count"]')
[ "$shown" = "(100000, $FLOWS)" ] || ag_fail "flows read while others stall: $shown"
rss1=$(rss_kib)
grow=$(((rss1 - rss0) / 1024))
ag_info "anygated RSS with $SLOW clients not reading 'flows limit 100000' ($FLOWS flows):" \
	"$((rss0 / 1024)) MiB -> $((rss1 / 1024)) MiB (+$grow MiB)"
exec 9>&-
wait "$SLOWPID"
# The bound on queued reply bytes is 64 MiB in total; the walks' own buffers are small.
((grow < 64)) || ag_fail "anygated grew by $grow MiB with $SLOW slow readers"
ctl --json status >/dev/null || ag_fail "status after the slow readers left"
exit 0
