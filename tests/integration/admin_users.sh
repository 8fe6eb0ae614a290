#!/bin/bash
# Users of the admin API: CRUD shapes, who may manage whom, the last-admin protections (also under
# concurrent demotions), validation of every body, token revocation on password/role/tenant/active changes,
# revoke-sessions and logout, and that no response ever carries a password hash or token version.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" || { t_fail "started"; t_done; exit; }
DEF_TENANT=$(jget defaultTenant._id)
t_like "the default tenant's id from the setup" "$DEF_TENANT" '^[0-9a-f]{24}$'

# Every response body is kept for the final "no secrets" checks.
adm_keep_bodies

# me TOKEN: GET /api/prism/auth/me with that token (T_STATUS, T_BODY).
me() { TOKEN=$1 api GET /api/prism/auth/me; }
U=/api/prism/admin/users
NOPE=0123456789abcdef01234567

# --- create, read, list ------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api POST $U "{\"username\":\"  Alice.Smith \",\"password\":\"alice-password-1\",\"role\":\"tenant-viewer\",\"tenants\":[\"$DEF_TENANT\",\"$DEF_TENANT\"]}"
t_is "create: 201" "$T_STATUS" 201
t_is "create: username lower-cased and trimmed" "$(jget username)" alice.smith
t_is "create: role" "$(jget role)" tenant-viewer
t_is "create: source local" "$(jget source)" local
t_is "create: active" "$(jget active)" true
t_is "create: tenant ids, duplicates dropped" "$(jget tenants)" "[\"$DEF_TENANT\"]"
t_like "create: _id" "$(jget _id)" '^[0-9a-f]{24}$'
t_like "create: createdAt" "$(jget createdAt)" '^20[0-9]{2}-[0-9]{2}-[0-9]{2}T'
t_is "create: no passwordHash" "$(jget passwordHash)" '<undefined>'
t_is "create: no tokenVersion" "$(jget tokenVersion)" '<undefined>'
ALICE=$(jget _id)

TOKEN=$ADM_TOKEN api GET "$U/$ALICE"
t_is "get: 200" "$T_STATUS" 200
t_is "get: tenants populated" "$(jeval 'd.tenants.map(t=>[t._id,t.slug,t.name].join("/")).join()')" "$DEF_TENANT/api/Default"
t_is "get: only _id, name and slug of a tenant" "$(jeval 'Object.keys(d.tenants[0]).sort().join()')" "_id,name,slug"
t_is "get: no passwordHash" "$(jget passwordHash)" '<undefined>'

TOKEN=$ADM_TOKEN api GET $U
t_is "list: 200" "$T_STATUS" 200
t_is "list: sorted by createdAt" "$(jeval 'd.map(u=>u.username).join()')" "root,alice.smith"
t_is "list: tenants populated" "$(jeval 'd[1].tenants[0].slug')" api
t_is "list: no hash, no token version" "$(jeval 'd.filter(u=>"passwordHash" in u||"tokenVersion" in u).length')" 0

ALICE_TOKEN=$(adm_login alice.smith alice-password-1)
t_like "the new user can log in" "$ALICE_TOKEN" '^eyJ'
me "$ALICE_TOKEN"; t_is "GET /auth/me with its token" "$T_STATUS" 200
t_is "/auth/me: its role" "$(jget role)" tenant-viewer

TOKEN=$ADM_TOKEN api POST $U '{"username":"ALICE.SMITH","password":"another-password","role":"auditor"}'
t_is "duplicate username (any case): 409" "$T_STATUS" 409
t_is "duplicate: message" "$(jget error)" "Username already exists"

