#!/bin/bash
# Store write throughput on each backend, side by side from one run; writes bench/RESULTS-store.md.
# Targets on a 2-core machine: >= 20,000 request logs/s into SQLite, >= 5,000/s into FerretDB.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${STORE_BENCH:-$top/bench/store_bench}
records=${RECORDS:-40000}
tmp=$(mktemp -d /tmp/prism-bench.XXXXXX)
ferret_pid=
cleanup() { [ -n "$ferret_pid" ] && kill "$ferret_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

rows=()
rows+=("$("$bin" "sqlite:$tmp/bench.db" "$records")")
ferretdb=$(command -v ferretdb || echo "$(go env GOPATH 2>/dev/null)/bin/ferretdb")
if [ -x "$ferretdb" ]; then
	port=$((20000 + RANDOM % 40000))
	mkdir -p "$tmp/ferret"
	"$ferretdb" --handler=sqlite --sqlite-url="file:$tmp/ferret/" --listen-addr="127.0.0.1:$port" \
		--telemetry=disable --log-level=error --state-dir="$tmp/ferret" --debug-addr=- >"$tmp/ferret.log" 2>&1 &
	ferret_pid=$!
	sleep 1
	rows+=("$("$bin" "mongodb://127.0.0.1:$port/bench" "$((records / 4))" | sed 's/^mongodb/mongodb (FerretDB 1.24, SQLite handler)/')")
else
	rows+=("mongodb (FerretDB)	-	not installed	not installed	-")
fi

{
	echo "# Store write throughput"
	echo
	echo "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%Y-%m-%dT%H:%MZ); model-prism $(git -C "$top" describe --always 2>/dev/null)."
	echo "Command: \`make bench\` (bench/run-store.sh): $(printf '%s' "${rows[0]}" | cut -f5) writer threads, request logs in batches of 100, increments over 3 daily dimensions (model, category, user)."
	echo
	echo "| backend | records | request logs/s | daily-stat increments/s |"
	echo "|---|---|---|---|"
	for r in "${rows[@]}"; do IFS=$'\t' read -r b n l i _ <<<"$r"; echo "| $b | $n | $l | $i |"; done
	echo
	echo "Targets: >= 20,000 logs/s into SQLite, >= 5,000/s into FerretDB."
	echo
	echo "FerretDB 1.x applies updates non-atomically (read, change, write back), so on FerretDB the MongoDB"
	echo "backend serialises increments with a lock document (collection prismlocks): three round trips each."
	echo "On MongoDB itself an increment is one server-side \$inc."

} | tee "$top/bench/RESULTS-store.md"
