#!/bin/bash
# Shared state across hosts and restarts: two instances (two segments) sharing one store see an admin
# change through the store's generation counter; prismctl shm reads a running pool; a segment of another
# layout version is refused.
. "$(dirname "$0")/lib.sh"
t_require node

t_make_config "generation_poll = 300ms"
CONF_A=$T_CONF
# Instance B: another configuration file (so another segment), the same store.
CONF_B=$T_TMP/etc/prism-b.conf
sed -e "s|^shm_name = .*|shm_name = /${T_SHM}-b|" "$CONF_A" >"$CONF_B"
chmod 600 "$CONF_B"
trap 'rm -f "/dev/shm/${T_SHM}-b"; t_cleanup' EXIT

t_start_prism --processes 2 --threads 2 || { t_fail "instance A started"; t_done; exit; }
PID_A=$T_PRISM_PID
"$PRISM_FCGI" --config "$CONF_B" --listen "unix:$T_TMP/run/b.sock" --processes 1 --threads 2 >>"$T_TMP/prism-b.log" 2>&1 &
PID_B=$!
t_track "$PID_B"
t_log "$T_TMP/prism-b.log"
t_wait_for grep -q "listening on" "$T_TMP/prism-b.log" || t_fail "instance B started"

gen_of() { "$PRISMCTL" shm --config "$1" 2>&1 | sed -n 's/.*store generation \([0-9-]*\).*/\1/p'; }
t_wait_for sh -c "[ \"\$('$PRISMCTL' shm --config '$CONF_A' 2>&1 | grep -c 'store generation 0')\" = 1 ]"
out=$("$PRISMCTL" shm --config "$CONF_A" 2>&1); rc=$?
t_is "prismctl shm reads the running pool" "$rc" 0
t_like "it names the segment and its layout" "$out" "segment /$T_SHM: layout [0-9]+"
t_like "it shows the tenant cache" "$out" 'tenant cache: [0-9]+ of [0-9]+ slots'
t_is "instance A has seen generation 0" "$(gen_of "$CONF_A")" 0
t_is "instance B has seen generation 0" "$(gen_of "$CONF_B")" 0

# An admin change through the shared store (import bumps the generation) reaches both instances.
printf '{"_meta":{"type":"model-prism-settings-export"},"routingCategories":[{"key":"coding","name":"Coding","costTier":"medium"}]}' >"$T_TMP/cat.json"
t_run "an import through instance A's configuration" "$PRISMCTL" import --config "$CONF_A" "$T_TMP/cat.json"
ok=0
for _ in $(seq 1 50); do
	[ "$(gen_of "$CONF_A")" = 1 ] && [ "$(gen_of "$CONF_B")" = 1 ] && { ok=1; break; }
	sleep 0.1
done
t_is "both instances observed the new generation within the poll interval" "$ok" 1
t_like "A's caches were invalidated" "$("$PRISMCTL" shm --config "$CONF_A")" 'tenant cache: .* [1-9][0-9]* invalidations'
t_like "B's caches were invalidated" "$("$PRISMCTL" shm --config "$CONF_B")" 'tenant cache: .* [1-9][0-9]* invalidations'
t_like "the change was logged" "$(cat "$T_TMP/prism-b.log")" 'configuration generation 1: caches invalidated'
m=$(env -i PATH="$PATH" REQUEST_METHOD=GET REQUEST_URI=/metrics REMOTE_ADDR=127.0.0.1 "$PRISM_FCGI" --config "$CONF_A" </dev/null 2>/dev/null)
t_like "CGI mode has no shared state for /metrics" "$m" '^Status: 503'

# No pool running with a configuration: prismctl shm says so and creates nothing.
sed -e "s|^shm_name = .*|shm_name = /${T_SHM}-none|" "$CONF_A" >"$T_TMP/etc/none.conf"
out=$("$PRISMCTL" shm --config "$T_TMP/etc/none.conf" 2>&1); rc=$?
t_is "no pool: exit 1" "$rc" 1
t_like "no pool: says so" "$out" 'no pool is running'
t_is "no pool: no segment created" "$(test -e "/dev/shm/${T_SHM}-none" && echo created || echo none)" none

# A segment left by another layout version is refused with a message naming it.
kill -KILL "$PID_B"
wait "$PID_B" 2>/dev/null
pkill -KILL -f "prism-b.conf" 2>/dev/null
sleep 0.3
t_is "the killed pool left its segment" "$(test -e "/dev/shm/${T_SHM}-b" && echo yes)" yes
printf '\x63\x00\x00\x00' | dd of="/dev/shm/${T_SHM}-b" bs=1 seek=8 count=4 conv=notrunc 2>/dev/null
out=$("$PRISM_FCGI" --config "$CONF_B" --listen "unix:$T_TMP/run/b2.sock" 2>&1); rc=$?
t_is "another layout version: the start is refused" "$rc" 1
t_like "naming the segment and the way out" "$out" "/${T_SHM}-b.*layout version 99.*prismctl shm --remove"
out=$("$PRISMCTL" shm --config "$CONF_A" --remove 2>&1); rc=$?
t_is "--remove refuses a segment a running pool maps" "$rc" 1
t_like "and names the process" "$out" 'is in use by process [0-9]+'
t_run "--remove takes the left-behind segment away" "$PRISMCTL" shm --config "$CONF_B" --remove
"$PRISM_FCGI" --config "$CONF_B" --listen "unix:$T_TMP/run/b3.sock" >>"$T_TMP/prism-b.log" 2>&1 &
t_track $!
t_wait_for grep -q "listening on unix:$T_TMP/run/b3.sock" "$T_TMP/prism-b.log"
t_like "instance B started on a fresh segment" "$(cat "$T_TMP/prism-b.log")" "listening on unix:$T_TMP/run/b3.sock"
t_done