# --- malformed bodies -------------------------------------------------------------------------------------
bad_post() {  # NAME BODY FIELD-REGEX
	TOKEN=$ADM_TOKEN api POST $U "$2"
	t_is "POST $1: 400" "$T_STATUS" 400
	t_like "POST $1: names the field" "$(jget error)" "$3"
}
LONG73=$(printf 'p%.0s' $(seq 1 73))
LONGNAME=$(printf 'n%.0s' $(seq 1 129))
bad_post "not JSON" 'this is not json' '.'
bad_post "an array" '[1,2]' '.'
bad_post "no username" '{"password":"password-123","role":"auditor"}' '^username: '
bad_post "username a number" '{"username":5,"password":"password-123","role":"auditor"}' '^username: '
bad_post "username with a space" '{"username":"bad name","password":"password-123","role":"auditor"}' '^username: '
bad_post "username with a parenthesis" '{"username":"x)(uid=*","password":"password-123","role":"auditor"}' '^username: '
bad_post "username too long" "{\"username\":\"$LONGNAME\",\"password\":\"password-123\",\"role\":\"auditor\"}" '^username: '
bad_post "blank username" '{"username":"   ","password":"password-123","role":"auditor"}' '^username: '
bad_post "no password" '{"username":"bob","role":"auditor"}' '^password: '
bad_post "short password" '{"username":"bob","password":"short","role":"auditor"}' '^password: .*8'
bad_post "password over 72 bytes" "{\"username\":\"bob\",\"password\":\"$LONG73\",\"role\":\"auditor\"}" '^password: .*72'
bad_post "password a number" '{"username":"bob","password":12345678,"role":"auditor"}' '^password: '
bad_post "no role" '{"username":"bob","password":"password-123"}' '^role: '
bad_post "unknown role" '{"username":"bob","password":"password-123","role":"superuser"}' '^role: must be one of admin, maintainer'
bad_post "role a number" '{"username":"bob","password":"password-123","role":1}' '^role: '
bad_post "tenants not an array" '{"username":"bob","password":"password-123","role":"auditor","tenants":"x"}' '^tenants: '
bad_post "bad tenant id" '{"username":"bob","password":"password-123","role":"auditor","tenants":["zz"]}' '^tenants\[0\]: '
bad_post "tenant id a number" '{"username":"bob","password":"password-123","role":"auditor","tenants":[7]}' '^tenants\[0\]: '
bad_post "unknown tenant" "{\"username\":\"bob\",\"password\":\"password-123\",\"role\":\"auditor\",\"tenants\":[\"$DEF_TENANT\",\"$NOPE\"]}" '^tenants\[1\]: no tenant'
bad_post "active not a boolean" '{"username":"bob","password":"password-123","role":"auditor","active":"yes"}' '^active: '
bad_post "source ldap" '{"username":"bob","password":"password-123","role":"auditor","source":"ldap"}' '^source: '
TOKEN=$ADM_TOKEN api GET $U
t_is "no bad body created a user" "$(jeval 'd.length')" 2

bad_put() {  # NAME BODY FIELD-REGEX
	TOKEN=$ADM_TOKEN api PUT "$U/$ALICE" "$2"
	t_is "PUT $1: 400" "$T_STATUS" 400
	t_like "PUT $1: names the field" "$(jget error)" "$3"
}
bad_put "not JSON" '{"role":' '.'
bad_put "unknown role" '{"role":"root"}' '^role: '
bad_put "role a number" '{"role":3}' '^role: '
bad_put "active a string" '{"active":"false"}' '^active: '
bad_put "short password" '{"password":"1234567"}' '^password: '
bad_put "password over 72 bytes" "{\"password\":\"$LONG73\"}" '^password: '
bad_put "password a number" '{"password":123456789}' '^password: '
bad_put "tenants an object" '{"tenants":{}}' '^tenants: '
bad_put "bad tenant id" '{"tenants":["123"]}' '^tenants\[0\]: '
bad_put "unknown tenant" "{\"tenants\":[\"$NOPE\"]}" '^tenants\[0\]: no tenant'
me "$ALICE_TOKEN"; t_is "rejected updates kept the token valid" "$T_STATUS" 200

