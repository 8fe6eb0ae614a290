#!/bin/bash
# LDAP administration against a real slapd: settings stored with the bind password encrypted and masked,
# validation naming the field, the connection test (which never sends the stored password to another
# server), and logins through the directory: group mapping, default role, wrong passwords, filter
# injection, deactivated directory users, and local accounts of the same name.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
. "$(dirname "$0")/slapd.sh"
t_require "$LIGHTTPD" curl node /usr/sbin/slapd ldapsearch ldapadd

mkdir -p "$T_TMP/ldap"
slapd_start "$T_TMP/ldap" || { t_fail "slapd started"; t_done; exit; }
t_track "$(cat "$T_TMP/ldap/slapd.pid")"      # stopped by the EXIT trap when the test dies early
adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" || { t_fail "started"; t_done; exit; }

eval "$(declare -f api | sed '1s/^api/_api_orig/')"
api() { _api_orig "$@"; printf '%s\n' "$T_BODY" >>"$T_TMP/all-bodies"; }
jeval() {
	printf '%s' "$T_BODY" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const d=JSON.parse(s);
		const r=(new Function("d","return ("+process.argv[1]+")"))(d);
		process.stdout.write(r===undefined?"<undefined>":typeof r==="string"?r:JSON.stringify(r))})' "$1"
}
# login USER PASSWORD: POST /auth/login (T_STATUS, T_BODY).
login() { TOKEN= api POST /api/prism/auth/login "$(node -e 'process.stdout.write(JSON.stringify({username:process.argv[1],password:process.argv[2]}))' "$1" "$2")"; }
dump_ldap() { "$PRISMCTL" dump --config "$T_CONF" ldapconfigs; }

L=/api/prism/admin/ldap
S=dc=prism,dc=test
READER="cn=reader,$S"
ADMINS="cn=admins,ou=groups,$S"
FINANCE="cn=finance,ou=groups,$S"

TOKEN=$ADM_TOKEN api GET $L
t_is "nothing configured: 200" "$T_STATUS" 200
t_is "nothing configured: {enabled:false}" "$T_BODY" '{"enabled":false}'

# --- only admins ----------------------------------------------------------------------------------------
MAINT=$(adm_user maint maintainer)
AUD=$(adm_user aud auditor)
for v in MAINT AUD; do
	TOKEN=${!v} api GET $L
	t_is "$v cannot read the LDAP settings" "$T_STATUS" 403
	TOKEN=${!v} api PUT $L '{"enabled":false}'
	t_is "$v cannot change them" "$T_STATUS" 403
	TOKEN=${!v} api POST $L/test '{}'
	t_is "$v cannot test them" "$T_STATUS" 403
done

# --- validation -------------------------------------------------------------------------------------------
bad_put() {  # NAME BODY FIELD-REGEX
	TOKEN=$ADM_TOKEN api PUT $L "$2"
	t_is "PUT $1: 400" "$T_STATUS" 400
	t_like "PUT $1: names the field" "$(jget error)" "$3"
}
LONGPW=$(printf 'x%.0s' $(seq 1 300))
bad_put "not JSON" '{"url":' '.'
bad_put "url scheme http" '{"url":"http://127.0.0.1:389"}' '^url: '
bad_put "url without host" '{"url":"ldap://"}' '^url: '
bad_put "url a number" '{"url":389}' '^url: '
bad_put "filter without {{username}}" '{"url":"ldap://127.0.0.1","searchFilter":"(uid=alice)"}' '^searchFilter: .*\{\{username\}\}'
bad_put "unbalanced filter" '{"searchFilter":"(uid={{username}}"}' '^searchFilter: '
bad_put "defaultRole admin" '{"defaultRole":"admin"}' '^defaultRole: '
bad_put "defaultRole unknown" '{"defaultRole":"boss"}' '^defaultRole: '
bad_put "mapping role invalid" "{\"groupMapping\":[{\"groupDn\":\"$ADMINS\",\"role\":\"maintainer\"},{\"groupDn\":\"$FINANCE\",\"role\":\"superuser\"}]}" '^groupMapping\[1\]\.role: '
bad_put "mapping without groupDn" '{"groupMapping":[{"role":"finops"}]}' '^groupMapping\[0\]\.groupDn: '
bad_put "mapping not an array" '{"groupMapping":"cn=admins"}' '^groupMapping: '
bad_put "bindDn not a DN" '{"bindDn":"not a dn"}' '^bindDn: '
bad_put "enabled a string" '{"enabled":"yes"}' '^enabled: '
bad_put "enabled without url" '{"enabled":true}' '^url: '
bad_put "timeout out of range" '{"timeoutMs":5}' '^timeoutMs: '
bad_put "bindPassword a number" '{"bindPassword":12345}' '^bindPassword: '
bad_put "bindPassword too long" "{\"bindPassword\":\"$LONGPW\"}" '^bindPassword: '
bad_put "startTls with ldaps" '{"url":"ldaps://127.0.0.1","startTls":true}' '^startTls: '
TOKEN=$ADM_TOKEN api GET $L
t_is "nothing was stored by a rejected PUT" "$T_BODY" '{"enabled":false}'

