#!/bin/bash
# The system endpoints: the password re-check that guards export and import, the export (secrets left out,
# or encrypted with ?includeSecrets=true), the import (validation, dry run, secrets encrypted on the way in
# and kept when the file leaves them out, users never imported), the log configuration, the circuit
# breakers, the audit trail and who may call what.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/admin_lib.sh"
t_require "$LIGHTTPD" curl node

adm_start "ratelimit_login = 100000" "ratelimit_admin = 100000" || { t_fail "started"; t_done; exit; }
S=/api/prism/admin/system
ENC_KEY=$(sed -n 's/^encryption_key = //p' "$T_CONF")

# Every response body is kept for the final "no secret anywhere" check.
eval "$(declare -f api | sed '1s/^api/_api_orig/')"
api() { _api_orig "$@"; printf '%s\n' "$T_BODY" >>"$T_TMP/all-bodies"; }
# reapi METHOD PATH [JSON]: as api, with the re-authentication token $REAUTH as X-Reauth-Token.
reapi() {
	local args=(-X "$1" -H "Authorization: Bearer ${TOKEN:-$ADM_TOKEN}" -H "X-Reauth-Token: $REAUTH")
	if [ $# -ge 3 ]; then args+=(-H 'Content-Type: application/json' --data-binary "$3"); fi
	t_http "${args[@]}" "$T_BASE$2"
	printf '%s\n' "$T_BODY" >>"$T_TMP/all-bodies"
}
# jeval EXPR: a JavaScript expression over the last body `d`.
jeval() {
	printf '%s' "$T_BODY" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const d=JSON.parse(s);
		const r=(new Function("d","return ("+process.argv[1]+")"))(d);
		process.stdout.write(r===undefined?"<undefined>":typeof r==="string"?r:JSON.stringify(r))})' "$1"
}
# decrypt KEY VALUE: the plaintext of an enc: value, or <undecryptable>.
decrypt() {
	node -e 'const c=require("crypto");const [k,v]=process.argv.slice(1);const p=v.split(":");
		try{const d=c.createDecipheriv("aes-256-gcm",c.createHash("sha256").update(k).digest(),Buffer.from(p[1],"hex"));
		d.setAuthTag(Buffer.from(p[2],"hex"));
		process.stdout.write(Buffer.concat([d.update(Buffer.from(p[3],"hex")),d.final()]).toString())}
		catch(e){process.stdout.write("<undecryptable>")}' "$1" "$2"
}
# encrypt KEY PLAINTEXT: an enc: value as the original program writes it.
encrypt() {
	node -e 'const c=require("crypto");const [k,v]=process.argv.slice(1);const iv=c.randomBytes(16);
		const e=c.createCipheriv("aes-256-gcm",c.createHash("sha256").update(k).digest(),iv);
		const ct=Buffer.concat([e.update(v,"utf8"),e.final()]);
		process.stdout.write("enc:"+iv.toString("hex")+":"+e.getAuthTag().toString("hex")+":"+ct.toString("hex"))' "$1" "$2"
}
# dump COLLECTION EXPR: a JavaScript expression over `prismctl dump` of that collection (`d`, newest first).
dump() {
	"$PRISMCTL" dump --config "$T_CONF" "$1" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{
		const d=JSON.parse(s);const r=(new Function("d","return ("+process.argv[1]+")"))(d);
		process.stdout.write(r===undefined?"<undefined>":typeof r==="string"?r:JSON.stringify(r))})' "$2"
}
META='"_meta":{"type":"model-prism-settings-export","version":"test"}'

# --- the password re-check ---------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET $S/export-settings
t_is "export without a re-authentication token: 403" "$T_STATUS" 403
t_like "403 says how to re-authenticate" "$(jget error)" 'Re-enter your password: POST /api/prism/admin/system/verify-password, then send its reauthToken as X-Reauth-Token'
REAUTH=not-a-token reapi GET $S/export-settings
t_is "export with a garbage re-authentication token: 403" "$T_STATUS" 403

