#!/bin/bash
# What the kernel's teardown of a namespace costs everyone else: builds one
# scratch namespace holding N objects of a kind, deletes it, and measures
# how long a link change in another scratch namespace waits on the rtnl lock
# meanwhile (the longest of 100 tries, 20 ms apart). Needs root; touches
# only the two namespaces it creates (tsim-teardown-x, tsim-teardown-probe).
# Usage: sudo scripts/teardown-cost/teardown-cost.sh N bridges|ports|veths
set -euo pipefail
N=$1 mode=$2
x=tsim-teardown-x probe=tsim-teardown-probe
trap 'ip netns del $x 2>/dev/null || true; ip netns del $probe 2>/dev/null || true' EXIT
ip netns add $x
ip netns add $probe
{
	case $mode in
	bridges) for i in $(seq 1 "$N"); do echo "link add br$i type bridge"; done ;;
	ports) echo "link add br0 type bridge"; for i in $(seq 1 "$N"); do echo "link add va$i type veth peer name vb$i"; echo "link set va$i master br0"; done ;;
	veths) for i in $(seq 1 "$N"); do echo "link add va$i type veth peer name vb$i"; done ;;
	*) echo "mode: bridges, ports or veths" >&2; exit 2 ;;
	esac
} | ip -n $x -batch -
ip netns del $x
max=0
for j in $(seq 1 100); do
	a=$(date +%s%N); ip -n $probe link set lo mtu $((60000 + j)); b=$(date +%s%N)
	d=$(((b - a) / 1000000)); ((d > max)) && max=$d
	sleep 0.02
done
echo "$N $mode: longest rtnl wait of another namespace ${max} ms"
