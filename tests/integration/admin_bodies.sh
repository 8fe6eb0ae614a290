#!/bin/bash
# admin_bodies.sh -- malformed bodies against every write endpoint of the admin API.
#
# Each POST/PUT/PATCH route of the table (prism.fcgi --routes) gets, as the admin: broken JSON, a JSON
# array, a bare string, invalid UTF-8, an object whose usual fields all have the wrong type, and a body
# over max_body_size.  Nothing may answer 5xx; the malformed ones must answer 4xx (routes that take no body
# are listed below and may ignore it); the server must still answer afterwards, and nothing is created.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "ratelimit_admin = 0" "ratelimit_login = 0" "offline = true" "max_body_size = 64k" ||
	{ t_fail "started"; t_done; exit; }
TOKEN=$ADM_TOKEN

# Routes whose handler reads no body (path patterns).
BODYLESS='/auth/logout$|/setup/complete$|/categories/seed$|/categories/reset-defaults$|/circuit-breaker/reset$|/enrichment/refresh$|/rotate-key$|/keys/:keyId/rotate$|/revoke-sessions$|/:id/test$|/:id/check$|/:id/discover$|/rule-sets/seed-defaults$|/rule-sets/:id/set-default$'

"$PRISM_FCGI" --routes | awk '$2 ~ /^\/api\/prism\// && $5 !~ /diag/ && $1 ~ /^(POST|PUT|PATCH)$/ { print $1, $2 }' |
	grep -v '/auth/logout$' >"$T_TMP/writes"
t_like "write routes found" "$(wc -l <"$T_TMP/writes")" '^[0-9]{2,}$'

counts_before=$(for c in users tenants providers routingcategories; do "$PRISMCTL" dump "$c" --config "$T_CONF" | wc -l; done | tr '\n' ' ')

printf '{"name":' >"$T_TMP/broken"
printf '[1,2,3]' >"$T_TMP/array"
printf '"just a string"' >"$T_TMP/string"
printf '{"name":"\xff\xfe","slug":"x\xc3"}' >"$T_TMP/utf8"
cat >"$T_TMP/types" <<'JSON'
{"name":123,"slug":[],"username":{},"password":5,"role":7,"type":false,"apiKey":1,"label":2,"key":3,
 "costTier":4,"enabled":"yes","active":"no","tenants":"x","providerIds":{},"config":[],"items":"x","ids":5,
 "profileIds":"x","providerId":9,"modelId":[],"tier":[],"priority":"high","url":1,"bindDn":2,"searchFilter":3,
 "groupMapping":{},"logLevel":1,"currentPassword":1,"newPassword":2,"keyLifetimeDays":"x","expiresAt":1,
 "modelConfig":"all","routing":[],"rateLimit":1,"pricing":[],"mode":3,"list":"x"}
JSON
head -c 70000 /dev/zero | tr '\0' 'a' | sed 's/^/{"name":"/; s/$/"}/' >"$T_TMP/huge"

fivexx=0 accepted=0 n=0
while read -r method path; do
	url=$(printf '%s' "$path" | sed -e 's/:[A-Za-z]*/000000000000000000000000/g')
	for f in broken array string utf8 types huge; do
		code=$(curl -s -o "$T_TMP/b" -w '%{http_code}' -X "$method" -H "Authorization: Bearer $TOKEN" \
			-H 'Content-Type: application/json' --data-binary "@$T_TMP/$f" "$T_BASE$url")
		n=$((n + 1))
		case $code in
		5*) t_diag "$method $path with $f: $code $(head -c 200 "$T_TMP/b")"; fivexx=$((fivexx + 1)) ;;
		2*) if ! printf '%s' "$path" | grep -Eq "$BODYLESS"; then
			t_diag "$method $path accepted the $f body: $code $(head -c 200 "$T_TMP/b")"
			accepted=$((accepted + 1))
		    fi ;;
		esac
		if [ "$f" = huge ] && [ "$code" != 413 ] && ! printf '%s' "$path" | grep -Eq "$BODYLESS"; then
			[ "$code" = 404 ] || { t_diag "$method $path huge body: $code"; accepted=$((accepted + 1)); }
		fi
	done
done <"$T_TMP/writes"
t_ok "sent $n malformed bodies"
t_is "no malformed body causes a 5xx" "$fivexx" 0
t_is "no malformed body is accepted" "$accepted" 0

# Error messages name the field.
api POST /api/prism/admin/tenants '{"slug":"ok-slug","name":123}'
t_is "wrong type: 400" "$T_STATUS" 400
t_like "names the field" "$(jget error)" '^name: '
api POST /api/prism/admin/tenants '{"name":"x"}'
t_like "missing field named" "$(jget error)" 'slug'
api POST /api/prism/admin/users "{\"username\":\"ok\",\"password\":\"long-enough-1\",\"role\":\"superuser\"}"
t_like "bad enum named" "$(jget error)" '^role: '

counts_after=$(for c in users tenants providers routingcategories; do "$PRISMCTL" dump "$c" --config "$T_CONF" | wc -l; done | tr '\n' ' ')
t_is "nothing was created by malformed requests" "$counts_after" "$counts_before"
api GET /api/prism/auth/me
t_is "the server still answers" "$T_STATUS" 200
t_done