for m in GET PUT DELETE; do
	body=(); [ $m = PUT ] && body=('{}')
	TOKEN=$ADM_TOKEN api $m "$U/$NOPE" "${body[@]}"
	t_is "$m unknown id: 404" "$T_STATUS" 404
	t_is "$m unknown id: message" "$(jget error)" "User not found"
	TOKEN=$ADM_TOKEN api $m "$U/not-an-id" "${body[@]}"
	t_is "$m malformed id: 404" "$T_STATUS" 404
done
TOKEN=$ADM_TOKEN api POST "$U/$NOPE/revoke-sessions" '{}'
t_is "revoke-sessions of an unknown id: 404" "$T_STATUS" 404

# --- who may do what ------------------------------------------------------------------------------------
MAINT=$(adm_user maint maintainer)
AUD=$(adm_user aud auditor)
FIN=$(adm_user fin finops)
TM=$(adm_user tm tenant-maintainer "[\"$DEF_TENANT\"]")
TA=$(adm_user ta tenant-admin "[\"$DEF_TENANT\"]")
TV=$(adm_user tv tenant-viewer "[\"$DEF_TENANT\"]")
CU=$(adm_user cu chat-user)
for v in MAINT AUD FIN TM TA TV CU; do t_like "token of $v" "${!v}" '^eyJ'; done
TOKEN=$ADM_TOKEN api GET $U
ROOT=$(jeval 'd.find(u=>u.username==="root")._id')
MAINT_ID=$(jeval 'd.find(u=>u.username==="maint")._id')
AUD_ID=$(jeval 'd.find(u=>u.username==="aud")._id')
CU_ID=$(jeval 'd.find(u=>u.username==="cu")._id')

TOKEN=$AUD api GET $U
t_is "auditor may list" "$T_STATUS" 200
TOKEN=$AUD api GET "$U/$ALICE"
t_is "auditor may read one" "$T_STATUS" 200
for v in AUD FIN TM TA TV CU; do
	TOKEN=${!v} api POST $U '{"username":"eve","password":"eve-password-1","role":"admin"}'
	t_is "$v cannot create users" "$T_STATUS" 403
	TOKEN=${!v} api PUT "$U/$ALICE" '{"role":"admin"}'
	t_is "$v cannot modify users" "$T_STATUS" 403
	TOKEN=${!v} api DELETE "$U/$ALICE"
	t_is "$v cannot delete users" "$T_STATUS" 403
	TOKEN=${!v} api POST "$U/$ALICE/revoke-sessions" '{}'
	t_is "$v cannot revoke sessions" "$T_STATUS" 403
done
for v in FIN TM TA TV CU; do
	TOKEN=${!v} api GET $U
	t_is "$v cannot list users" "$T_STATUS" 403
done
me "$ALICE_TOKEN"; t_is "the target is unchanged" "$T_STATUS" 200

TOKEN=$MAINT api POST $U '{"username":"eve","password":"eve-password-1","role":"admin"}'
t_is "maintainer cannot create an admin" "$T_STATUS" 403
t_like "  and is told why" "$(jget error)" 'Required role: admin$'
TOKEN=$MAINT api PUT "$U/$ROOT" '{"password":"root-password-2"}'
t_is "maintainer cannot modify an admin" "$T_STATUS" 403
TOKEN=$MAINT api PUT "$U/$ALICE" '{"role":"admin"}'
t_is "maintainer cannot grant the admin role" "$T_STATUS" 403
TOKEN=$MAINT api DELETE "$U/$ROOT"
t_is "maintainer cannot delete an admin" "$T_STATUS" 403
TOKEN=$MAINT api POST "$U/$ROOT/revoke-sessions" '{}'
t_is "maintainer cannot revoke an admin's sessions" "$T_STATUS" 403
me "$ADM_TOKEN"; t_is "the admin's token still works" "$T_STATUS" 200
# Accounts are the admin's alone: a maintainer could otherwise take over its peers (reset a password,
# then log in as them) and forge who did what.
TOKEN=$MAINT api POST $U '{"username":"dan","password":"dan-password-1","role":"finops"}'
t_is "maintainer cannot create even a non-admin" "$T_STATUS" 403
TOKEN=$ADM_TOKEN api POST $U '{"username":"dan","password":"dan-password-1","role":"finops"}'
t_is "the admin creates a non-admin" "$T_STATUS" 201
DAN=$(jget _id)
TOKEN=$MAINT api PUT "$U/$DAN" '{"password":"taken-over-1"}'
t_is "maintainer cannot reset a peer's password" "$T_STATUS" 403
TOKEN=$ADM_TOKEN api PUT "$U/$DAN" '{"role":"auditor","active":false}'
t_is "the admin modifies a non-admin" "$T_STATUS" 200
t_is "  role and active changed" "$(jget role)/$(jget active)" auditor/false
TOKEN=$MAINT api DELETE "$U/$DAN"
t_is "maintainer cannot delete a non-admin" "$T_STATUS" 403
TOKEN=$ADM_TOKEN api DELETE "$U/$DAN"
t_is "the admin deletes a non-admin" "$T_STATUS" 200
t_is "  answer" "$T_BODY" '{"success":true}'
TOKEN=$MAINT api GET "$U/$DAN"
t_is "  and it is gone" "$T_STATUS" 404