TOKEN=$ADM_TOKEN api POST $S/verify-password '{"password":"wrong-password-1"}'
t_is "verify-password, wrong password: 401" "$T_STATUS" 401
t_is "401 message" "$(jget error)" "Invalid password"
TOKEN=$ADM_TOKEN api POST $S/verify-password '{}'
t_is "verify-password without a password: 400" "$T_STATUS" 400
TOKEN=$ADM_TOKEN api POST $S/verify-password 'nope'
t_is "verify-password, not JSON: 400" "$T_STATUS" 400
TOKEN= api POST $S/verify-password "{\"password\":\"$ADM_PASS\"}"
t_is "verify-password without a session: 401" "$T_STATUS" 401
TOKEN=$ADM_TOKEN api POST $S/verify-password "{\"password\":\"$ADM_PASS\"}"
t_is "verify-password: 200" "$T_STATUS" 200
t_is "verify-password: verified" "$(jget verified)" true
REAUTH=$(jget reauthToken)
t_like "verify-password: a token" "$REAUTH" '^eyJ'
left=$(jeval 'Math.round((Date.parse(d.expiresAt)-Date.now())/1000)')
if [ "$left" -gt 240 ] && [ "$left" -le 300 ]; then t_ok "the re-authentication token expires in 5 minutes ($left s)"
else t_fail "the re-authentication token expires in 5 minutes" "expires in $left s"; fi
TOKEN=$REAUTH api GET /api/prism/auth/me
t_is "a re-authentication token is not a session token: 401" "$T_STATUS" 401
TOKEN=$REAUTH api GET $S/log-config
t_is "... not on other routes either: 401" "$T_STATUS" 401

# --- secrets to export: the LDAP bind password and, through an import, a provider, a webhook, a setting ----
TOKEN=$ADM_TOKEN api PUT /api/prism/admin/ldap '{"enabled":false,"url":"ldap://127.0.0.1:1","bindDn":"cn=svc,dc=example,dc=org","bindPassword":"ldap-bind-secret-1","searchBase":"dc=example,dc=org"}'
t_is "LDAP settings with a bind password: 200" "$T_STATUS" 200

PROVIDERS='"providers":[{"name":"Upstream","slug":"upstream","type":"openai","config":{"baseUrl":"http://127.0.0.1:9","auth":{"type":"api_key","apiKey":"sk-provider-secret-1"}}}]'
WEBHOOKS='"webhooks":[{"name":"hook","url":"http://127.0.0.1:9/hook","secret":"webhook-secret-1","events":["provider_down"]}]'
SYSCFG='"systemConfig":[{"key":"prompt_engineer_pros","value":{"enabled":false,"apiKey":"sk-pe-secret-1"}}]'
reapi POST $S/import-settings "{$META,$PROVIDERS,$WEBHOOKS,$SYSCFG}"
t_is "import of plaintext secrets: 200" "$T_STATUS" 200
t_is "import: response shape" "$(jeval '[d.success,d.dryRun,JSON.stringify(d.imported)].join()')" \
	'true,false,{"providers":1,"tenants":0,"categories":0,"ruleSets":0,"other":2}'
t_is "import: from = the file's _meta" "$(jget from.version)" test
t_is "import: the two plaintext credentials encrypted (not the webhook secret)" "$(jget secretsEncrypted)" 2
PID=$(dump providers 'd.find(p=>p.slug==="upstream")._id')
t_like "the provider is stored" "$PID" '^[0-9a-f]{24}$'
stored=$(dump providers 'd[0].config.auth.apiKey')
t_like "provider apiKey stored encrypted" "$stored" '^enc:'
t_is "... with encryption_key" "$(decrypt "$ENC_KEY" "$stored")" sk-provider-secret-1
stored=$(dump systemconfigs 'd.find(x=>x.key==="prompt_engineer_pros").value.apiKey')
t_is "setting apiKey stored encrypted" "$(decrypt "$ENC_KEY" "$stored")" sk-pe-secret-1
t_is "the webhook secret stays as the store keeps it (clear)" "$(dump webhooks 'd[0].secret')" webhook-secret-1

# --- export --------------------------------------------------------------------------------------------------
reapi GET $S/export-settings
t_is "export: 200" "$T_STATUS" 200
t_is "export: an attachment named by the day" "$(t_header Content-Disposition)" \
	"attachment; filename=\"model-prism-settings-$(date -u +%Y-%m-%d).json\""
