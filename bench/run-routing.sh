#!/bin/bash
# The routing decision without the classifier, per request; writes bench/RESULTS-routing.md.
# Target (issue 7): under 50 us per request for a 20-message conversation.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${ROUTE_BENCH:-$top/bench/route_bench}
iters=${ITERATIONS:-20000}
table=$("$bin" "$iters") || { echo "route_bench failed" >&2; exit 1; }
{
	echo "# Routing decision"
	echo
	echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%d GiB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); $(date -u +%Y-%m-%dT%H:%MZ); model-prism $(git -C "$top" rev-parse --short HEAD 2>/dev/null || echo unknown)."
	echo "Command: \`make bench\` (bench/run-routing.sh: bench/route_bench $iters), one thread."
	echo
	echo "$table"
	echo
	echo "One decision: route_decide without the classifier (signals, rule set, overrides, selection among 40"
	echo "models of 2 providers), as the gateway runs it per routed request.  Target: median < 50 us for a"
	echo "20-message conversation (the ratio column is median / 50 us; below 1 meets it)."
} >"$top/bench/RESULTS-routing.md"
cat "$top/bench/RESULTS-routing.md"
