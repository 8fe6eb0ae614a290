#!/bin/bash
# prismctl create-admin, reset-password and rotate-encryption-key, checked through the admin API in CGI mode
# (one prism.fcgi process per request: each request reads the configuration as it is at that moment) and
# through the store (prismctl dump, sqlite3).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/slapd.sh"
t_require node sqlite3

t_make_config "ratelimit_login = 100000" "ratelimit_admin = 100000" || { t_fail "config"; t_done; exit; }
DB=$T_TMP/data/prism.db
KEY_A=$(sed -n 's/^encryption_key = //p' "$T_CONF")
KEY_B=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
KEY_C=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')

# cgi METHOD URI [BODY] [TOKEN] [REAUTH]: one request to prism.fcgi in CGI mode; sets T_STATUS, T_BODY.
cgi() {
	local method=$1 uri=$2 body=${3-} tok=${4-} re=${5-} len env=()
	len=$(printf '%s' "$body" | wc -c)
	[ -n "$tok" ] && env+=(HTTP_AUTHORIZATION="Bearer $tok")
	[ -n "$re" ] && env+=(HTTP_X_REAUTH_TOKEN="$re")
	T_RAW=$(printf '%s' "$body" | env -i PATH="$PATH" MONGOC_DISABLE_SHM=1 REQUEST_METHOD="$method" REQUEST_URI="$uri" \
		CONTENT_LENGTH="$len" CONTENT_TYPE=application/json REMOTE_ADDR=127.0.0.1 "${env[@]}" \
		"$PRISM_FCGI" --config "$T_CONF" 2>>"$T_TMP/cgi.err")
	T_STATUS=$(printf '%s' "$T_RAW" | head -n1 | sed -n 's/^Status: \([0-9]*\).*/\1/p')
	T_BODY=$(printf '%s' "$T_RAW" | sed '1,/^\r$/d')
}
t_log "$T_TMP/cgi.err"
jget() { printf '%s' "$T_BODY" | t_json "$1"; }
login() { cgi POST /api/prism/auth/login "{\"username\":\"$1\",\"password\":\"$2\"}"; jget token | sed 's/^<undefined>$//'; }
# dump COLLECTION EXPR: a JavaScript expression over `prismctl dump` of that collection (`d`).
dump() {
	"$PRISMCTL" dump --config "$T_CONF" --limit 1000 "$1" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{
		const d=JSON.parse(s);const r=(new Function("d","return ("+process.argv[1]+")"))(d);
		process.stdout.write(r===undefined?"<undefined>":typeof r==="string"?r:JSON.stringify(r))})' "$2"
}
# encrypt KEY PLAINTEXT / decrypt KEY VALUE: the enc: format, as the original program writes it.
encrypt() {
	node -e 'const c=require("crypto");const [k,v]=process.argv.slice(1);const iv=c.randomBytes(16);
		const e=c.createCipheriv("aes-256-gcm",c.createHash("sha256").update(k).digest(),iv);
		const ct=Buffer.concat([e.update(v,"utf8"),e.final()]);
		process.stdout.write("enc:"+iv.toString("hex")+":"+e.getAuthTag().toString("hex")+":"+ct.toString("hex"))' "$1" "$2"
}
decrypt() {
	node -e 'const c=require("crypto");const [k,v]=process.argv.slice(1);const p=v.split(":");
		try{const d=c.createDecipheriv("aes-256-gcm",c.createHash("sha256").update(k).digest(),Buffer.from(p[1],"hex"));
		d.setAuthTag(Buffer.from(p[2],"hex"));
		process.stdout.write(Buffer.concat([d.update(Buffer.from(p[3],"hex")),d.final()]).toString())}
		catch(e){process.stdout.write("<undecryptable>")}' "$1" "$2"
}
# Every enc: value in the collections that hold secrets, as "collection id path value" lines (sorted).
all_enc() {
	local c
	for c in providers ldapconfigs systemconfigs tenants webhooks chatconfigs requestlogs; do
		"$PRISMCTL" dump --config "$T_CONF" --limit 1000 "$c" | node -e 'let s="";process.stdin.on("data",x=>s+=x).on("end",()=>{
			const out=[];const walk=(v,p,id)=>{if(typeof v==="string"){if(v.startsWith("enc:"))out.push(process.argv[1]+" "+id+" "+p+" "+v)}
			else if(v&&typeof v==="object")for(const k of Object.keys(v))walk(v[k],p?p+"."+k:k,id)};
			for(const d of JSON.parse(s))walk(d,"",d._id);if(out.length)console.log(out.join("\n"))})' "$c"
	done | sort
}
# set_keys CURRENT [PREVIOUS]: rewrites encryption_key and encryption_key_previous in the configuration.
set_keys() {
	sed -i -e '/^encryption_key_previous = /d' -e "s/^encryption_key = .*/encryption_key = $1/" "$T_CONF"
	[ -n "${2-}" ] && echo "encryption_key_previous = $2" >>"$T_CONF"
	return 0
}