t_like "export: JSON" "$(t_header Content-Type)" '^application/json'
t_is "export: _meta.type" "$(jget _meta.type)" model-prism-settings-export
t_is "export: _meta.secrets" "$(jget _meta.secrets)" omitted
t_is "export: _meta.exportedBy" "$(jget _meta.exportedBy)" root
t_is "export: the provider, without its key" "$(jeval 'd.providers[0].slug+","+d.providers[0].config.auth.type+","+("apiKey" in d.providers[0].config.auth)')" "upstream,api_key,false"
t_is "export: ldapConfig is the stored one, without the bind password" "$(jeval 'd.ldapConfig.bindDn+","+("bindPassword" in d.ldapConfig)')" "cn=svc,dc=example,dc=org,false"
t_is "export: systemConfig entries, without the key" "$(jeval 'JSON.stringify(d.systemConfig.find(x=>x.key==="prompt_engineer_pros").value)')" '{"enabled":false}'
t_is "export: tenants without key hashes" "$(jeval 'd.tenants.filter(t=>"apiKeyHashes" in t||"apiKeyHash" in t||(t.apiKeys||[]).some(k=>"hash" in k||"encrypted" in k)).length')" 0
t_is "export: the tenant's keys are listed (prefix, label)" "$(jeval 'd.tenants[0].apiKeys.length>0&&!!d.tenants[0].apiKeys[0].prefix')" true
t_is "export: webhook without its secret" "$(jeval '"secret" in d.webhooks[0]')" false
t_is "export: users without password hashes or token versions" "$(jeval 'd.users.length+","+d.users.filter(u=>"passwordHash" in u||"tokenVersion" in u).length')" "1,0"
t_unlike "export: no enc: value at all" "$T_BODY" 'enc:'
t_unlike "export: no plaintext secret" "$T_BODY" 'secret-1'
t_like "export: counts what it left out" "$(jget _meta.secretsOmitted)" '^[1-9]'
cp "$T_TMP/last-body" "$T_TMP/export-plain.json"

reapi GET "$S/export-settings?includeSecrets=true"
t_is "export with secrets: 200" "$T_STATUS" 200
t_is "export with secrets: _meta.secrets" "$(jget _meta.secrets)" encrypted
t_like "export with secrets: _meta.note names the key" "$(jget _meta.note)" 'same key is configured as encryption_key'
apikey=$(jget providers.0.config.auth.apiKey)
t_like "export with secrets: provider key as enc:" "$apikey" '^enc:'
t_is "... which decrypts with encryption_key" "$(decrypt "$ENC_KEY" "$apikey")" sk-provider-secret-1
t_like "export with secrets: bind password as enc:" "$(jget ldapConfig.bindPassword)" '^enc:'
wh=$(jget webhooks.0.secret)
t_like "export with secrets: the webhook secret encrypted for the file" "$wh" '^enc:'
t_is "... decrypting to the stored one" "$(decrypt "$ENC_KEY" "$wh")" webhook-secret-1
t_like "export with secrets: key hashes" "$(jget tenants.0.apiKeyHashes.0)" '^[0-9a-f]{64}$'
t_unlike "export with secrets: no plaintext secret" "$T_BODY" 'secret-1'
cp "$T_TMP/last-body" "$T_TMP/export-secrets.json"
reapi GET "$S/export-settings?includeSecrets=maybe"
t_is "includeSecrets=maybe: 400" "$T_STATUS" 400
t_is "... naming the parameter" "$(jget error)" "includeSecrets: must be true or false"

# --- import: round trips --------------------------------------------------------------------------------------
hashes_before=$(dump tenants 'JSON.stringify(d.map(t=>t.apiKeyHashes))')
reapi POST $S/import-settings "$(cat "$T_TMP/export-plain.json")"
t_is "re-import of the export without secrets: 200" "$T_STATUS" 200
t_is "... imported the provider and the tenant" "$(jeval 'd.imported.providers+","+d.imported.tenants')" "1,1"
t_is "... users are never imported" "$(jget usersIgnored)" 1
t_like "... the stored secrets were kept" "$(jget secretsKept)" '^[1-9]'
t_is "provider key kept" "$(decrypt "$ENC_KEY" "$(dump providers 'd[0].config.auth.apiKey')")" sk-provider-secret-1
t_is "bind password kept" "$(decrypt "$ENC_KEY" "$(dump ldapconfigs 'd[0].bindPassword')")" ldap-bind-secret-1
t_is "webhook secret kept" "$(dump webhooks 'd[0].secret')" webhook-secret-1
t_is "setting key kept" "$(decrypt "$ENC_KEY" "$(dump systemconfigs 'd.find(x=>x.key==="prompt_engineer_pros").value.apiKey')")" sk-pe-secret-1
t_is "tenant key hashes kept" "$(dump tenants 'JSON.stringify(d.map(t=>t.apiKeyHashes))')" "$hashes_before"
TOKEN=$ADM_TOKEN api GET /api/prism/admin/ldap
t_is "LDAP settings still show a stored password" "$(jget bindPassword)" '***'

