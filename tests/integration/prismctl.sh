#!/bin/bash
# prismctl init / check-config / keys / version.
. "$(dirname "$0")/lib.sh"

conf=$T_TMP/etc/model-prism/prism.conf
t_run "init writes a configuration" "$PRISMCTL" init --config "$conf" --data-dir "$T_TMP/var/lib/prism" --run-dir "$T_TMP/run/prism"
t_is "config file mode 0600" "$(stat -c %a "$conf")" 600
t_is "data dir mode 0750" "$(stat -c %a "$T_TMP/var/lib/prism")" 750
t_is "run dir mode 0750" "$(stat -c %a "$T_TMP/run/prism")" 750
jwt=$(sed -n 's/^jwt_secret = //p' "$conf")
enc=$(sed -n 's/^encryption_key = //p' "$conf")
t_like "jwt_secret is 256 random bits" "$jwt" '^[0-9a-f]{64}$'
t_like "encryption_key is 256 random bits" "$enc" '^[0-9a-f]{64}$'
t_run "the written file validates" "$PRISMCTL" check-config --config "$conf"

out=$("$PRISMCTL" init --config "$conf" --data-dir "$T_TMP/d" --run-dir "$T_TMP/r" 2>&1); rc=$?
t_is "init refuses to overwrite" "$rc" 1
t_like "refusal says why" "$out" 'already exists \(use --force'
t_is "secrets untouched after refusal" "$(sed -n 's/^jwt_secret = //p' "$conf")" "$jwt"
t_run "init --force replaces" "$PRISMCTL" init --config "$conf" --data-dir "$T_TMP/d" --run-dir "$T_TMP/r" --force
t_unlike "fresh secrets after --force" "$(sed -n 's/^jwt_secret = //p' "$conf")" "^$jwt\$"
t_is "no temporary files left" "$(ls "$(dirname "$conf")" | grep -c tmp)" 0

out=$("$PRISMCTL" check-config --config "$conf" --show 2>&1)
t_like "--show masks secrets" "$out" 'jwt_secret = \(set\)'
t_unlike "--show never prints a secret" "$out" "$(sed -n 's/^jwt_secret = //p' "$conf")"
t_like "--show prints defaults" "$out" 'threads = 64'

printf 'threads = 0\nfoo = bar\n' >>"$conf"
out=$("$PRISMCTL" check-config --config "$conf" 2>&1); rc=$?
t_is "check-config fails on a bad file" "$rc" 1
t_like "with file and line" "$out" "$conf:[0-9]+: threads: '0' is not an integer between 1 and 1024"
t_like "all errors" "$out" "$conf:[0-9]+: unknown key 'foo'"

out=$(PRISM_CONFIG="$conf" "$PRISMCTL" check-config 2>&1)
t_like "PRISM_CONFIG selects the file" "$out" "$conf:"

t_like "keys lists the table" "$("$PRISMCTL" keys | cut -f1 | tr '\n' ' ')" 'listen processes threads .*jwt_secret.*max_body_size'
t_like "version" "$("$PRISMCTL" version)" '^prismctl [0-9]+\.[0-9]+\.[0-9]+$'
"$PRISMCTL" frobnicate >/dev/null 2>&1; rc=$?
t_is "unknown command exits 2" "$rc" 2
out=$("$PRISMCTL" init --config "$T_TMP/x.conf" --data-dir relative --run-dir /tmp 2>&1); rc=$?
t_is "relative data dir refused" "$rc" 2
t_done
