#!/usr/bin/env bash
# Traffic not for a VIP passes through untouched while XDP is attached: the
# client pings the edge, the edge and a router reach backends directly.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
ag_test_begin
# shellcheck disable=SC2119 # no group given on purpose: the default lab config
ag_lab_start

attached=$(edge_xdp_ifaces | tr '\n' ' ')
for i in e0 e1 e2 e3; do
	[[ " $attached" == *" $i "* ]] || ag_fail "XDP not attached to $i (attached: $attached)"
done
nsx client ping -c 3 -i 0.2 -W 2 10.0.0.1 || ag_fail "client cannot ping the edge 10.0.0.1"
r=$(nsx edge curl -s --connect-timeout 5 --max-time 10 http://10.2.1.11/) ||
	ag_fail "edge cannot reach backend 10.2.1.11:80 directly"
[ "$r" = r2b1 ] || ag_fail "edge -> 10.2.1.11:80 answered '$r', expected r2b1"
r=$(nsx edge "$AG_TESTCLI" 10.3.1.12 5000 1) || ag_fail "edge -> 10.3.1.12:5000 (UDP) failed: $r"
[ "$r" = r3b2 ] || ag_fail "edge -> 10.3.1.12:5000 answered '$r', expected r3b2"
nsx r1 ping -c 3 -i 0.2 -W 2 10.1.0.1 || ag_fail "router r1 cannot ping the edge 10.1.0.1"
nsx r1b1 ping -c 3 -i 0.2 -W 2 10.255.0.1 || ag_fail "backend r1b1 cannot ping the edge's 10.255.0.1"
echo "PASS: non-VIP traffic flows with XDP attached to $attached"