reapi POST $S/import-settings "$(cat "$T_TMP/export-secrets.json")"
t_is "re-import of the export with secrets: 200" "$T_STATUS" 200
t_is "... the webhook secret is stored in clear again" "$(dump webhooks 'd[0].secret')" webhook-secret-1
t_is "... the provider key is stored encrypted" "$(decrypt "$ENC_KEY" "$(dump providers 'd[0].config.auth.apiKey')")" sk-provider-secret-1

# --- import: dry run, password in the body ---------------------------------------------------------------------
reapi POST "$S/import-settings?dryRun=true" "{$META,\"providers\":[{\"name\":\"Dry\",\"slug\":\"dry-one\",\"type\":\"openai\"}],\"logConfig\":{\"logLevel\":\"warn\"}}"
t_is "dry run: 200" "$T_STATUS" 200
t_is "dry run: counts" "$(jeval '[d.dryRun,d.imported.providers,d.imported.other].join()')" "true,1,1"
t_is "dry run: nothing written" "$(dump providers 'd.filter(p=>p.slug==="dry-one").length')" 0
reapi POST "$S/import-settings?dryRun=perhaps" "{$META}"
t_is "dryRun=perhaps: 400" "$T_STATUS" 400

TOKEN=$ADM_TOKEN api POST $S/import-settings "{$META,\"providers\":[]}"
t_is "import without re-authentication: 403" "$T_STATUS" 403
TOKEN=$ADM_TOKEN api POST $S/import-settings "{$META,\"password\":\"wrong-password-1\",\"providers\":[]}"
t_is "import with a wrong password in the body: 401" "$T_STATUS" 401
TOKEN=$ADM_TOKEN api POST $S/import-settings "{$META,\"password\":7}"
t_is "import with a non-string password: 400" "$T_STATUS" 400
TOKEN=$ADM_TOKEN api POST $S/import-settings "{$META,\"password\":\"$ADM_PASS\",\"providers\":[{\"name\":\"Second\",\"slug\":\"second\",\"type\":\"ollama\"}]}"
t_is "import with the password in the body: 200" "$T_STATUS" 200
t_is "... imported" "$(dump providers 'd.filter(p=>p.slug==="second").length')" 1
t_unlike "... the password is not stored" "$("$PRISMCTL" dump --config "$T_CONF" providers)" "$ADM_PASS"