# --- self-protection and the last admin -------------------------------------------------------------------
TOKEN=$ADM_TOKEN api DELETE "$U/$ROOT"
t_is "nobody deletes themselves" "$T_STATUS" 400
t_is "  message" "$(jget error)" "Cannot delete yourself"
TOKEN=$ADM_TOKEN api PUT "$U/$ROOT" '{"role":"maintainer"}'
t_is "nobody changes their own role" "$T_STATUS" 400
t_like "  names the field" "$(jget error)" '^role: Cannot change your own role'
TOKEN=$MAINT api PUT "$U/$MAINT_ID" '{"role":"auditor"}'
t_is "a maintainer cannot change its own account" "$T_STATUS" 403
TOKEN=$ADM_TOKEN api PUT "$U/$ROOT" '{"password":"root-password-9"}'
t_is "nobody sets their own password here (change-password checks the current one)" "$T_STATUS" 400
t_like "  names the field" "$(jget error)" '^password: '

TOKEN=$ADM_TOKEN api PUT "$U/$ROOT" '{"active":false}'
t_is "nobody deactivates themselves" "$T_STATUS" 400
t_like "  names the field" "$(jget error)" '^active: '
TOKEN=$ADM_TOKEN api PUT "$U/$ROOT" '{"role":"admin","active":true}'
t_is "an update that changes nothing passes" "$T_STATUS" 200
me "$ADM_TOKEN"; t_is "  and keeps the token" "$T_STATUS" 200

TOKEN=$ADM_TOKEN api POST $U '{"username":"admin2","password":"admin2-password-1","role":"admin"}'
t_is "an admin may create an admin" "$T_STATUS" 201
ADMIN2=$(jget _id)