# --- create-admin before the setup ---------------------------------------------------------------------------
out=$(printf 'first-admin-pass-1\n' | "$PRISMCTL" create-admin --config "$T_CONF" ' Alice ' 2>&1); rc=$?
t_is "create-admin before the setup: exit 0" "$rc" 0
t_like "... says what it did" "$out" "^created local admin 'alice' \([0-9a-f]{24}\)"
t_like "... and what is left to do" "$out" "the setup is not complete: log in as 'alice'"
t_is "the setup claim, as POST /setup/admin writes it" "$(dump setups 'd.map(x=>[x._id,x.completed,x.adminUser].join()).join()')" \
	"00000000000000000000000a,false,alice"
t_is "the user document" "$(dump users 'd.map(u=>[u.username,u.role,u.source,u.active,u.tokenVersion,JSON.stringify(u.tenants)].join()).join()')" \
	"alice,admin,local,true,0,[]"
t_like "the password is stored as a bcrypt hash" "$(sqlite3 "$DB" "SELECT json_extract(doc,'$.passwordHash') FROM users")" '^\$2b\$12\$'
cgi GET /api/prism/setup/status
t_is "setup status: admin created, setup not complete" "$(jget adminCreated),$(jget setupComplete)" "true,false"
cgi POST /api/prism/setup/admin '{"username":"mallory","password":"mallory-password-1"}'
t_is "POST /setup/admin now refuses a second first admin: 409" "$T_STATUS" 409
ALICE=$(login alice first-admin-pass-1)
t_like "the new admin logs in through the API" "$ALICE" '^eyJ'
cgi POST /api/prism/setup/complete '{}' "$ALICE"
t_is "... and completes the setup" "$T_STATUS" 200

out=$(printf 'other-password-1\n' | "$PRISMCTL" create-admin --config "$T_CONF" alice 2>&1); rc=$?
t_is "create-admin of an existing user: exit 1" "$rc" 1
t_like "... says why" "$out" "user 'alice' already exists \(use --force"
t_is "... and changes nothing" "$(login alice first-admin-pass-1 | cut -c1-3)" eyJ

printf 'second-admin-pw-2\n' >"$T_TMP/pw"
out=$("$PRISMCTL" create-admin --config "$T_CONF" --password-file "$T_TMP/pw" bob 2>&1); rc=$?
t_is "create-admin after the setup, --password-file: exit 0" "$rc" 0
t_unlike "... no setup note" "$out" 'setup is not complete'
BOB=$(login bob second-admin-pw-2)
t_like "bob logs in" "$BOB" '^eyJ'
cgi GET /api/prism/auth/me '' "$BOB"
t_is "bob is an admin" "$(jget role)" admin

printf 'short\n' >"$T_TMP/short"
out=$("$PRISMCTL" create-admin --config "$T_CONF" --password-file "$T_TMP/short" carl 2>&1); rc=$?
t_is "a short password: exit 1" "$rc" 1
t_like "... the policy" "$out" 'password: must be at least 8 characters'
printf '%073d\n' 0 >"$T_TMP/long"
out=$("$PRISMCTL" create-admin --config "$T_CONF" --password-file "$T_TMP/long" carl 2>&1); rc=$?
t_is "a 73-byte password: exit 1" "$rc" 1
t_like "... the policy" "$out" 'password: must be at most 72 bytes'
out=$("$PRISMCTL" create-admin --config "$T_CONF" --password-file "$T_TMP/missing" carl 2>&1); rc=$?
t_is "a missing password file: exit 1" "$rc" 1
out=$("$PRISMCTL" create-admin --config "$T_CONF" </dev/null 'bad name!' 2>&1); rc=$?
t_is "a bad username: exit 2" "$rc" 2
t_like "... says why" "$out" 'username: only letters, digits'
"$PRISMCTL" create-admin --config "$T_CONF" </dev/null >/dev/null 2>&1; rc=$?
t_is "no username: exit 2" "$rc" 2
out=$("$PRISMCTL" create-admin --config "$T_CONF" carl </dev/null 2>&1); rc=$?
t_is "no password on standard input: exit 1" "$rc" 1
t_is "no user carl was created" "$(dump users 'd.filter(u=>u.username==="carl").length')" 0