# --- import: malformed documents -------------------------------------------------------------------------------
reapi POST $S/import-settings 'not json'
t_is "import, not JSON: 400" "$T_STATUS" 400
reapi POST $S/import-settings '{"providers":[]}'
t_is "import without _meta: 400" "$T_STATUS" 400
t_like "... naming _meta" "$(jget error)" '^_meta: '
reapi POST $S/import-settings '{"_meta":{"type":"something-else"}}'
t_is "import, wrong _meta.type: 400" "$T_STATUS" 400
t_like "... naming _meta.type" "$(jget error)" '^_meta.type: must be "model-prism-settings-export"'
reapi POST $S/import-settings "{$META,\"providers\":{}}"
t_is "import, a section that is not an array: 400" "$T_STATUS" 400
t_like "... naming it" "$(jget error)" 'providers: must be an array'
reapi POST $S/import-settings "{$META,\"tenants\":[{\"name\":\"No slug\"},7]}"
t_is "import, documents with problems: 400" "$T_STATUS" 400
t_like "... naming the field" "$(jget error)" 'tenants\[0\]: slug must be a non-empty string'
t_like "... and the document that is no object" "$(jget error)" 'tenants\[1\]: not an object'
reapi POST $S/import-settings "{$META,\"providers\":[{\"name\":\"X\",\"slug\":\"x\",\"type\":\"openai\",\"_id\":\"nothex\"}]}"
t_is "import, a malformed _id: 400" "$T_STATUS" 400
reapi POST $S/import-settings "{$META,\"providers\":[{\"name\":\"Copy\",\"slug\":\"upstream\",\"type\":\"openai\",\"_id\":\"0123456789abcdef01234567\"}]}"
t_is "import, a slug of another stored provider: 400" "$T_STATUS" 400
t_like "... naming the collision" "$(jget error)" "slug 'upstream' already belongs to $PID"
foreign=$(encrypt "another-key-entirely" "sk-foreign")
reapi POST $S/import-settings "{$META,\"providers\":[{\"name\":\"F\",\"slug\":\"foreign\",\"type\":\"openai\",\"config\":{\"auth\":{\"apiKey\":\"$foreign\"}}}]}"
t_is "import, a secret encrypted with another key: 400" "$T_STATUS" 400
t_is "... naming the field and why" "$(jget error)" $'1 problem(s):\nproviders[0].config.auth.apiKey: encrypted with another encryption_key (not readable here)'
t_is "... nothing was written" "$(dump providers 'd.filter(p=>p.slug==="foreign").length')" 0
reapi POST $S/import-settings "{$META,\"systemConfig\":[{\"key\":\"prism_generation\",\"value\":1}]}"
t_is "import, a reserved setting: 400" "$T_STATUS" 400
reapi POST $S/import-settings "{$META,\"users\":[{\"username\":\"intruder\",\"role\":\"admin\",\"passwordHash\":\"x\"}]}"
t_is "import with users: 200" "$T_STATUS" 200
t_is "... reports them ignored" "$(jget usersIgnored)" 1
t_is "... and creates none" "$(dump users 'd.filter(u=>u.username==="intruder").length')" 0

# --- audit -----------------------------------------------------------------------------------------------------
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=system"
t_is "audit of the system target: 200" "$T_STATUS" 200
t_like "audit: exports recorded" "$(jeval 'JSON.stringify(d.changes.map(e=>e.action))')" '"export"'
t_like "audit: imports recorded" "$(jeval 'JSON.stringify(d.changes.map(e=>e.action))')" '"import"'

# --- log configuration ------------------------------------------------------------------------------------------
L=$S/log-config
TOKEN=$ADM_TOKEN api GET $L
t_is "log-config GET: 200" "$T_STATUS" 200
t_is "log-config defaults" "$(jeval '[d.singleton,d.logLevel,d.promptLogging,d.promptLogLevel,d.routingDecisionLogging,d.trackUsersByIp,d.pathCapture.enabled,d.promptRetentionEnabled,d.promptRetentionHours].join()')" \
	"default,info,false,last_user,true,true,false,true,48"
t_is "log-config fileLogging defaults" "$(jeval 'JSON.stringify(d.fileLogging)')" \
	'{"enabled":false,"directory":"/var/log/open-model-prism","maxSizeMb":100,"maxFiles":7,"includePrompts":false}'
t_is "log-config is created on the first GET" "$(dump logconfigs 'd.length+","+d[0].singleton')" "1,default"
TOKEN=$ADM_TOKEN api GET $L
t_is "a second GET creates no second document" "$(dump logconfigs 'd.length')" 1

bad_put() {
	TOKEN=$ADM_TOKEN api PUT $L "$1"
	t_is "log-config PUT $1: 400" "$T_STATUS" 400
	t_like "... naming $2" "$(jget error)" "^$2: "
}
bad_put '{"logLevel":"verbose"}' logLevel
bad_put '{"logLevel":3}' logLevel
bad_put '{"promptLogLevel":"everything"}' promptLogLevel
bad_put '{"promptRetentionHours":0}' promptRetentionHours
bad_put '{"promptRetentionHours":8761}' promptRetentionHours
bad_put '{"promptRetentionHours":1.5}' promptRetentionHours
bad_put '{"promptRetentionHours":"48"}' promptRetentionHours
bad_put '{"promptLogging":"true"}' promptLogging
bad_put '{"trackUsersByIp":1}' trackUsersByIp
bad_put '{"routingDecisionLogging":"no"}' routingDecisionLogging
bad_put '{"promptRetentionEnabled":[]}' promptRetentionEnabled
bad_put '{"fileLogging":true}' fileLogging
bad_put '{"fileLogging":{"directory":"var/log"}}' fileLogging.directory
bad_put '{"fileLogging":{"directory":"/var/log/../../etc"}}' fileLogging.directory
bad_put '{"fileLogging":{"directory":""}}' fileLogging.directory
bad_put '{"fileLogging":{"maxSizeMb":0}}' fileLogging.maxSizeMb
bad_put '{"fileLogging":{"maxSizeMb":10241}}' fileLogging.maxSizeMb
bad_put '{"fileLogging":{"maxFiles":1001}}' fileLogging.maxFiles
bad_put '{"fileLogging":{"enabled":"yes"}}' fileLogging.enabled
bad_put '{"fileLogging":{"includePrompts":null,"maxFiles":"7"}}' fileLogging.maxFiles
bad_put '{"pathCapture":{"enabled":"yes"}}' pathCapture.enabled
bad_put '{"pathCapture":false}' pathCapture
TOKEN=$ADM_TOKEN api PUT $L 'nope'
t_is "log-config PUT, not JSON: 400" "$T_STATUS" 400
t_is "nothing changed by refused PUTs" "$(dump logconfigs 'd[0].logLevel+","+d[0].promptRetentionHours')" "info,48"