# Every change that takes an admin away is re-checked after the write: two admins demoting (or
# deactivating) each other at the same moment must leave at least one active admin.
active_admins() {
	TOKEN=$1 api GET $U
	jeval 'd.filter(u=>u.role==="admin"&&u.active!==false).length'
}
race() {  # ROUNDS BODY
	local round both=0 lost=0 t1 t2 s1 s2 p1 p2 survivor n outcomes=
	for round in $(seq 1 "$1"); do
		t1=$(adm_login root "$ADM_PASS")
		t2=$(adm_login admin2 admin2-password-1)
		curl -s -o "$T_TMP/race1" -w '%{http_code}' -X PUT -H "Authorization: Bearer $t1" -H 'Content-Type: application/json' \
			--data-binary "$2" "$T_BASE$U/$ADMIN2" >"$T_TMP/race1.status" &
		p1=$!
		curl -s -o "$T_TMP/race2" -w '%{http_code}' -X PUT -H "Authorization: Bearer $t2" -H 'Content-Type: application/json' \
			--data-binary "$2" "$T_BASE$U/$ROOT" >"$T_TMP/race2.status" &
		p2=$!
		wait "$p1" "$p2"
		s1=$(cat "$T_TMP/race1.status"); s2=$(cat "$T_TMP/race2.status")
		[ "$s1" = 200 ] && [ "$s2" = 200 ] && both=$((both + 1))
		outcomes="$outcomes $s1/$s2"
		survivor=$(adm_login root "$ADM_PASS")
		[ -n "$survivor" ] && [ "$(TOKEN=$survivor api GET /api/prism/auth/me; jget role)" = admin ] || survivor=$(adm_login admin2 admin2-password-1)
		n=$(active_admins "$survivor")
		[ "$n" -ge 1 ] 2>/dev/null || lost=$((lost + 1))
		# Restore both.
		TOKEN=$survivor api PUT "$U/$ADMIN2" '{"role":"admin","active":true}'
		TOKEN=$survivor api PUT "$U/$ROOT" '{"role":"admin","active":true}'
		[ "$(active_admins "$survivor")" = 2 ] || { t_diag "round $round: cannot restore both admins"; lost=$((lost + 1)); }
	done
	t_diag "$3: outcomes per round (status of each side):$outcomes"
	t_is "$3: at least one active admin after every round" "$lost" 0
	t_is "$3: never both changes passed" "$both" 0
}
race 8 '{"role":"maintainer"}' "concurrent demotions"
race 8 '{"active":false}' "concurrent deactivations"
ADM_TOKEN=$(adm_login root "$ADM_PASS")

TOKEN=$ADM_TOKEN api PUT "$U/$ADMIN2" '{"role":"maintainer"}'
t_is "demoting one of two admins is allowed" "$T_STATUS" 200
t_is "active admins now" "$(active_admins "$ADM_TOKEN")" 1
TOKEN=$ADM_TOKEN api PUT "$U/$ADMIN2" '{"role":"admin"}'
t_is "an admin may grant the admin role" "$T_STATUS" 200
TOKEN=$ADM_TOKEN api DELETE "$U/$ADMIN2"
t_is "an admin may delete another admin" "$T_STATUS" 200
t_is "one active admin is left" "$(active_admins "$ADM_TOKEN")" 1

# --- token revocation -------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api PUT "$U/$ALICE" '{"password":"alice-password-2"}'
t_is "password change: 200" "$T_STATUS" 200
me "$ALICE_TOKEN"; t_is "password change revokes the old token" "$T_STATUS" 401
t_is "  as revoked" "$(jget error)" "Token revoked"
t_is "the old password no longer logs in" "$(adm_login alice.smith alice-password-1)" ""
ALICE_TOKEN=$(adm_login alice.smith alice-password-2)
t_like "the new password does" "$ALICE_TOKEN" '^eyJ'

TOKEN=$ADM_TOKEN api PUT "$U/$ALICE" '{"role":"auditor"}'
t_is "role change: 200" "$T_STATUS" 200
me "$ALICE_TOKEN"; t_is "role change revokes the old token" "$T_STATUS" 401
ALICE_TOKEN=$(adm_login alice.smith alice-password-2)
me "$ALICE_TOKEN"; t_is "/auth/me shows the new role at once" "$T_STATUS $(jget role)" "200 auditor"
TOKEN=$ALICE_TOKEN api GET $U
t_is "  and the new role's rights apply" "$T_STATUS" 200

TOKEN=$ADM_TOKEN api PUT "$U/$ALICE" '{"tenants":[]}'
t_is "tenant change: 200" "$T_STATUS" 200
t_is "  tenants now empty" "$(jget tenants)" "[]"
me "$ALICE_TOKEN"; t_is "tenant change revokes the old token" "$T_STATUS" 401
ALICE_TOKEN=$(adm_login alice.smith alice-password-2)

