#!/usr/bin/env bash
# Short connections must not run a backend out of NAT ports. One client makes
# AG_SHORT_CONNS (default 50,000) short TCP connections (connect, request, the
# backend's answer, close) to VIP:80, AG_SHORT_CONCURRENCY (default 64) at a
# time, as fast as the lab goes, all to one backend (eu-west r1b1) through the
# lab's one NAT address: 64,512 ports for that backend:port. Required: the
# fast path refuses none for lack of NAT ports
# (drop_nat_ports_exhausted stays 0) nor drops anything else; at most 0.1% of
# client timeouts, which the edge did not cause, are tolerated (see below).
# The rate reached is reported.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
CONNS=${AG_SHORT_CONNS:-50000}
CONC=${AG_SHORT_CONCURRENCY:-64}
ag_require_build "$AG_NEWCONN"
ag_lab_start "eu-west:r1b1=1"
# The client's own ports are no limit (it closes second, so it keeps no TIME_WAIT).
nsx client sysctl -qw net.ipv4.ip_local_port_range="1024 65535" ||
	ag_fail "could not widen the client's port range"

nsx client "$AG_NEWCONN" "$AG_VIP" 80 "$CONNS" --concurrency "$CONC" --connect-timeout-ms 3000 \
	--timeout-ms 3000 >"$AG_RUN/short.out" 2>&1
cat "$AG_RUN/short.out"
# The backend's own refusals (listen queue full, a SYN refused by a TIME_WAIT socket).
nsx r1b1 nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTWRecycled TcpExtPAWSEstabRejected TcpExtTCPTimeWaitOverflow 2>/dev/null | sed 's/^/  r1b1 /'
exhausted=$(ag_reason_count drop_nat_ports_exhausted)
ag_log "reasons: $(ag_reasons_nonzero)"
ag_info "short connections: $(ag_kv "$AG_RUN/short.out" ok) of $CONNS ok at $(ag_kv "$AG_RUN/short.out" conn_per_s) conn/s ($CONC at a time) to one backend through one NAT address; drop_nat_ports_exhausted $exhausted"
[ "${exhausted:-x}" = 0 ] ||
	ag_fail "the fast path refused ${exhausted:-an unknown number of} new flows for lack of NAT ports (drop_nat_ports_exhausted)"
# Nothing else was dropped by the fast path either.
drops=$(ag_reasons_nonzero | tr ' ' '\n' | grep '^drop_' | tr '\n' ' ')
[ -z "$drops" ] || ag_fail "the fast path dropped packets: $drops"
# A client timeout the edge did not cause: ag-testsrv forks per connection, and
# on a loaded 2-core box an odd SYN waits past the 3 s budget. Up to 0.1% is
# allowed for that (the edge counted no drop above); more is a failure.
failed=$(ag_kv "$AG_RUN/short.out" failed)
# shellcheck disable=SC2015 # A && B || fail: fails when either fails, as meant
[ "${failed:-x}" != x ] && [ $((failed * 1000)) -le "$CONNS" ] ||
	ag_fail "${failed:-?} of $CONNS short connections failed: $(head -n 1 "$AG_RUN/short.out")"
echo PASS
