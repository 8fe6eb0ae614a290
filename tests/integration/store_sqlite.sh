#!/bin/bash
# The SQLite store through the real programs: start-up refusals that name the file, /health, migrate,
# export and import.
. "$(dirname "$0")/lib.sh"
t_require node runuser

t_make_config

# A working store: migrate, then /health says ok.
out=$("$PRISMCTL" migrate --config "$T_CONF" 2>&1); rc=$?
t_is "prismctl migrate" "$rc" 0
t_like "migrate reports the backend" "$out" 'sqlite store: 1 migration step\(s\) applied'
t_like "second migrate has nothing to do" "$("$PRISMCTL" migrate --config "$T_CONF" 2>&1)" '0 migration step'
t_is "database file created" "$(test -f "$T_TMP/data/prism.db" && echo yes)" yes

cgi_health() {
	env -i PATH="$PATH" REQUEST_METHOD=GET REQUEST_URI=/health "$PRISM_FCGI" --config "$1" </dev/null 2>"$T_TMP/cgi.err"
}
out=$(cgi_health "$T_CONF")
t_like "health ok with the store" "$out" '"status":"ok".*"store":"sqlite"'

# export / import through files
"$PRISMCTL" export --config "$T_CONF" --output "$T_TMP/export.json"
t_is "export file is private" "$(stat -c %a "$T_TMP/export.json")" 600
t_is "export type" "$(t_json _meta.type <"$T_TMP/export.json")" model-prism-settings-export
cat >"$T_TMP/import.json" <<'JSON'
{"_meta":{"type":"model-prism-settings-export"},
 "providers":[{"_id":"65a1b2c3d4e5f60718293a01","name":"Local vLLM","slug":"vllm","type":"vllm",
   "config":{"baseUrl":"http://127.0.0.1:8000","auth":{"type":"none"}}}],
 "tenants":[{"_id":"65a1b2c3d4e5f60718293a02","slug":"team-a","name":"Team A ✓","providerIds":["65a1b2c3d4e5f60718293a01"]}],
 "routingCategories":[{"key":"coding","name":"Coding","costTier":"medium"}]}
JSON
out=$("$PRISMCTL" import --config "$T_CONF" "$T_TMP/import.json" 2>&1); rc=$?
t_is "import succeeds" "$rc" 0
t_is "import counts tenants" "$(printf '%s' "$out" | t_json imported.tenants)" 1
"$PRISMCTL" export --config "$T_CONF" >"$T_TMP/export2.json"
t_is "exported tenant after import" "$(t_json tenants.0.name <"$T_TMP/export2.json")" "Team A ✓"
printf '{"_meta":{"type":"model-prism-settings-export"},"tenants":[{"slug":"b"},{"name":"no slug"}]}' >"$T_TMP/bad.json"
out=$("$PRISMCTL" import --config "$T_CONF" "$T_TMP/bad.json" 2>&1); rc=$?
t_is "invalid import exits 1" "$rc" 1
t_like "every problem listed" "$out" 'tenants\[0\]: name must be a non-empty string'
t_like "second problem listed" "$out" 'tenants\[1\]: slug must be a non-empty string'
t_like "says nothing changed" "$out" 'nothing was changed'
printf '{"_meta": ' >"$T_TMP/trunc.json"
out=$("$PRISMCTL" import --config "$T_CONF" "$T_TMP/trunc.json" 2>&1); rc=$?
t_is "malformed JSON exits 1" "$rc" 1
t_like "with file and position" "$out" "trunc.json:1:"

# A corrupt database file stops the start with a message naming the file.
cp "$T_CONF" "$T_TMP/corrupt.conf"
mkdir -p "$T_TMP/corrupt"
sed -i "s|^store = .*|store = sqlite:$T_TMP/corrupt/prism.db|" "$T_TMP/corrupt.conf"
head -c 8192 /dev/urandom >"$T_TMP/corrupt/prism.db"
out=$("$PRISM_FCGI" --config "$T_TMP/corrupt.conf" --listen "unix:$T_TMP/run/c.sock" 2>&1); rc=$?
t_is "corrupt store: daemon exits 1" "$rc" 1
t_like "corrupt store: message names the file" "$out" "$T_TMP/corrupt/prism.db"
t_is "corrupt store: no socket left" "$(test -e "$T_TMP/run/c.sock" && echo yes || echo no)" no
out=$("$PRISMCTL" migrate --config "$T_TMP/corrupt.conf" 2>&1); rc=$?
t_is "corrupt store: migrate exits 1" "$rc" 1
t_like "corrupt store: migrate names the file" "$out" "$T_TMP/corrupt/prism.db"

# An unwritable location: the service user cannot write the directory.
cp "$T_CONF" "$T_TMP/ro.conf"
chmod 644 "$T_TMP/ro.conf"
mkdir -p "$T_TMP/ro"
chmod 755 "$T_TMP/ro"
sed -i "s|^store = .*|store = sqlite:$T_TMP/ro/prism.db|" "$T_TMP/ro.conf"
out=$(runuser -u nobody -- "$PRISM_FCGI" --config "$T_TMP/ro.conf" --listen "unix:/tmp/prism-ro-$$.sock" 2>&1); rc=$?
t_is "unwritable store: exits 1" "$rc" 1
t_like "unwritable store: says which directory" "$out" "directory $T_TMP/ro is not writable"
rm -f "/tmp/prism-ro-$$.sock"

t_done