# On a terminal: asked twice, without echo (script(1) gives the command a terminal).
if command -v script >/dev/null 2>&1; then
	out=$( (sleep 2; printf 'tty-pass-word-1\r'; sleep 0.5; printf 'tty-pass-word-1\r'; sleep 2) |
		script -qec "'$PRISMCTL' create-admin --config '$T_CONF' ttyuser; echo \"exit=\$?\"" /dev/null 2>&1)
	t_like "create-admin on a terminal asks" "$out" 'New password for ttyuser: '
	t_like "... twice" "$out" 'Repeat the password: '
	t_like "... and creates the account" "$out" "created local admin 'ttyuser'"
	t_like "... exit 0" "$out" 'exit=0'

	t_unlike "... without echoing the password" "$out" 'tty-pass-word-1'
	t_like "... which logs in" "$(login ttyuser tty-pass-word-1)" '^eyJ'
	out=$( (sleep 2; printf 'tty-pass-word-2\r'; sleep 0.5; printf 'tty-pass-word-3\r'; sleep 2) |
		script -qec "'$PRISMCTL' reset-password --config '$T_CONF' ttyuser; echo \"exit=\$?\"" /dev/null 2>&1)
	t_like "two different entries are refused" "$out" 'the two passwords differ'
	t_like "... exit 1" "$out" 'exit=1'
	t_like "... and change nothing" "$(login ttyuser tty-pass-word-1)" '^eyJ'
else
	t_ok "terminal prompts # SKIP script(1) is not installed"
fi

# --force: a finops user, deactivated, becomes an active admin; its old token stops working.
cgi POST /api/prism/admin/users '{"username":"carol","password":"carol-password-1","role":"finops"}' "$ALICE"
t_is "a finops user through the API" "$T_STATUS" 201
CAROL_ID=$(jget _id)
CAROL=$(login carol carol-password-1)
cgi PUT "/api/prism/admin/users/$CAROL_ID" '{"active":false}' "$ALICE"
t_is "... deactivated" "$T_STATUS" 200
out=$(printf 'carol-new-admin-1\n' | "$PRISMCTL" create-admin --config "$T_CONF" --force carol 2>&1); rc=$?
t_is "create-admin --force on it: exit 0" "$rc" 0
t_like "... says so" "$out" "user 'carol' \($CAROL_ID\) is now an active local admin"
cgi GET /api/prism/auth/me '' "$CAROL"
t_is "the old token is revoked" "$T_STATUS" 401
CAROL=$(login carol carol-new-admin-1)
cgi GET /api/prism/auth/me '' "$CAROL"
t_is "the new password works, as an active admin" "$T_STATUS,$(jget role),$(jget active)" "200,admin,true"
t_is "the old password does not" "$(login carol carol-password-1)" ""
cgi GET '/api/prism/admin/audit?target=user' '' "$ALICE"
t_like "create-admin is audited as prismctl" "$(printf '%s' "$T_BODY" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>console.log(JSON.parse(s).changes.map(e=>e.user+":"+e.action+":"+e.targetName).join(" ")))')" \
	'prismctl:update:carol .*prismctl:create:bob .*prismctl:create:alice'

