#!/bin/sh
# tests/run.sh -- the whole test suite: installs what the tests need, builds, runs make check (unit suites
# and integration tests against real lighttpd and Apache), prints the logs of failed tests, and ends with
# one line "N passed, N failed, N skipped".  Exit status 0 only when nothing failed.
#
#   tests/run.sh                 everything
#   tests/run.sh --distcheck     also make distcheck (the release tarball builds and passes its checks)
cd "$(dirname "$0")/.." || exit 1
tools/install-deps --test || exit 1
if [ ! -x configure ]; then ./autogen.sh >/dev/null || exit 1; fi
if [ ! -f Makefile ]; then ./configure --quiet --enable-werror || exit 1; fi
make -j2 >/dev/null || { make; exit 1; }

extra_pass=0
extra_fail=0
if [ "${1:-}" = "--distcheck" ]; then
	# The unpacked tarball has no node_modules; its tests use the ones installed here.
	PRISM_NODE_MODULES=$(pwd)/tests/node/node_modules
	export PRISM_NODE_MODULES
	if make distcheck >distcheck.log 2>&1; then
		extra_pass=1
		echo "PASS: make distcheck"
	else
		extra_fail=1
		echo "FAIL: make distcheck"
		# Name the failed tests and show their logs; the build tree is left behind on failure.
		grep -E '^(FAIL|ERROR|XPASS):' distcheck.log
		for log in $(sed -n 's/^\(FAIL\|ERROR\|XPASS\): \([^ ]*\) .*/\2/p' distcheck.log | sort -u); do
			for f in model-prism-*/_build/sub/"${log%.sh}".log; do
				[ -f "$f" ] || continue
				echo "=============== distcheck: $f"
				grep -v -E '^(ok |PASS: )' "$f" | tail -n 80
			done
		done
		tail -n 30 distcheck.log
	fi
fi

# Fresh results each run.
find tests -name '*.trs' -exec rm -f {} +
make -j2 -k check >check.log 2>&1
grep -E '^(FAIL|ERROR|XPASS):' check.log

# Each .trs file holds one ":test-result:" line per TAP line of its test program.
results=$(cat tests/unit/*.trs tests/integration/*.trs 2>/dev/null | sed -n 's/^:test-result: //p')
pass=$(printf '%s\n' "$results" | grep -c -E '^(PASS|XFAIL)$')
fail=$(printf '%s\n' "$results" | grep -c -E '^(FAIL|ERROR|XPASS)$')
skip=$(printf '%s\n' "$results" | grep -c -E '^SKIP$')
pass=$((pass + extra_pass))
fail=$((fail + extra_fail))

if [ "$fail" -gt 0 ]; then
	for trs in tests/unit/*.trs tests/integration/*.trs; do
		grep -q -E '^:test-result: (FAIL|ERROR|XPASS)' "$trs" || continue
		log=${trs%.trs}.log
		echo "=============== $log"
		grep -v -E '^(ok |PASS: )' "$log"
	done
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
