#!/bin/bash
# docs.sh -- the documentation covers what the programs do.
#
#  - prism.conf(5) has an entry ".TP" + ".B key" for every key of 'prismctl keys', giving the table's
#    description, "Default: \fBvalue\fR." (or "Default: empty."), "Environment: \fBVAR\fR" when the key has
#    a variable (and \fBVAR_FILE\fR for a secret), and "Reloaded by SIGHUP." or "Changing it needs a
#    restart." as the table says;
#  - conf-examples/prism.conf has "# key = default" for every key, after a comment line, and loads with no
#    error but the two missing secrets;
#  - prism.fcgi(8) documents every option of 'prism.fcgi --help', prismctl(8) every command and option of
#    'prismctl help'.
#
# The pages and the example spell the build-dependent defaults (data_dir, run_dir, store) as a build with
# the default prefix /usr/local has them; the table's values are mapped to that spelling before comparing,
# so that the test also passes in other builds (make distcheck).
. "$(dirname "$0")/lib.sh"

CONF5=$top_srcdir/man/prism.conf.5
FCGI8=$top_srcdir/man/prism.fcgi.8
CTL8=$top_srcdir/man/prismctl.8
EXAMPLE=$top_srcdir/conf-examples/prism.conf

if ! keys=$("$PRISMCTL" keys) || [ -z "$keys" ]; then
	t_fail "prismctl keys prints the configuration table"
	t_done
	exit 1
fi
# The table with US instead of TAB: read would merge the empty fields between two TABs (IFS whitespace).
rows=$(printf '%s\n' "$keys" | tr '\t' '\037')

# The roff sources with "\-" as "-" and "\&" removed, so that options and paths read as typed.
norm() { sed -e 's/\\-/-/g' -e 's/\\&//g' "$1"; }
norm "$CONF5" >"$T_TMP/conf5"
norm "$FCGI8" >"$T_TMP/fcgi8"
norm "$CTL8" >"$T_TMP/ctl8"

# A variable of the configuration must not leak in from the caller's environment.
clean_env=(env -u PRISM_CONFIG)
while IFS=$'\037' read -r _ _ var _ _; do
	[ "$var" = - ] || clean_env+=(-u "$var" -u "${var}_FILE")
done <<<"$rows"

