#!/bin/bash
# rbac.sh -- the permission matrix, route by route and role by role.
#
# The matrix has one source, the route table (prism.fcgi --routes), and one description, prism-api(7),
# whose entry for each route says "Roles: ...".  This test fails when a route is undocumented, when the
# page and the table disagree, or when the server does not enforce the table: every admin route is called
# anonymously and with a token of each of the eight roles, and must answer 401 / 403 "Required role" exactly
# for the callers the matrix excludes.  A route added without a rule (public by accident) fails because it
# is not in the documented public list.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

PAGE=$top_srcdir/man/prism-api.7
ROLES="admin maintainer finops auditor tenant-maintainer tenant-admin tenant-viewer chat-user"

# --- the table and the page agree ----------------------------------------------------------------------
"$PRISM_FCGI" --routes | awk '$2 ~ /^\/api\/prism\// && $5 !~ /diag/ { print $1, $2, $4 }' >"$T_TMP/table"
t_like "the route table lists admin routes" "$(wc -l <"$T_TMP/table")" '^[0-9]{2,}$'

# Documented roles per "METHOD PATH" from the page: ".B METHOD PATH" then a line "Roles: ...".
sed -e 's/\\-/-/g' -e 's/\\&//g' "$PAGE" | awk -v roles="$ROLES" '
	/^\.B (GET|POST|PUT|PATCH|DELETE) \/api\/prism\// { key = $2 " " $3; next }
	key != "" && /^Roles:/ {
		line = $0; sub(/^Roles:/, "", line)
		if (line ~ /public/) { print key, "public"; key = ""; next }
		n = split(roles, r, " "); out = ""
		gsub(/[,.;]/, " ", line); m = split(line, w, /[ \t]+/)
		for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) if (w[j] == r[i]) { out = out (out ? "," : "") r[i]; break }
		print key, out; key = ""
	}' >"$T_TMP/documented"

missing=0 mismatched=0
while read -r method path perm; do
	doc=$(awk -v k="$method $path" '$1 " " $2 == k { print $3; exit }' "$T_TMP/documented")
	if [ -z "$doc" ]; then
		t_diag "undocumented in prism-api(7): $method $path"
		missing=$((missing + 1))
	elif [ "$doc" != "$perm" ]; then
		t_diag "$method $path: the table allows '$perm', the page says '$doc'"
		mismatched=$((mismatched + 1))
	fi
done <"$T_TMP/table"
t_is "every admin route is documented in prism-api(7)" "$missing" 0
t_is "the page's roles are the table's" "$mismatched" 0
extra=$(awk '{ print $1, $2 }' "$T_TMP/documented" | while read -r m p; do
	grep -qx "$m $p [^ ]*" "$T_TMP/table" || echo "$m $p"; done)
t_is "the page documents no route that does not exist" "$extra" ""

# Public admin routes are a closed list: anything else must need a login.
public=$(awk '$3 == "public" { print $1, $2 }' "$T_TMP/table" | LC_ALL=C sort | tr '\n' ';')
t_is "only the intended admin routes are public" "$public" \
	"GET /api/prism/setup/status;POST /api/prism/auth/login;POST /api/prism/setup/admin;"

# --- the server enforces it ----------------------------------------------------------------------------
adm_start "ratelimit_admin = 0" "ratelimit_login = 0" "offline = true" || { t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN api GET /api/prism/admin/tenants
default_tenant=$(printf '%s' "$T_BODY" | node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>{const a=JSON.parse(d);process.stdout.write((a.find(t=>t.isDefault)||a[0]||{})._id||"")})')
declare -A TOK
TOK[admin]=$ADM_TOKEN
for r in $ROLES; do
	[ "$r" = admin ] && continue
	TOK[$r]=$(adm_user "u-$r" "$r" "[\"$default_tenant\"]")
	[ -n "${TOK[$r]}" ] || t_diag "no token for $r"
done

zero=000000000000000000000000
# Routes that end a session go last, and the session is renewed afterwards.
sort -k2 "$T_TMP/table" | awk '$2 ~ /logout/ { last = last $0 "\n"; next } { print } END { printf "%s", last }' >"$T_TMP/order"

bad=0 checked=0
while read -r method path perm; do
	url=$(printf '%s' "$path" | sed -e "s/:[A-Za-z]*/$zero/g")
	args=(-X "$method")
	case $method in POST | PUT | PATCH) args+=(-H 'Content-Type: application/json' --data-binary '{}') ;; esac
	# Anonymous.
	code=$(curl -s -o "$T_TMP/b" -w '%{http_code}' "${args[@]}" "$T_BASE$url")
	if [ "$perm" = public ]; then
		[ "$code" != 401 ] || { t_diag "anonymous $method $path: 401 although public"; bad=$((bad + 1)); }
	else
		[ "$code" = 401 ] || { t_diag "anonymous $method $path: $code, expected 401"; bad=$((bad + 1)); }
	fi
	checked=$((checked + 1))
	[ "$perm" = public ] && continue
	for r in $ROLES; do
		code=$(curl -s -o "$T_TMP/b" -w '%{http_code}' "${args[@]}" -H "Authorization: Bearer ${TOK[$r]}" "$T_BASE$url")
		denied=no
		[ "$code" = 403 ] && grep -q 'Required role' "$T_TMP/b" && denied=yes
		if [[ ",$perm," == *",$r,"* ]]; then
			if [ $denied = yes ] || [ "$code" = 401 ]; then
				t_diag "$r $method $path: $code $(head -c 200 "$T_TMP/b"), expected to pass the role check"
				bad=$((bad + 1))
			fi
		elif [ $denied = no ]; then
			t_diag "$r $method $path: $code $(head -c 200 "$T_TMP/b"), expected 403 Required role"
			bad=$((bad + 1))
		fi
		checked=$((checked + 1))
		if [[ $path == */logout ]] && [[ ",$perm," == *",$r,"* ]]; then
			if [ "$r" = admin ]; then TOK[admin]=$(adm_login "$ADM_USER" "$ADM_PASS"); else TOK[$r]=$(adm_login "u-$r" "u-$r-password-1"); fi
		fi
	done
done <"$T_TMP/order"
t_ok "walked $checked route/caller pairs"
t_is "every route enforces the matrix for every role" "$bad" 0

# A 403 names the roles that would pass, as the original did.
TOKEN=${TOK[finops]} api POST /api/prism/admin/tenants '{}'
t_is "denied: 403" "$T_STATUS" 403
t_is "in the admin error shape" "$(jget error)" "Access denied. Required role: admin or maintainer"
t_is "with a stable code" "$(jget code)" forbidden
t_done