# --- reset-password ------------------------------------------------------------------------------------------
out=$(printf 'bob-reset-pass-1\n' | "$PRISMCTL" reset-password --config "$T_CONF" bob 2>&1); rc=$?
t_is "reset-password: exit 0" "$rc" 0
t_like "... says the sessions are revoked" "$out" "password of 'bob' \([0-9a-f]{24}\) changed; its sessions are revoked"
cgi GET /api/prism/auth/me '' "$BOB"
t_is "bob's token issued before is revoked" "$T_STATUS" 401
t_is "the old password no longer works" "$(login bob second-admin-pw-2)" ""
BOB=$(login bob bob-reset-pass-1)
t_like "the new one does" "$BOB" '^eyJ'
cgi PUT "/api/prism/admin/users/$(dump users 'd.find(u=>u.username==="bob")._id')" '{"active":false}' "$ALICE"
out=$(printf 'bob-reset-pass-2\n' | "$PRISMCTL" reset-password --config "$T_CONF" bob 2>&1); rc=$?
t_is "reset-password of a deactivated user: exit 0" "$rc" 0
t_like "... with a note" "$out" "note: 'bob' is deactivated"
t_is "... which stays deactivated" "$(dump users 'd.find(u=>u.username==="bob").active')" false
out=$(printf 'nobody-password-1\n' | "$PRISMCTL" reset-password --config "$T_CONF" nobody 2>&1); rc=$?
t_is "reset-password of an unknown user: exit 1" "$rc" 1
t_like "... says so" "$out" "no user 'nobody'"
sqlite3 "$DB" "INSERT INTO users (id, v, doc) VALUES ('0123456789abcdef01234567', 0, '{\"_id\":\"0123456789abcdef01234567\",\"username\":\"dir.user\",\"role\":\"finops\",\"source\":\"ldap\",\"active\":true,\"tenants\":[],\"__v\":0}')"
out=$(printf 'dir-password-1\n' | "$PRISMCTL" reset-password --config "$T_CONF" dir.user 2>&1); rc=$?
t_is "reset-password of a directory user: exit 1" "$rc" 1
t_like "... says why" "$out" "'dir.user' is a directory \(LDAP\) account"
t_is "... and gives it no password" "$(dump users 'd.find(u=>u.username==="dir.user").passwordHash')" '<undefined>'
"$PRISMCTL" reset-password --config "$T_CONF" --force bob </dev/null >/dev/null 2>&1; rc=$?
t_is "reset-password --force: exit 2 (no such option)" "$rc" 2

# --- rotate-encryption-key -----------------------------------------------------------------------------------
# Secrets under key A: the LDAP bind password, a provider key, a prompt-analysis key, a tenant's legacy
# encrypted keys (through the API), and request-log snapshots (written as the gateway writes them).
have_slapd=0
if slapd_start "$T_TMP/slapd" >"$T_TMP/slapd.err" 2>&1; then
	have_slapd=1
	t_track "$(cat "$T_TMP/slapd/slapd.pid")"
	LDAP_URL=$SLAPD_URL
else
	t_diag "slapd not started ($(cat "$T_TMP/slapd.err")): the LDAP bind is not checked"
	LDAP_URL=ldap://127.0.0.1:1
fi
cgi PUT /api/prism/admin/ldap "{\"enabled\":false,\"url\":\"$LDAP_URL\",\"bindDn\":\"cn=reader,dc=prism,dc=test\",\"bindPassword\":\"reader-pw\",\"searchBase\":\"ou=people,dc=prism,dc=test\"}" "$ALICE"
t_is "LDAP settings with a bind password: 200" "$T_STATUS" 200
ldap_test() { cgi POST /api/prism/admin/ldap/test '{}' "$ALICE"; printf '%s' "$T_BODY" | t_json "${1:-message}"; }
[ $have_slapd = 1 ] && t_is "the stored bind password binds (key A)" "$(ldap_test)" "LDAP bind successful"