# --- configure ----------------------------------------------------------------------------------------------
CONF=$(cat <<EOF
{"enabled":true,"url":"$SLAPD_URL","bindDn":"$READER","bindPassword":"reader-pw","searchBase":"ou=people,$S",
 "searchFilter":"(uid={{username}})","defaultRole":"tenant-viewer","unknownField":1,
 "groupMapping":[{"groupDn":"$ADMINS","role":"maintainer"},{"groupDn":"$FINANCE","role":"finops"}]}
EOF
)
TOKEN=$ADM_TOKEN api PUT $L "$CONF"
t_is "PUT: 200" "$T_STATUS" 200
t_is "PUT: the password is masked" "$(jget bindPassword)" '***'
t_is "PUT: the settings" "$(jeval '[d.enabled,d.url,d.bindDn,d.searchBase,d.defaultRole,d.groupMapping.length].join()')" \
	"true,$SLAPD_URL,$READER,ou=people,$S,tenant-viewer,2"
t_is "PUT: unknown fields are ignored" "$(jget unknownField)" '<undefined>'
t_like "PUT: an _id" "$(jget _id)" '^[0-9a-f]{24}$'
TOKEN=$ADM_TOKEN api GET $L
t_is "GET: 200" "$T_STATUS" 200
t_is "GET: the password is masked" "$(jget bindPassword)" '***'
t_is "GET: the url" "$(jget url)" "$SLAPD_URL"
t_is "GET: the mapping in order" "$(jeval 'd.groupMapping.map(m=>m.role).join()')" "maintainer,finops"
DUMP=$(dump_ldap)
t_like "stored encrypted" "$(printf '%s' "$DUMP" | t_json 0.bindPassword)" '^enc:[0-9a-f]+:[0-9a-f]+:[0-9a-f]+$'
t_unlike "the plaintext is not stored" "$DUMP" 'reader-pw'
t_is "one document" "$(printf '%s' "$DUMP" | t_json length)" 1
ENC1=$(printf '%s' "$DUMP" | t_json 0.bindPassword)

# --- the connection test ------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api POST $L/test '{}'
t_is "test with the stored settings: 200" "$T_STATUS" 200
t_is "test: answer" "$T_BODY" '{"success":true,"message":"LDAP bind successful"}'
TOKEN=$ADM_TOKEN api POST $L/test '{"bindPassword":"***"}'
t_is "test with the mask uses the stored password" "$T_STATUS" 200
TOKEN=$ADM_TOKEN api POST $L/test '{"bindPassword":"wrong-pw"}'
t_is "test with a wrong password: 400" "$T_STATUS" 400
t_is "  success false" "$(jget success)" false
t_like "  with libldap's reason" "$(jget error)" '[Bb]ind|[Cc]redentials'
t_unlike "  without the password" "$T_BODY" 'wrong-pw'
TOKEN=$ADM_TOKEN api POST $L/test "{\"bindDn\":\"cn=admin,$S\"}"
t_is "another bind DN does not get the stored password" "$T_STATUS" 400
t_like "  and says so" "$(jget error)" '^bindPassword: '
TOKEN=$ADM_TOKEN api POST $L/test "{\"bindDn\":\"cn=admin,$S\",\"bindPassword\":\"admin-pw\"}"
t_is "another bind DN with its own password: 200" "$T_STATUS" 200
TOKEN=$ADM_TOKEN api POST $L/test '{"url":"ftp://example"}'
t_is "test with a bad url: 400" "$T_STATUS" 400
t_like "  names the field" "$(jget error)" '^url: '

# A listener that records what it receives: the stored password must never reach another server.
CAP_PORT=$(t_free_port)
node -e 'const fs=require("fs");require("net").createServer(s=>s.on("data",d=>fs.appendFileSync(process.argv[2],d))).listen(+process.argv[1],"127.0.0.1")' \
	"$CAP_PORT" "$T_TMP/captured" &
