#!/bin/bash
# man.sh -- the man pages format without a warning, in mandoc and in groff.
#
# One TAP line per page and tool.  A missing tool skips its lines; the script skips as a whole only when
# neither is installed.
. "$(dirname "$0")/lib.sh"

PAGES="man/prism.fcgi.8 man/prismctl.8 man/prism.conf.5 man/prism-api.7"

mandoc=${MANDOC:-}
[ -n "$mandoc" ] || mandoc=$(command -v mandoc || true)
groff=${GROFF:-}
[ -n "$groff" ] || groff=$(command -v groff || true)
[ -n "$mandoc" ] || [ -n "$groff" ] || t_skip_all "neither mandoc nor groff is installed"

# check_quiet NAME CMD... : passes when CMD exits 0 and prints nothing at all (warnings are output).
check_quiet() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1)
	rc=$?
	if [ "$rc" -eq 0 ] && [ -z "$out" ]; then
		t_ok "$name"
	else
		t_fail "$name" "exit status $rc" "$out"
	fi
}

for page in $PAGES; do
	src=$top_srcdir/$page
	if [ -n "$mandoc" ]; then
		check_quiet "mandoc -Tlint -W warning $page" "$mandoc" -Tlint -W warning "$src"
	else
		t_ok "mandoc -Tlint $page # SKIP mandoc is not installed"
	fi
	if [ -n "$groff" ]; then
		check_quiet "groff -man -ww -z $page" "$groff" -man -ww -z "$src"
	else
		t_ok "groff -man -ww -z $page # SKIP groff is not installed"
	fi
done

t_done
