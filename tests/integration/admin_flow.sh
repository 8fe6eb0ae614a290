#!/bin/bash
# admin_flow.sh -- the admin API end to end through lighttpd, as an operator meets it: a closed API until
# setup, the first admin, login, a provider discovered from a fake upstream, a tenant and its keys, role
# denials, token revocation, shared-memory invalidation on writes, the audit trail, and a login through a
# real slapd.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
. "$(dirname "$0")/slapd.sh"
t_require "$LIGHTTPD" curl node /usr/sbin/slapd

t_make_config "ratelimit_login = 20" "trusted_proxies = 127.0.0.1" || { t_fail "config"; t_done; exit; }
cp "$top_srcdir/data/modelsdev.json" "$T_TMP/data/"
t_start_prism --processes 2 --threads 4 || { t_fail "daemon started"; t_done; exit; }
t_start_lighttpd daemon || { t_fail "lighttpd started"; t_done; exit; }

# --- before setup ------------------------------------------------------------------------------------------
TOKEN= api GET /api/prism/admin/tenants
t_is "before setup the admin API is closed" "$T_STATUS" 503
t_is "with the setupRequired code" "$(jget code)" setupRequired
TOKEN= api GET /api/prism/setup/status
t_is "setup status" "$T_BODY" '{"setupComplete":false,"adminCreated":false}'
TOKEN= api POST /api/prism/setup/admin '{"username":"Root ","password":"short"}'
t_is "a short password is refused" "$T_STATUS" 400
t_like "naming the field" "$(jget error)" '^password: '
TOKEN= api POST /api/prism/setup/admin "{\"username\":\" $ADM_USER \",\"password\":\"$ADM_PASS\"}"
t_is "the first admin is created" "$T_STATUS" 200
TOKEN= api POST /api/prism/setup/admin '{"username":"intruder","password":"intruder-pw-1"}'
t_is "a second first admin is refused" "$T_STATUS" 409
TOKEN= api POST /api/prism/setup/complete '{}'
t_is "completing needs a login" "$T_STATUS" 401
ADM_TOKEN=$(adm_login "$ADM_USER" "$ADM_PASS")
t_like "the admin logs in (name trimmed, lower case)" "$ADM_TOKEN" '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'
TOKEN=$ADM_TOKEN api GET /api/prism/auth/me
t_is "me before completion" "$(jget username)/$(jget role)" "root/admin"
t_is "me has no password hash" "$(jget passwordHash)" "<undefined>"
TOKEN=$ADM_TOKEN api POST /api/prism/setup/complete '{}'
t_is "setup completes" "$T_STATUS" 200
ADM_KEY=$(jget defaultTenant.apiKey)
t_like "the default tenant has a random key, shown once" "$ADM_KEY" '^omp-[0-9a-f]{64}$'
t_like "built-in categories seeded" "$(jget categories.created)" '^[1-9][0-9]+$'
TOKEN=$ADM_TOKEN api POST /api/prism/setup/complete '{}'
t_is "setup completes once" "$T_STATUS" 409
TOKEN= api GET /api/prism/setup/status
t_is "setup status after" "$T_BODY" '{"setupComplete":true,"adminCreated":true}'
TOKEN=$ADM_TOKEN
api GET /api/prism/admin/tenants
t_is "after setup the API is open" "$T_STATUS" 200
t_unlike "no response shows the default key again" "$T_BODY" "$ADM_KEY"

# --- a provider discovered from a fake upstream ----------------------------------------------------------
node "$top_srcdir/tests/fixtures/fake_upstream.js" "$T_TMP/up.port" --key up-secret-key-123 \
	--record "$T_TMP/up.jsonl" >"$T_TMP/up.log" 2>&1 &