t_track $!
: >"$T_TMP/captured"
t_wait_for bash -c "exec 3<>/dev/tcp/127.0.0.1/$CAP_PORT" || t_diag "capture listener not up"
TOKEN=$ADM_TOKEN api POST $L/test "{\"url\":\"ldap://127.0.0.1:$CAP_PORT\",\"timeoutMs\":500,\"connectTimeoutMs\":500}"
t_is "another url does not get the stored password" "$T_STATUS" 400
t_like "  and says so" "$(jget error)" '^bindPassword: '
TOKEN=$ADM_TOKEN api POST $L/test "{\"url\":\"ldap://127.0.0.1:$CAP_PORT\",\"bindPassword\":\"probe-pw-123\",\"timeoutMs\":500,\"connectTimeoutMs\":500}"
t_is "a server that does not answer: 400" "$T_STATUS" 400
t_like "the listener saw the explicitly given password" "$(tr -c '[:print:]' . <"$T_TMP/captured")" 'probe-pw-123'
t_unlike "  and never the stored one" "$(tr -c '[:print:]' . <"$T_TMP/captured")" 'reader-pw'

# --- logins through the directory --------------------------------------------------------------------------
login alice alice-pw
t_is "alice logs in through LDAP" "$T_STATUS" 200
t_is "  the first matching group decides: maintainer" "$(jget role)" maintainer
ALICE_TOKEN=$(jget token)
login bob bob-pw
t_is "bob logs in" "$T_STATUS" 200
t_is "  finance: finops" "$(jget role)" finops
BOB_TOKEN=$(jget token)
login carol carol-pw
t_is "carol logs in" "$T_STATUS" 200
t_is "  no group: the default role" "$(jget role)" tenant-viewer
login Alice alice-pw
t_is "the login name is case-insensitive" "$(jget username)" alice

TOKEN=$ADM_TOKEN api GET /api/prism/admin/users
t_is "directory users are listed as source ldap" "$(jeval 'd.filter(u=>u.source==="ldap").map(u=>u.username).sort().join()')" "alice,bob,carol"
t_is "  without a password hash" "$(jeval 'd.filter(u=>"passwordHash" in u).length')" 0
BOB=$(jeval 'd.find(u=>u.username==="bob")._id')
CAROL=$(jeval 'd.find(u=>u.username==="carol")._id')

login alice wrong-password
t_is "a wrong password: 401" "$T_STATUS" 401
t_is "  Invalid credentials" "$(jget error)" "Invalid credentials"
login alice ''
t_is "an empty password: 400" "$T_STATUS" 400
login '*' alice-pw
t_is "username * : 401" "$T_STATUS" 401
login 'alice)(uid=*' alice-pw
t_is "username alice)(uid=* : 401" "$T_STATUS" 401
login '*)(|(uid=*' x
t_is "username *)(|(uid=* : 401" "$T_STATUS" 401
login zed zed-password
t_is "an unknown user: 401" "$T_STATUS" 401
TOKEN=$ADM_TOKEN api GET /api/prism/admin/users
t_is "failed logins created no users" "$(jeval 'd.length')" 6

# Directory accounts: no local password; a role set by an admin lasts until the next LDAP login.
TOKEN=$ADM_TOKEN api PUT "/api/prism/admin/users/$BOB" '{"password":"local-password-1"}'
t_is "a directory user gets no local password: 400" "$T_STATUS" 400
t_like "  names the field" "$(jget error)" '^password: '
TOKEN=$ADM_TOKEN api PUT "/api/prism/admin/users/$BOB" '{"role":"auditor"}'
t_is "an admin may change a directory user's role" "$T_STATUS" 200
TOKEN=$BOB_TOKEN api GET /api/prism/auth/me
t_is "  which revokes its token" "$T_STATUS" 401
login bob bob-pw
t_is "  until the next LDAP login re-applies the mapping" "$(jget role)" finops

# The mapping order decides.
TOKEN=$ADM_TOKEN api PUT $L "{\"groupMapping\":[{\"groupDn\":\"$FINANCE\",\"role\":\"finops\"},{\"groupDn\":\"$ADMINS\",\"role\":\"admin\"}]}"
t_is "PUT of the mapping alone: 200" "$T_STATUS" 200
t_is "  the rest is kept" "$(jget url) $(jget bindPassword)" "$SLAPD_URL ***"
t_is "  the stored password is unchanged" "$(dump_ldap | t_json 0.bindPassword)" "$ENC1"
login alice alice-pw
t_is "alice now gets the first match, finops" "$(jget role)" finops
TOKEN=$ALICE_TOKEN api GET /api/prism/auth/me
t_unlike "  her earlier token no longer acts as maintainer" "$T_STATUS $(jget role)" '^200 maintainer$'