TOKEN=$ADM_TOKEN api PUT "$U/$ALICE" '{"active":false}'
t_is "deactivation: 200" "$T_STATUS" 200
me "$ALICE_TOKEN"; t_is "deactivation locks the old token out" "$T_STATUS" 401
t_is "a deactivated user cannot log in" "$(adm_login alice.smith alice-password-2)" ""
TOKEN=$ADM_TOKEN api PUT "$U/$ALICE" '{"active":true}'
t_is "reactivation: 200" "$T_STATUS" 200
me "$ALICE_TOKEN"; t_is "the token from before the deactivation stays revoked" "$T_STATUS" 401
ALICE_TOKEN=$(adm_login alice.smith alice-password-2)
t_like "the reactivated user logs in" "$ALICE_TOKEN" '^eyJ'

TOKEN=$ADM_TOKEN api POST "$U/$ALICE/revoke-sessions" '{}'
t_is "revoke-sessions: 200" "$T_STATUS" 200
t_is "  success" "$(jget success)" true
me "$ALICE_TOKEN"; t_is "revoke-sessions revokes" "$T_STATUS" 401
ALICE_TOKEN=$(adm_login alice.smith alice-password-2)
ALICE_TOKEN2=$(adm_login alice.smith alice-password-2)
TOKEN=$MAINT api POST "$U/$ALICE/revoke-sessions" '{}'
t_is "a maintainer cannot revoke sessions" "$T_STATUS" 403
TOKEN=$ADM_TOKEN api POST "$U/$ALICE/revoke-sessions" '{}'
t_is "the admin revokes a non-admin's sessions" "$T_STATUS" 200
me "$ALICE_TOKEN"; s1=$T_STATUS; me "$ALICE_TOKEN2"
t_is "  every session of it" "$s1 $T_STATUS" "401 401"
me "$MAINT"; t_is "  not the caller's" "$T_STATUS" 200

ALICE_TOKEN=$(adm_login alice.smith alice-password-2)
TOKEN=$ALICE_TOKEN api POST /api/prism/auth/logout '{}'
t_is "logout: 200" "$T_STATUS" 200
me "$ALICE_TOKEN"; t_is "logout revokes the token" "$T_STATUS" 401

TOKEN=$ADM_TOKEN api DELETE "$U/$CU_ID"
t_is "delete: 200" "$T_STATUS" 200
me "$CU"; t_is "the deleted user's token is refused" "$T_STATUS" 401

# --- audit and secrets ------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=user&limit=1000"
t_is "audit: 200" "$T_STATUS" 200
t_is "audit: creations recorded" "$(jeval 'd.changes.filter(c=>c.action==="create"&&c.targetName==="alice.smith").length')" 1
t_is "audit: deletions recorded" "$(jeval 'd.changes.filter(c=>c.action==="delete"&&c.targetName==="cu").length')" 1
t_like "audit: updates recorded" "$(jeval 'd.changes.filter(c=>c.action==="update"&&c.targetName==="alice.smith").length')" '^[1-9]'
t_is "audit: revoke-sessions recorded" "$(jeval 'd.changes.filter(c=>c.action==="revoke-sessions"&&c.targetName==="alice.smith").length')" 2
t_is "audit: a password change is recorded without the hash" \
	"$(jeval 'JSON.stringify(d.changes.flatMap(c=>c.changes||[]).find(x=>x.field==="passwordHash"))')" \
	'{"field":"passwordHash","before":"(set)","after":"(changed)"}'
t_is "audit: who did it" "$(jeval 'd.changes.find(c=>c.action==="delete"&&c.targetName==="cu").user')" root
t_is "audit: the admin's changes to dan are attributed to it" \
	"$(jeval 'd.changes.filter(c=>c.user==="root"&&c.targetName==="dan").length')" 3

t_is "no response carried a bcrypt hash" "$(grep -c '\$2[aby]\$' "$T_TMP/all-bodies")" 0
t_is "no response carried passwordHash" "$(grep -c 'passwordHash"[^,}]*\$' "$T_TMP/all-bodies")" 0
t_is "no response carried tokenVersion" "$(grep -c 'tokenVersion' "$T_TMP/all-bodies")" 0
t_done