# Build-dependent directories, recovered from the defaults that contain them.
field() { awk -F '\t' -v k="$1" -v f="$2" '$1 == k { print $f }' <<<"$keys"; }
localstatedir=$(field data_dir 2)
localstatedir=${localstatedir%/lib/model-prism}
runstatedir=$(field run_dir 2)
runstatedir=${runstatedir%/model-prism}
# doc_default VALUE: the value as the documentation spells it (default prefix /usr/local).
doc_default() {
	local v=$1
	case $v in
	"$runstatedir"/*) v=/usr/local/var/run${v#"$runstatedir"} ;;
	"$localstatedir"/*) v=/usr/local/var${v#"$localstatedir"} ;;
	sqlite:"$localstatedir"/*) v=sqlite:/usr/local/var${v#sqlite:"$localstatedir"} ;;
	esac
	printf '%s' "$v"
}

# The secret keys: the ones check-config --show prints as (set)/(unset).  Needs a valid configuration.
secrets=" "
if t_make_config && show=$("${clean_env[@]}" "$PRISMCTL" check-config --config "$T_CONF" --show 2>&1); then
	secrets=" $(printf '%s\n' "$show" | awk '$2 == "=" && ($3 == "(set)" || $3 == "(unset)") { printf "%s ", $1 }')"
	t_like "check-config --show hides the secrets" "$secrets" ' jwt_secret .*encryption_key '
else
	t_fail "check-config --show on a configuration from prismctl init" "${show:-prismctl init failed}"
fi

# The lines of a key's entry in prism.conf(5): after ".TP" and ".B key", up to the next .TP, .SH or .SS.
entry() {
	awk -v key="$1" '
		found && /^\.(TP|SH|SS)( |$)/ { exit }
		found { print; next }
		prev == ".TP" && $0 == ".B " key { found = 1 }
		{ prev = $0 }' "$T_TMP/conf5"
}
has() { printf '%s\n' "$1" | grep -qF -- "$2"; }

while IFS=$'\037' read -r key dflt var reload desc; do
	dflt=$(doc_default "$dflt")

	# prism.conf(5)
	problems=()
	text=$(entry "$key")
	if [ -z "$text" ]; then
		problems+=("no entry '.TP' + '.B $key'")
	else
		has "$text" "$desc" || problems+=("description missing: $desc")
		if [ -z "$dflt" ]; then
			has "$text" "Default: empty." || problems+=("'Default: empty.' missing")
		else
			has "$text" "Default: \\fB$dflt\\fR." || problems+=("'Default: \\fB$dflt\\fR.' missing")
		fi
		if [ "$var" = - ]; then
			has "$text" "Environment:" && problems+=("names an environment variable; the key has none")
		else
			has "$text" "Environment: \\fB$var\\fR" || problems+=("'Environment: \\fB$var\\fR' missing")
			case $secrets in
			*" $key "*) has "$text" "\\fB${var}_FILE\\fR" || problems+=("'\\fB${var}_FILE\\fR' missing") ;;
			esac
		fi
		if [ "$reload" = reload ]; then
			has "$text" "Reloaded by SIGHUP." || problems+=("'Reloaded by SIGHUP.' missing")
			has "$text" "needs a restart" && problems+=("says it needs a restart; the table says reload")
		else
			has "$text" "Changing it needs a restart." || problems+=("'Changing it needs a restart.' missing")
			has "$text" "Reloaded by SIGHUP" && problems+=("says SIGHUP reloads it; the table says restart")
		fi
	fi
	if [ ${#problems[@]} -eq 0 ]; then
		t_ok "prism.conf.5 documents $key"
	else
		t_fail "prism.conf.5 documents $key" "${problems[@]}"
	fi

	# conf-examples/prism.conf
	line="# $key = $dflt"
	line=${line% }
	n=$(grep -cFx -- "$line" "$EXAMPLE")
	before=$(grep -Fx -B1 -- "$line" "$EXAMPLE" | head -n1)
	if [ "$n" != 1 ]; then
		t_fail "conf-examples/prism.conf has '$line'" "found $n times"
	elif [ "$before" = "$line" ] || ! [[ $before =~ ^#\ [^[:space:]] ]] || [[ $before =~ ^#\ [a-z_]+\ = ]]; then
		t_fail "conf-examples/prism.conf has '$line'" "not preceded by a comment: $before"
	else
		t_ok "conf-examples/prism.conf has '$line'"
	fi
done <<<"$rows"

# The example is installed as the first configuration: it must load, and fail only for the secrets.
"${clean_env[@]}" "$PRISMCTL" check-config --config "$EXAMPLE" >"$T_TMP/check.out" 2>"$T_TMP/check.err"
rc=$?
t_is "check-config on conf-examples/prism.conf exits 1 (no secrets)" "$rc" 1
got=$(sed -E 's/^(jwt_secret|encryption_key) is not set: .*/\1 is not set: .../' "$T_TMP/check.err")
want=$(printf '%s\n' "jwt_secret is not set: ..." "encryption_key is not set: ..." \
	"$EXAMPLE: configuration is NOT valid")
t_is "check-config on conf-examples/prism.conf complains only about the secrets" "$got" "$want"

# Lines of one section (.SH NAME ... next .SH) of a normalised page.
section() { awk -v s=".SH $2" '$0 == s { on = 1; next } on && /^\.SH / { exit } on' "$1"; }

# prism.fcgi(8): every option of --help is an OPTIONS entry.
options=$("$PRISM_FCGI" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u)
opts_section=$(section "$T_TMP/fcgi8" OPTIONS)
for opt in $options; do
	if printf '%s\n' "$opts_section" | grep -qE -- "^\.B[IR]? .*${opt}([^a-z-]|$)"; then
		t_ok "prism.fcgi.8 documents $opt"
	else
		t_fail "prism.fcgi.8 documents $opt" "no '.B'/'.BR'/'.BI' line with $opt under OPTIONS"
	fi
done

# prismctl(8): every command of 'prismctl help' is a COMMANDS entry, and every option is mentioned there.
usage=$("$PRISMCTL" help)
commands=$(printf '%s\n' "$usage" | sed -nE 's/^(usage:)? *prismctl ([a-z][a-z-]*).*/\2/p')
cmds_section=$(section "$T_TMP/ctl8" COMMANDS)
for cmd in $commands; do
	prev=$(printf '%s\n' "$cmds_section" | grep -Fx -B1 -- ".B $cmd" | head -n1)
	if [ "$prev" = .TP ]; then
		t_ok "prismctl.8 documents the command $cmd"
	else
		t_fail "prismctl.8 documents the command $cmd" "no '.TP' + '.B $cmd' under COMMANDS"
	fi
done
for opt in $(printf '%s\n' "$usage" | grep -oE -- '--[a-z][a-z-]*' | sort -u); do
	if printf '%s\n' "$cmds_section" | grep -qE -- "^\.B[IR]? ${opt}([^a-z-]|$)"; then
		t_ok "prismctl.8 documents $opt"
	else
		t_fail "prismctl.8 documents $opt" "no '.B'/'.BI' line starting with $opt under COMMANDS"
	fi
done

# prism-api(7) is assembled from man/prism-api.d/ (tools/assemble-api-man); the committed page is current.
if cmp -s <(cat "$top_srcdir"/man/prism-api.d/*.7) "$top_srcdir/man/prism-api.7"; then
	t_ok "man/prism-api.7 is up to date with man/prism-api.d"
else
	t_fail "man/prism-api.7 is up to date with man/prism-api.d" "run tools/assemble-api-man"
fi
# Every admin route of the table has its entry (the roles are checked by rbac.sh).
undocumented=$("$PRISM_FCGI" --routes | awk '$2 ~ /^\/api\/prism\// && $5 !~ /diag/ { print $1, $2 }' | while read -r m p; do
	sed -e 's/\\-/-/g' "$top_srcdir/man/prism-api.7" | grep -qFx ".B $m $p" || echo "$m $p"; done)
t_is "prism-api(7) has an entry for every admin route" "$undocumented" ""

t_done
