# admin_lib.sh -- helpers for admin API tests, sourced after lib.sh.
#
#   adm_start [config lines...]  starts prism.fcgi (2 processes of at most 4 threads, or $ADM_PRISM_ARGS)
#                                behind lighttpd, creates the first admin
#                                (root / root-password-1), logs in and completes the setup.  Sets ADM_TOKEN
#                                (the admin's session token) and ADM_KEY (the default tenant's API key).
#   api METHOD PATH [JSON]       one request with $TOKEN as bearer (when set); sets T_STATUS, T_BODY.
#   adm_login USER PASSWORD      prints a session token (empty on failure).
#   jget PATH                    a field of the last body (t_json on T_BODY).
#   adm_user NAME ROLE [TENANTS-JSON]  creates a local user with password NAME-password-1 and prints a token.
#   adm_keep_bodies              from now on api also appends every body to $T_TMP/all-bodies (for the final
#                                "no secrets" checks); the unwrapped api stays available as _api_orig.
#   jeval EXPR                   a JavaScript expression over the last body `d` (the raw text when not JSON).
#   rec FILE EXPR                a JavaScript expression over the records `r` of a JSON-lines file.

ADM_USER=root
ADM_PASS=root-password-1

api() {
	local m=$1 p=$2 args=(-X "$1")
	if [ -n "${TOKEN:-}" ]; then args+=(-H "Authorization: Bearer $TOKEN"); fi
	if [ $# -ge 3 ]; then
		args+=(-H 'Content-Type: application/json' --data-binary "$3")
	elif [ "$m" != GET ] && [ "$m" != DELETE ]; then
		args+=(--data-binary '')   # a length, as browsers send (lighttpd answers 411 without one)
	fi
	t_http "${args[@]}" "$T_BASE$p"
}

jget() { printf '%s' "$T_BODY" | t_json "$1"; }

adm_login() {
	local tok
	tok=$(curl -s -X POST -H 'Content-Type: application/json' \
		--data-binary "{\"username\":\"$1\",\"password\":\"$2\"}" "$T_BASE/api/prism/auth/login" | t_json token)
	[ "$tok" = "<undefined>" ] && tok=
	printf '%s' "$tok"
}

adm_start() {
	t_make_config "$@" || return 1
	cp "$top_srcdir/data/modelsdev.json" "$T_TMP/data/"   # the bundled model metadata, as make install puts it
	# shellcheck disable=SC2086
	t_start_prism ${ADM_PRISM_ARGS:---processes 2 --threads 4} || return 1
	t_start_lighttpd daemon || return 1
	local i   # the store may connect after the start (MongoDB): setup needs it
	for i in $(seq 1 100); do
		[ "$(curl -s -o /dev/null -w '%{http_code}' "$T_BASE/health")" = 200 ] && break
		sleep 0.1
	done
	TOKEN= api POST /api/prism/setup/admin "{\"username\":\"$ADM_USER\",\"password\":\"$ADM_PASS\"}"
	[ "$T_STATUS" = 200 ] || { t_diag "setup/admin: $T_STATUS $T_BODY"; return 1; }
	ADM_TOKEN=$(adm_login "$ADM_USER" "$ADM_PASS")
	[ -n "$ADM_TOKEN" ] || { t_diag "login failed"; return 1; }
	TOKEN=$ADM_TOKEN api POST /api/prism/setup/complete '{}'
	[ "$T_STATUS" = 200 ] || { t_diag "setup/complete: $T_STATUS $T_BODY"; return 1; }
	ADM_KEY=$(jget defaultTenant.apiKey)
	return 0
}

adm_user() {
	local name=$1 role=$2 tenants=${3:-[]}
	TOKEN=$ADM_TOKEN api POST /api/prism/admin/users \
		"{\"username\":\"$name\",\"password\":\"$name-password-1\",\"role\":\"$role\",\"tenants\":$tenants}"
	[ "$T_STATUS" = 201 ] || { t_diag "create user $name: $T_STATUS $T_BODY"; return 1; }
	adm_login "$name" "$name-password-1"
}

adm_keep_bodies() {
	eval "$(declare -f api | sed '1s/^api/_api_orig/')"
	api() { _api_orig "$@"; printf '%s\n' "$T_BODY" >>"$T_TMP/all-bodies"; }
}

jeval() {
	printf '%s' "$T_BODY" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{let d;try{d=JSON.parse(s)}catch(e){d=s}
		const r=(new Function("d","return ("+process.argv[1]+")"))(d);
		process.stdout.write(r===undefined?"<undefined>":typeof r==="string"?r:JSON.stringify(r))})' "$1"
}
# rec FILE EXPR: a JavaScript expression over the lines of a JSON-lines file `r` (an array), such as the
# requests a fake upstream recorded (--record).
rec() {
	node -e 'const fs=require("fs");const r=fs.readFileSync(process.argv[1],"utf8").split("\n").filter(Boolean).map(JSON.parse);
		const v=(new Function("r","return ("+process.argv[2]+")"))(r);
		process.stdout.write(typeof v==="string"?v:JSON.stringify(v))' "$1" "$2"
}