# A deactivated directory user stays locked out.
TOKEN=$ADM_TOKEN api PUT "/api/prism/admin/users/$CAROL" '{"active":false}'
t_is "deactivate carol" "$T_STATUS" 200
login carol carol-pw
t_is "carol cannot log in" "$T_STATUS" 401
login carol carol-pw
t_is "  not on the next attempt either" "$T_STATUS" 401
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/users/$CAROL"
t_is "  and stays deactivated" "$(jget active)" false
TOKEN=$ADM_TOKEN api PUT "/api/prism/admin/users/$CAROL" '{"active":true}'
login carol carol-pw
t_is "reactivated, carol logs in again" "$T_STATUS" 200

# A local account of the same name is never taken over.
TOKEN=$ADM_TOKEN api POST /api/prism/admin/users '{"username":"twin1","password":"local-twin-pw","role":"auditor"}'
t_is "a local twin1" "$T_STATUS" 201
login twin1 twin1-pw
t_is "the directory password of twin1 does not log in" "$T_STATUS" 401
TOKEN=$ADM_TOKEN api GET /api/prism/admin/users
t_is "  the local account is unchanged" "$(jeval 'JSON.stringify(d.filter(u=>u.username==="twin1").map(u=>[u.source,u.role]))')" '[["local","auditor"]]'
login twin1 local-twin-pw
t_is "  its local password still does" "$(jget role)" auditor
TOKEN=$ADM_TOKEN api POST /api/prism/admin/users '{"username":"alice","password":"local-alice-pw","role":"admin"}'
t_is "no local account over a directory user: 409" "$T_STATUS" 409

# Password handling of PUT: "***" and "" keep it, null clears it.
TOKEN=$ADM_TOKEN api PUT $L '{"bindPassword":"***"}'
t_is "PUT with the mask keeps the password" "$(dump_ldap | t_json 0.bindPassword)" "$ENC1"
TOKEN=$ADM_TOKEN api PUT $L '{"bindPassword":""}'
t_is "PUT with an empty string keeps it" "$(dump_ldap | t_json 0.bindPassword)" "$ENC1"
TOKEN=$ADM_TOKEN api PUT $L '{"bindPassword":null}'
t_is "PUT with null: 200" "$T_STATUS" 200
t_is "  no password in the answer" "$(jget bindPassword)" '<undefined>'
t_is "  none stored" "$(dump_ldap | t_json 0.bindPassword)" '<undefined>'
login bob bob-pw
t_is "  so the service bind fails and logins with it" "$T_STATUS" 401
TOKEN=$ADM_TOKEN api PUT $L '{"bindPassword":"reader-pw"}'
ENC2=$(dump_ldap | t_json 0.bindPassword)
t_like "a new password is encrypted afresh" "$ENC2" '^enc:'
t_unlike "  with a new IV" "$ENC2" "^$ENC1\$"
login bob bob-pw
t_is "  and logins work again" "$T_STATUS" 200
# The stored password goes only to the stored server, with the stored TLS settings.
TOKEN=$ADM_TOKEN api PUT $L '{"url":"ldap://127.0.0.1:1"}'
t_is "a new url without the password again: 400" "$T_STATUS" 400
t_like "  names bindPassword" "$(jget error)" '^bindPassword: '
TOKEN=$ADM_TOKEN api PUT $L '{"tlsInsecure":true}'
t_is "weakening TLS without the password again: 400" "$T_STATUS" 400
t_is "  nothing changed" "$(dump_ldap | t_json 0.bindPassword)" "$ENC2"

TOKEN=$ADM_TOKEN api PUT $L '{"enabled":false}'
t_is "disable LDAP" "$(jget enabled)" false
login bob bob-pw
t_is "  directory users can no longer log in" "$T_STATUS" 401
login twin1 local-twin-pw
t_is "  local users still can" "$T_STATUS" 200

# --- audit and secrets --------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=ldap&limit=1000"
t_is "audit: 200" "$T_STATUS" 200
t_is "audit: every LDAP write that changed something is recorded" "$(jeval 'd.changes.length')" 5
t_is "audit: as updates of target ldap" "$(jeval 'd.changes.filter(c=>c.action==="update"&&c.target==="ldap").length')" 5
t_is "audit: the password changes appear masked" \
	"$(jeval 'd.changes.flatMap(c=>c.changes||[]).filter(x=>x.field==="bindPassword").map(x=>x.before+">"+x.after).join()')" \
	"(unset)>(changed),(set)>(unset),(unset)>(changed)"
t_unlike "no response carried the bind password" "$(cat "$T_TMP/all-bodies")" 'reader-pw'
t_unlike "no response carried its encrypted form" "$(cat "$T_TMP/all-bodies")" 'enc:'
t_unlike "no log line carried it" "$(cat "$T_TMP/prism.log")" 'reader-pw'

slapd_stop "$T_TMP/ldap"
t_is "slapd stopped" "$(test -f "$T_TMP/ldap/slapd.pid" && echo running || echo stopped)" stopped
t_done