cgi POST /api/prism/admin/system/verify-password '{"password":"first-admin-pass-1"}' "$ALICE"
RE=$(jget reauthToken)
META='"_meta":{"type":"model-prism-settings-export","version":"test"}'
cgi POST /api/prism/admin/system/import-settings "{$META,
	\"providers\":[{\"name\":\"Up\",\"slug\":\"up\",\"type\":\"bedrock\",\"config\":{\"auth\":{\"type\":\"aws_credentials\",\"accessKeyId\":\"AKIA-ROTATE\",\"secretAccessKey\":\"aws-secret-rotate\"}}},
	               {\"name\":\"Up2\",\"slug\":\"up2\",\"type\":\"openai\",\"config\":{\"auth\":{\"apiKey\":\"sk-rotate-1\"}}}],
	\"tenants\":[{\"slug\":\"legacy\",\"name\":\"Legacy\",\"apiKeyHash\":\"$(printf omp-legacy-1 | sha256sum | cut -c1-64)\",\"apiKeyEncrypted\":\"omp-legacy-1\",
	              \"apiKeys\":[{\"_id\":\"0123456789abcdef01234568\",\"hash\":\"$(printf omp-legacy-2 | sha256sum | cut -c1-64)\",\"prefix\":\"omp-legacy-2\",\"encrypted\":\"omp-legacy-2\"}]}],
	\"systemConfig\":[{\"key\":\"prompt_engineer_pros\",\"value\":{\"apiKey\":\"sk-pe-rotate\"}}]}" "$ALICE" "$RE"
t_is "provider, tenant and setting secrets through the API: 200" "$T_STATUS" 200
log_doc() {   # log_doc ID JSON-FIELDS: a request log as the gateway stores it
	sqlite3 "$DB" "INSERT INTO requestlogs (id, v, doc) VALUES ('$1', 0, '{\"_id\":\"$1\",\"timestamp\":\"2026-01-01T00:00:00.000Z\",$2,\"__v\":0}')"
}
log_doc 0000000000000000000000f1 "\"promptSnapshot\":{\"systemPrompt\":\"$(encrypt "$KEY_A" 'You are helpful')\",\"lastUserMessage\":\"$(encrypt "$KEY_A" 'hello there')\",\"messages\":[{\"role\":\"user\",\"content\":\"$(encrypt "$KEY_A" 'full message')\"}]},\"responseSnapshot\":{\"content\":\"$(encrypt "$KEY_A" 'general kenobi')\"},\"capturedPaths\":[\"$(encrypt "$KEY_A" '/src/main.c')\",\"$(encrypt "$KEY_A" '/src/util.c')\"]"
log_doc 0000000000000000000000f2 '"status":"success","inputTokens":3'

before=$(all_enc)
t_is "thirteen secrets under key A" "$(printf '%s\n' "$before" | wc -l)" 13
bad=0
while read -r coll id path value; do
	[ "$(decrypt "$KEY_A" "$value")" = "<undecryptable>" ] && { bad=1; t_diag "not under key A: $coll $id $path"; }
done <<<"$before"
t_is "... all readable with key A" "$bad" 0

# The new key B; A stays readable as encryption_key_previous.
set_keys "$KEY_B" "$KEY_A"
t_run "the configuration with both keys is valid" "$PRISMCTL" check-config --config "$T_CONF"
out=$("$PRISMCTL" rotate-encryption-key --config "$T_CONF" --dry-run 2>&1); rc=$?
t_is "dry run: exit 0" "$rc" 0
t_like "dry run: counts per collection" "$out" 'providers +2 document\(s\) read, 2 changed, 3 value\(s\) re-encrypted'
t_like "dry run: says nothing was written" "$out" 'dry run: 13 value\(s\) would be re-encrypted; nothing was written'
t_is "dry run: nothing changed" "$(all_enc)" "$before"

out=$("$PRISMCTL" rotate-encryption-key --config "$T_CONF" 2>&1); rc=$?
t_is "rotate-encryption-key: exit 0" "$rc" 0
t_like "counts: providers" "$out" 'providers +2 document\(s\) read, 2 changed, 3 value\(s\) re-encrypted, 0 already current, 0 unreadable'
t_like "counts: ldapconfigs" "$out" 'ldapconfigs +1 document\(s\) read, 1 changed, 1 value\(s\) re-encrypted'
t_like "counts: systemconfigs" "$out" 'systemconfigs +[0-9]+ document\(s\) read, 1 changed, 1 value\(s\) re-encrypted'
t_like "counts: tenants" "$out" 'tenants +2 document\(s\) read, 1 changed, 2 value\(s\) re-encrypted'
t_like "counts: requestlogs" "$out" 'requestlogs +2 document\(s\) read, 1 changed, 6 value\(s\) re-encrypted'
t_like "says what to do next" "$out" 'remove encryption_key_previous from the configuration and restart'
after=$(all_enc)
t_is "still thirteen secrets" "$(printf '%s\n' "$after" | wc -l)" 13
changed=0 underB=0 underA=0 same_plain=0
while read -r coll id path value; do
	old=$(printf '%s\n' "$before" | awk -v c="$coll" -v i="$id" -v p="$path" '$1==c && $2==i && $3==p {print $4}')
	[ -n "$old" ] && [ "$old" != "$value" ] && changed=$((changed + 1))
	[ "$(decrypt "$KEY_B" "$value")" != "<undecryptable>" ] && underB=$((underB + 1))
	[ "$(decrypt "$KEY_A" "$value")" != "<undecryptable>" ] && underA=$((underA + 1))
	[ -n "$old" ] && [ "$(decrypt "$KEY_B" "$value")" = "$(decrypt "$KEY_A" "$old")" ] && same_plain=$((same_plain + 1))
done <<<"$after"
t_is "every enc: value changed" "$changed" 13
t_is "every one decrypts with key B" "$underB" 13
t_is "none with key A" "$underA" 0
t_is "the plaintexts are the same" "$same_plain" 13
t_is "a document without secrets was not written" "$(sqlite3 "$DB" "SELECT v FROM requestlogs WHERE id='0000000000000000000000f2'")" 0

t_is "the rotation is in the audit trail" "$(dump configchanges 'd.filter(e=>e.action==="rotate-key").map(e=>[e.user,e.target,e.summary].join()).join("|")')" \
	"prismctl,system,rotate-key system: encryption key rotation; valuesRotated: (none) -> 13, valuesUnreadable: (none) -> 0"
out=$("$PRISMCTL" rotate-encryption-key --config "$T_CONF" 2>&1); rc=$?
t_is "a second run: exit 0" "$rc" 0
t_like "... changes nothing" "$out" '0 value\(s\) re-encrypted; all 13 stored secret\(s\) are readable with encryption_key'
t_is "... the values are as they were" "$(all_enc)" "$after"

# Only key B from now on: the API still reads every secret.
set_keys "$KEY_B"
cgi GET /api/prism/admin/ldap '' "$ALICE"
t_is "the LDAP settings still have a password" "$(jget bindPassword)" '***'
[ $have_slapd = 1 ] && t_is "the LDAP test binds with the rotated password (key B only)" "$(ldap_test)" "LDAP bind successful"
cgi POST /api/prism/admin/system/verify-password '{"password":"first-admin-pass-1"}' "$ALICE"
RE=$(jget reauthToken)
cgi GET '/api/prism/admin/system/export-settings?includeSecrets=true' '' "$ALICE" "$RE"
t_is "export with secrets under key B: 200" "$T_STATUS" 200
pjs() { printf '%s' "$T_BODY" | node -e 'let s="";process.stdin.on("data",c=>s+=c).on("end",()=>{const p=JSON.parse(s).providers.find(p=>p.slug===process.argv[1]);process.stdout.write(p.config.auth[process.argv[2]])})' "$1" "$2"; }
t_is "the provider credentials read back" "$(decrypt "$KEY_B" "$(pjs up secretAccessKey)"),$(decrypt "$KEY_B" "$(pjs up2 apiKey)")" \
	"aws-secret-rotate,sk-rotate-1"

# A value that no key opens (written with key C), next to a new one under the old key A.
set_keys "$KEY_B" "$KEY_A"
log_doc 0000000000000000000000f3 "\"promptSnapshot\":{\"lastUserMessage\":\"$(encrypt "$KEY_C" 'lost forever')\"}"
log_doc 0000000000000000000000f4 "\"responseSnapshot\":{\"content\":\"$(encrypt "$KEY_A" 'late arrival')\"}"
"$PRISMCTL" rotate-encryption-key --config "$T_CONF" >"$T_TMP/rot.out" 2>"$T_TMP/rot.err"; rc=$?
t_is "a value readable with neither key: exit 1" "$rc" 1
t_like "... reported by collection, id and path" "$(cat "$T_TMP/rot.err")" \
	'requestlogs 0000000000000000000000f3 promptSnapshot.lastUserMessage: readable with neither encryption_key nor encryption_key_previous; left as it is'
t_like "... counted" "$(cat "$T_TMP/rot.out")" 'requestlogs +4 document\(s\) read, 1 changed, 1 value\(s\) re-encrypted, 6 already current, 1 unreadable'
t_is "... left as it is" "$(decrypt "$KEY_C" "$(sqlite3 "$DB" "SELECT json_extract(doc,'$.promptSnapshot.lastUserMessage') FROM requestlogs WHERE id='0000000000000000000000f3'")")" "lost forever"
t_is "the other value was rotated" "$(decrypt "$KEY_B" "$(sqlite3 "$DB" "SELECT json_extract(doc,'$.responseSnapshot.content') FROM requestlogs WHERE id='0000000000000000000000f4'")")" "late arrival"

set_keys "$KEY_B"
out=$("$PRISMCTL" rotate-encryption-key --config "$T_CONF" 2>&1); rc=$?
t_is "without encryption_key_previous: the unreadable value still fails the run" "$rc" 1
t_like "... with a note about the missing previous key" "$out" 'note: encryption_key_previous is not set'
"$PRISMCTL" rotate-encryption-key --config "$T_CONF" extra >/dev/null 2>&1; rc=$?
t_is "an extra argument: exit 2" "$rc" 2

[ $have_slapd = 1 ] && slapd_stop "$T_TMP/slapd"
t_done