TOKEN=$ADM_TOKEN api PUT $L '{"logLevel":"debug","promptLogging":true,"promptRetentionHours":12,"fileLogging":{"enabled":true,"directory":"/srv/prism-logs"},"pathCapture":{"enabled":true},"_id":"ignored","singleton":"other"}'
t_is "log-config PUT: 200" "$T_STATUS" 200
t_is "PUT answers the new document" "$(jeval '[d.logLevel,d.promptLogging,d.promptRetentionHours,d.pathCapture.enabled,d.singleton,d.updatedBy].join()')" \
	"debug,true,12,true,default,root"
t_is "fileLogging merged over the stored values" "$(jeval 'JSON.stringify(d.fileLogging)')" \
	'{"enabled":true,"directory":"/srv/prism-logs","maxSizeMb":100,"maxFiles":7,"includePrompts":false}'
TOKEN=$ADM_TOKEN api PUT $L '{"fileLogging":{"maxFiles":3},"promptRetentionHours":24.0}'
t_is "a partial fileLogging keeps the other fields" "$(jeval 'JSON.stringify(d.fileLogging)')" \
	'{"enabled":true,"directory":"/srv/prism-logs","maxSizeMb":100,"maxFiles":3,"includePrompts":false}'
t_is "24.0 is stored as an integer" "$(jeval 'JSON.stringify(d.promptRetentionHours)')" 24
TOKEN=$ADM_TOKEN api GET $L
t_is "GET shows the change" "$(jeval '[d.logLevel,d.fileLogging.maxFiles,d.promptRetentionHours].join()')" "debug,3,24"
t_is "stored once" "$(dump logconfigs 'd.length+","+d[0].logLevel')" "1,debug"
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=log-config"
t_like "log-config changes are audited" "$(jeval 'd.changes.map(e=>e.summary).join("|")')" 'logLevel: "info" -> "debug"'
TOKEN=$ADM_TOKEN api PUT $L '{"logLevel":"info"}'
t_is "log level back to info" "$(jget logLevel)" info

# --- circuit breakers -------------------------------------------------------------------------------------------
B=$S/circuit-breaker
TOKEN=$ADM_TOKEN api GET $B
t_is "circuit-breaker GET: 200" "$T_STATUS" 200
t_is "one entry per provider" "$(jeval 'd.map(b=>b.providerSlug).sort().join()')" "second,upstream"
t_is "entry shape" "$(jeval 'Object.keys(d.find(b=>b.providerSlug==="upstream")).sort().join()')" \
	"failures,halfOpenAttempts,openedAt,providerId,providerName,providerSlug,providerType,retryAt,state,tracked,trips"
t_is "entry of an untouched provider" "$(jeval '(b=>[b.providerId,b.providerName,b.providerType,b.state,b.failures,b.tracked,b.openedAt].join())(d.find(b=>b.providerSlug==="upstream"))')" \
	"$PID,Upstream,openai,closed,0,false,"