t_track $!
t_wait_for test -s "$T_TMP/up.port"
UP=http://127.0.0.1:$(cat "$T_TMP/up.port")
gen0=$(curl -s "$T_BASE/metrics" | awk '/^prism_config_generation /{ print $2 }')
inv0=$(curl -s "$T_BASE/metrics" | awk '/^prism_tenant_cache_invalidations_total /{ print $2 }')
api POST /api/prism/admin/providers "{\"name\":\"Fake OpenAI\",\"type\":\"openai\",\"config\":{\"baseUrl\":\"$UP\",\"auth\":{\"type\":\"api_key\",\"apiKey\":\"up-secret-key-123\"}}}"
t_is "provider created" "$T_STATUS" 201
PID=$(jget _id)
t_unlike "its key is not in the answer" "$T_BODY" 'up-secret-key-123'
gen1=$(curl -s "$T_BASE/metrics" | awk '/^prism_config_generation /{ print $2 }')
inv1=$(curl -s "$T_BASE/metrics" | awk '/^prism_tenant_cache_invalidations_total /{ print $2 }')
t_is "an admin write bumps the store's generation" "$((gen1 > gen0))" 1
t_is "and invalidates the shared tenant cache" "$((inv1 > inv0))" 1
stored=$("$PRISMCTL" dump providers --config "$T_CONF")
t_like "the key is stored encrypted" "$stored" '"apiKey": ?"enc:[0-9a-f]{32}:[0-9a-f]{32}:[0-9a-f]+"'
t_unlike "never in clear" "$stored" 'up-secret-key-123'
api POST "/api/prism/admin/providers/$PID/discover"
t_is "discovery works" "$T_STATUS" 200
t_is "all upstream models found" "$(jget count)" 4
t_like "the registry enriched them" "$(jget enrichedCount)" '^[1-9]'
t_like "the upstream got the decrypted key" "$(grep -o '"authorization":"[^"]*"' "$T_TMP/up.jsonl" | tail -n1)" 'Bearer up-secret-key-123'
api GET /api/prism/admin/providers/models/all
t_like "models listed with their tier" "$T_BODY" '"id":"gpt-4o-mini"'

# --- a tenant and its keys ---------------------------------------------------------------------------------
api POST /api/prism/admin/tenants "{\"slug\":\"team-a\",\"name\":\"Team A\",\"providerIds\":[\"$PID\"]}"
t_is "tenant created" "$T_STATUS" 201
TID=$(jget _id)
KEY1=$(jget apiKey)
t_like "with a key shown once" "$KEY1" '^omp-[0-9a-f]{64}$'
api POST "/api/prism/admin/tenants/$TID/keys" '{"label":"ci"}'
t_is "a second key" "$T_STATUS" 201
KEY2=$(jget apiKey)
KEY2ID=$(jget _id)
api GET "/api/prism/admin/tenants/$TID/keys"
t_like "keys are listed by prefix and label" "$T_BODY" '"label":"ci"'
t_unlike "no key material in the list" "$T_BODY" "${KEY1#omp-}|${KEY2#omp-}|hash"
api PATCH "/api/prism/admin/tenants/$TID/keys/$KEY2ID" '{"enabled":false}'
t_is "a key is disabled" "$(jget enabled)" false
dump=$("$PRISMCTL" dump tenants --config "$T_CONF")
t_like "the store has the key's SHA-256" "$dump" "$(printf '%s' "$KEY1" | sha256sum | cut -d' ' -f1)"
t_unlike "and never the key" "$dump" "$KEY1|$KEY2"

# --- roles ----------------------------------------------------------------------------------------------------
AUD=$(adm_user audrey auditor)
t_like "an auditor is created and logs in" "$AUD" '\.'
TOKEN=$AUD api GET /api/prism/admin/providers
t_is "the auditor reads providers" "$T_STATUS" 200
t_unlike "without their secrets" "$T_BODY" 'up-secret-key-123|enc:'
TOKEN=$AUD api POST /api/prism/admin/providers '{"name":"x","type":"openai"}'
t_is "the auditor cannot create one" "$T_STATUS" 403
TOKEN=$AUD api POST /api/prism/admin/users '{"username":"evil","password":"evil-password-1","role":"admin"}'
t_is "nor accounts (the original let auditors create admins)" "$T_STATUS" 403
VIEW=$(adm_user vera tenant-viewer "[\"$TID\"]")
TOKEN=$VIEW api GET /api/prism/admin/tenants
t_is "a tenant viewer cannot list all tenants" "$T_STATUS" 403
TOKEN=$VIEW api GET /api/prism/tenant-portal/mine
t_is "but sees its own in the portal" "$(printf '%s' "$T_BODY" | t_json 0.slug)" team-a
TOKEN= api GET /api/prism/admin/providers
t_is "no token: 401" "$T_STATUS" 401
t_is "no token message" "$(jget error)" "No token provided"

# --- token revocation ------------------------------------------------------------------------------------------
TOKEN=$AUD api POST /api/prism/auth/logout
t_is "logout" "$T_STATUS" 200
TOKEN=$AUD api GET /api/prism/auth/me
t_is "the logged-out token is dead" "$T_STATUS" 401
t_is "as revoked" "$(jget error)" "Token revoked"
AUD=$(adm_login audrey audrey-password-1)
AUDID=$(TOKEN=$AUD api GET /api/prism/auth/me; jget _id)
api PUT "/api/prism/admin/users/$AUDID" '{"role":"finops"}'
t_is "the admin changes the auditor's role" "$T_STATUS" 200
TOKEN=$AUD api GET /api/prism/auth/me
t_is "which revokes the old token" "$T_STATUS" 401
api PUT "/api/prism/admin/users/$AUDID" '{"active":false}'
TOKEN= api POST /api/prism/auth/login '{"username":"audrey","password":"audrey-password-1"}'
t_is "a deactivated account cannot log in" "$T_STATUS" 401

# --- LDAP through a real slapd --------------------------------------------------------------------------------
if slapd_start "$T_TMP/ldap" 2>"$T_TMP/slapd.err"; then
	t_track "$(cat "$T_TMP/ldap/slapd.pid")"
	api PUT /api/prism/admin/ldap "{\"enabled\":true,\"url\":\"$SLAPD_URL\",\"bindDn\":\"cn=reader,dc=prism,dc=test\",\"bindPassword\":\"reader-pw\",\"searchBase\":\"ou=people,dc=prism,dc=test\",\"searchFilter\":\"(uid={{username}})\",\"defaultRole\":\"tenant-viewer\",\"groupMapping\":[{\"groupDn\":\"cn=finance,ou=groups,dc=prism,dc=test\",\"role\":\"finops\"}]}"
	t_is "LDAP configured" "$T_STATUS" 200
	t_is "the bind password is masked" "$(jget bindPassword)" '***'
	BOB=$(adm_login bob bob-pw)
	t_like "bob logs in through LDAP" "$BOB" '\.'
	TOKEN=$BOB api GET /api/prism/auth/me
	t_is "with the mapped role" "$(jget role)/$(jget source)" "finops/ldap"
	TOKEN= api POST /api/prism/auth/login '{"username":"bob","password":"wrong"}'
	t_is "a wrong directory password fails" "$T_STATUS" 401
	TOKEN= api POST /api/prism/auth/login '{"username":"*","password":"x"}'
	t_is "a wildcard login fails" "$T_STATUS" 401
	slapd_stop "$T_TMP/ldap"
else
	t_fail "slapd started" "$(cat "$T_TMP/slapd.err")"
fi

# --- the audit trail ------------------------------------------------------------------------------------------
api GET '/api/prism/admin/audit?limit=200'
t_like "provider changes are audited" "$T_BODY" '"target":"provider"'
t_like "tenant changes are audited" "$T_BODY" '"target":"tenant"'
t_like "LDAP changes are audited" "$T_BODY" '"target":"ldap"'
t_like "with the user who made them" "$T_BODY" '"user":"root"'
t_unlike "and no secret" "$T_BODY" "up-secret-key-123|reader-pw|${KEY1#omp-}|enc:"
api GET '/api/prism/admin/audit?target=provider&limit=1'
t_is "filtered and paged" "$(printf '%s' "$T_BODY" | t_json changes.length)" 1
api GET '/api/prism/admin/audit?from=not-a-date'
t_is "a bad filter is a 400" "$T_STATUS" 400

# --- login rate limit --------------------------------------------------------------------------------------
: >"$T_TMP/codes"
for i in $(seq 1 25); do
	curl -s -o /dev/null -w '%{http_code}\n' -X POST -H 'Content-Type: application/json' -H 'X-Forwarded-For: 203.0.113.9' \
		--data-binary '{"username":"root","password":"guess"}' "$T_BASE/api/prism/auth/login" >>"$T_TMP/codes"
done
t_is "20 wrong logins per minute from one address are answered" "$(grep -c '^401$' "$T_TMP/codes")" 20
t_is "the rest is refused with 429" "$(grep -c '^429$' "$T_TMP/codes")" 5
t_done