TOKEN=$ADM_TOKEN api POST $B/reset ''
t_is "reset all: 200" "$T_STATUS" 200
t_is "reset all: shape" "$(jeval '[d.success,typeof d.reset,d.sharedMemory].join()')" "true,number,true"
TOKEN=$ADM_TOKEN api POST $B/reset "{\"providerId\":\"$PID\"}"
t_is "reset one: 200" "$T_STATUS" 200
t_is "reset one untracked breaker: nothing to reset" "$(jget reset)" 0
TOKEN=$ADM_TOKEN api POST $B/reset '{"providerId":"0123456789abcdef01234567"}'
t_is "reset one, unknown provider: 404" "$T_STATUS" 404
TOKEN=$ADM_TOKEN api POST $B/reset '{"providerId":"xyz"}'
t_is "reset one, malformed id: 400" "$T_STATUS" 400
t_like "... naming providerId" "$(jget error)" '^providerId: '
TOKEN=$ADM_TOKEN api POST $B/reset '[1]'
t_is "reset, not an object: 400" "$T_STATUS" 400
TOKEN=$ADM_TOKEN api GET "/api/prism/admin/audit?target=system&action=reset"
t_like "resets are audited" "$(jeval 'JSON.stringify(d.changes.map(e=>e.targetName))')" '"Upstream"'

# --- who may call what -----------------------------------------------------------------------------------------
FINOPS=$(adm_user fin1 finops)
MAINT=$(adm_user maint1 maintainer)
AUDITOR=$(adm_user aud1 auditor)
VIEWER=$(adm_user view1 tenant-viewer)
ADMIN2=$(adm_user admin2 admin)
if [ -z "$FINOPS" ] || [ -z "$MAINT" ] || [ -z "$AUDITOR" ] || [ -z "$VIEWER" ] || [ -z "$ADMIN2" ]; then
	t_fail "users for the role checks" "see above"
else
	TOKEN=$FINOPS api GET $L; t_is "finops: GET log-config 200" "$T_STATUS" 200
	TOKEN=$FINOPS api PUT $L '{"logLevel":"debug"}'; t_is "finops: PUT log-config 403" "$T_STATUS" 403
	TOKEN=$FINOPS api GET $B; t_is "finops: GET circuit-breaker 200" "$T_STATUS" 200
	TOKEN=$FINOPS api POST $B/reset ''; t_is "finops: reset 403" "$T_STATUS" 403
	TOKEN=$AUDITOR api GET $L; t_is "auditor: GET log-config 200" "$T_STATUS" 200
	TOKEN=$VIEWER api GET $L; t_is "tenant-viewer: GET log-config 403" "$T_STATUS" 403
	TOKEN=$VIEWER api GET $B; t_is "tenant-viewer: GET circuit-breaker 403" "$T_STATUS" 403
	TOKEN=$MAINT api PUT $L '{"logLevel":"debug"}'; t_is "maintainer: PUT log-config 403" "$T_STATUS" 403
	TOKEN=$MAINT api POST $B/reset ''; t_is "maintainer: reset 200" "$T_STATUS" 200
	TOKEN=$MAINT api POST $S/verify-password '{"password":"maint1-password-1"}'
	t_is "maintainer: verify-password 403" "$T_STATUS" 403
	TOKEN=$MAINT reapi GET $S/export-settings; t_is "maintainer: export 403 (even with an admin's token)" "$T_STATUS" 403
	TOKEN=$MAINT reapi POST $S/import-settings "{$META}"; t_is "maintainer: import 403" "$T_STATUS" 403
	TOKEN=$ADMIN2 reapi GET $S/export-settings
	t_is "another admin cannot use root's re-authentication token: 403" "$T_STATUS" 403
	TOKEN=$ADMIN2 api POST $S/verify-password '{"password":"admin2-password-1"}'
	R2=$(jget reauthToken)
	TOKEN=$ADMIN2 REAUTH=$R2 reapi GET $S/export-settings
	t_is "... its own works" "$T_STATUS" 200
	TOKEN=$ADMIN2 api POST /api/prism/auth/logout '{}'
	ADMIN2=$(adm_login admin2 admin2-password-1)
	TOKEN=$ADMIN2 REAUTH=$R2 reapi GET $S/export-settings
	t_is "a logout revokes the re-authentication token too" "$T_STATUS" 403
fi

# --- no secret in any response ---------------------------------------------------------------------------------
for secret in sk-provider-secret-1 ldap-bind-secret-1 sk-pe-secret-1 webhook-secret-1 "$ADM_PASS" "$ENC_KEY"; do
	t_unlike "no response carried '${secret:0:12}...'" "$(cat "$T_TMP/all-bodies")" "$secret"
done
t_done
