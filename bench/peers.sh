# bench/peers.sh -- the peer gateways of the benchmark: install, start, describe, stop.
#
# A bash library, sourced by the benchmark driver (not run directly).  Each peer is configured to forward
# OpenAI-style chat completions to ONE OpenAI-compatible upstream base URL given at start, so that the peers,
# prism and the floor are measured against the same fake upstream.
#
#   peers_cache                          the cache dir the peers install into
#   peer_install NAME                    NAME: portkey | litellm | bifrost; prints the installed version
#   peer_start NAME PORT UPSTREAM LOG    starts it on 127.0.0.1:PORT; prints the PID(s) to measure
#   peer_stop NAME                       stops what peer_start started
#   peer_request NAME                    prints path, model and extra header lines for a chat completion
#
# Nothing is installed system-wide: everything (npm tree, Python venv, Go module and build caches, binaries)
# goes under the cache dir, so that deleting it undoes the lot.  Versions are pinned (overridable through the
# environment) so that two runs compare the same software; peer_install is a no-op when the pinned version is
# already there, which keeps a re-run offline.
#
# Environment:
#   PRISM_BENCH_CACHE            cache dir (default $HOME/.cache/model-prism-bench)
#   PRISM_BENCH_OUT              where peer_start writes peer-NAME.conf (default: the state dir below)
#   PRISM_BENCH_PORTKEY_VERSION  @portkey-ai/gateway version (default below)
#   PRISM_BENCH_LITELLM_VERSION  litellm version (default below; 1.82.7 and 1.82.8 are refused)
#   PRISM_BENCH_BIFROST_VERSION  github.com/maximhq/bifrost/transports version (default below)
#   PRISM_BENCH_PYTHON           the python that makes the LiteLLM venv (default python3)

# The newest Portkey gateway on the npm registry here (the registry also has 1.9.8, which behaves the same).
PEERS_PORTKEY_VERSION_DEFAULT=1.15.2
# Portkey declares @hono/node-server ^1.3.3, which resolves to 1.19.x.  From 1.14.2 on, node-server's
# lightweight Response hands out the upstream fetch Response's own (immutable) Headers when a stream body is
# wrapped, and Portkey then fails every streaming chat completion with "TypeError: immutable" in
# updateHeaders (Portkey-AI/gateway issue #1389, still open).  1.14.1 is the newest release inside Portkey's
# declared range without that behaviour, so it is pinned through npm "overrides".
PEERS_PORTKEY_HONO_NODE_SERVER=1.14.1
# The later litellm releases checked (1.108.8 to 1.108.14, 1.109.3, 1.110.x) pin litellm-proxy-extras or
# litellm-enterprise builds (from 1.110 also a litellm-proxy package) that the PyPI index here does not
# serve, so their [proxy] extra does not install; 1.108.7 does.  1.82.7 and 1.82.8 are never used (the issue
# excludes them).
PEERS_LITELLM_VERSION_DEFAULT=1.108.7
# The HTTP transport's module is github.com/maximhq/bifrost/transports (package bifrost-http).  Its go.mod
# has no /v2 suffix, so the v2.x tags cannot be installed with go install; v1.5.15 is a v1 release.
PEERS_BIFROST_VERSION_DEFAULT=v1.5.15

# The dummy credentials: nothing here is secret (the upstream is a local fake that accepts any key), but
# LiteLLM refuses to start without a master key, and the OpenAI providers send some bearer token.
PEERS_UPSTREAM_KEY=dummy
PEERS_LITELLM_MASTER_KEY=sk-prism-bench-dummy

peers_cache() {
	printf '%s\n' "${PRISM_BENCH_CACHE:-$HOME/.cache/model-prism-bench}"
}

# Per-run state (pid files, generated configs, the upstream each peer was started with).
_peers_state() {
	printf '%s\n' "$(peers_cache)/run"
}

_peers_out() {
	printf '%s\n' "${PRISM_BENCH_OUT:-$(_peers_state)}"
}

_peers_known() {
	case "${1:-}" in
	portkey|litellm|bifrost) return 0 ;;
	*) echo "unknown peer '${1:-}' (portkey, litellm or bifrost)"; return 1 ;;
	esac
}

# The installer's output goes to a log; on failure its last lines are what the driver records.
_peers_fail_log() { # LOGFILE MESSAGE
	echo "$2"
	[ -f "$1" ] && tail -n 25 "$1"
	return 1
}

_peers_portkey_version() { printf '%s\n' "${PRISM_BENCH_PORTKEY_VERSION:-$PEERS_PORTKEY_VERSION_DEFAULT}"; }
_peers_litellm_version() { printf '%s\n' "${PRISM_BENCH_LITELLM_VERSION:-$PEERS_LITELLM_VERSION_DEFAULT}"; }
_peers_bifrost_version() { printf '%s\n' "${PRISM_BENCH_BIFROST_VERSION:-$PEERS_BIFROST_VERSION_DEFAULT}"; }

# A package.json "version" field, read with node (present whenever the Portkey tree is).
_peers_npm_version() { # PACKAGE_JSON
	[ -f "$1" ] || return 1
	node -e 'process.stdout.write(require(process.argv[1]).version)' "$1" 2>/dev/null
}

peer_install() {
	local name="${1:-}"
	_peers_known "$name" || return 1
	local dir
	dir="$(peers_cache)/$name"
	mkdir -p "$dir" || { echo "cannot create $dir"; return 1; }
	"_peers_install_$name" "$dir"
}

_peers_install_portkey() {
	local dir="$1" want have hono log="$1/install.log"
	want="$(_peers_portkey_version)"
	command -v node >/dev/null 2>&1 || { echo "node is not installed"; return 1; }
	command -v npm >/dev/null 2>&1 || { echo "npm is not installed"; return 1; }
	have="$(_peers_npm_version "$dir/node_modules/@portkey-ai/gateway/package.json")"
	hono="$(_peers_npm_version "$dir/node_modules/@hono/node-server/package.json")"
	if [ "$have" != "$want" ] || [ "$hono" != "$PEERS_PORTKEY_HONO_NODE_SERVER" ]; then
		# Our own package.json in the cache, so that npm honours the override (overrides only apply from the
		# root package).  --ignore-scripts: the package's only install script is patch-package, whose
		# patches/ folder is not in the published package, so it has nothing to do.
		cat >"$dir/package.json" <<-EOF
		{
		  "name": "prism-bench-portkey",
		  "private": true,
		  "description": "Portkey gateway for the Open Model Prism benchmark (generated by bench/peers.sh)",
		  "dependencies": { "@portkey-ai/gateway": "$want" },
		  "overrides": { "@hono/node-server": "$PEERS_PORTKEY_HONO_NODE_SERVER" }
		}
		EOF
		rm -f "$dir/package-lock.json"
		if ! npm install --prefix "$dir" --no-audit --no-fund --ignore-scripts --omit=dev >"$log" 2>&1; then
			_peers_fail_log "$log" "npm install @portkey-ai/gateway@$want failed:"
			return 1
		fi
		have="$(_peers_npm_version "$dir/node_modules/@portkey-ai/gateway/package.json")"
		hono="$(_peers_npm_version "$dir/node_modules/@hono/node-server/package.json")"
		if [ "$have" != "$want" ]; then
			_peers_fail_log "$log" "npm installed @portkey-ai/gateway '${have:-nothing}', not $want"
			return 1
		fi
	fi
	# Portkey's server binds every interface and has no host option; this preload makes it bind 127.0.0.1
	# (the bench's servers listen on loopback only).  It only adds the host argument to listen(port).
	cat >"$dir/listen-loopback.cjs" <<-'EOF'
	// Generated by bench/peers.sh: bind servers that listen on a bare port to 127.0.0.1 only.
	'use strict';
	const net = require('net');
	const listen = net.Server.prototype.listen;
	net.Server.prototype.listen = function (...args) {
		if (typeof args[0] === 'number' && typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1');
		return listen.apply(this, args);
	};
	EOF
	printf '%s (node %s, @hono/node-server %s)\n' "$have" "$(node --version)" "$hono"
}

_peers_install_litellm() {
	local dir="$1" want have py log="$1/install.log"
	want="$(_peers_litellm_version)"
	case "$want" in
	1.82.7|1.82.8) echo "litellm $want is excluded (the issue forbids 1.82.7 and 1.82.8)"; return 1 ;;
	esac
	py="${PRISM_BENCH_PYTHON:-python3}"
	have="$("$dir/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null)"
	if [ "$have" != "$want" ] || [ ! -x "$dir/venv/bin/litellm" ]; then
		: >"$log"
		if [ ! -x "$dir/venv/bin/python" ] && ! "$py" -m venv "$dir/venv" >>"$log" 2>&1; then
			_peers_fail_log "$log" "$py -m venv $dir/venv failed:"
			return 1
		fi
		if ! "$dir/venv/bin/python" -m pip install --disable-pip-version-check --no-input \
			"litellm[proxy]==$want" >>"$log" 2>&1; then
			_peers_fail_log "$log" "pip install litellm[proxy]==$want failed:"
			return 1
		fi
		have="$("$dir/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))' 2>/dev/null)"
		if [ "$have" != "$want" ] || [ ! -x "$dir/venv/bin/litellm" ]; then
			_peers_fail_log "$log" "pip left litellm '${have:-nothing}' instead of $want"
			return 1
		fi
	fi
	printf '%s (python %s)\n' "$have" "$("$dir/venv/bin/python" -c 'import platform; print(platform.python_version())')"
}

# The Go toolchain, its module cache and build cache all point into the cache dir.
_peers_go_env() { # DIR
	export GOBIN="$1/bin" GOPATH="$1/go" GOMODCACHE="$1/go/pkg/mod" GOCACHE="$1/go/cache"
	export GOFLAGS=-mod=mod GOTOOLCHAIN=auto
	# (-mod=mod matters for the throwaway module below; go install PKG@V ignores the main module.)
}

_peers_install_bifrost() {
	local dir="$1" want have log="$1/install.log" mod=github.com/maximhq/bifrost/transports/bifrost-http
	want="$(_peers_bifrost_version)"
	command -v go >/dev/null 2>&1 || { echo "go is not installed"; return 1; }
	if [ -x "$dir/bin/bifrost-http" ]; then
		have="$(go version -m "$dir/bin/bifrost-http" 2>/dev/null | awk '$1 == "mod" { print $3 }')"
	fi
	if [ "${have:-}" != "$want" ]; then
		# One exact release, no version list: the Go module proxy here serves only some versions of some
		# modules and refuses listing this one, so guessing further versions is pointless.  Subshells keep
		# the Go environment out of the caller.
		: >"$log"
		if ! (_peers_go_env "$dir" && go install "$mod@$want") >>"$log" 2>&1; then
			# go install PKG@V first asks the proxy for the package path itself as a module; a refusal
			# there (403 rather than 404) ends the lookup before the real module, .../transports, is
			# asked for.  So ask for that module explicitly, in a throwaway module of our own, and build.
			echo "--- retrying through an explicit require of ${mod%/bifrost-http}@$want" >>"$log"
			rm -rf "$dir/build"
			mkdir -p "$dir/build" "$dir/bin"
			if ! (_peers_go_env "$dir" && cd "$dir/build" && go mod init prism-bench/bifrost &&
				go get "${mod%/bifrost-http}@$want" && go build -o "$dir/bin/bifrost-http" "$mod") >>"$log" 2>&1; then
				_peers_fail_log "$log" "go install $mod@$want failed (and so did go get ${mod%/bifrost-http}@$want):"
				return 1
			fi
		fi
		have="$(go version -m "$dir/bin/bifrost-http" 2>/dev/null | awk '$1 == "mod" { print $3 }')"
		if [ "$have" != "$want" ]; then
			_peers_fail_log "$log" "built bifrost-http reports version '${have:-none}', not $want"
			return 1
		fi
	fi
	printf '%s (%s)\n' "$have" "$(go version -m "$dir/bin/bifrost-http" 2>/dev/null | awk 'NR == 1 { print $2 }')"
}

# The upstream as a base URL without a trailing slash or /v1 (each peer adds what it needs).
_peers_base() {
	local u="${1%/}"
	u="${u%/v1}"
	printf '%s\n' "${u%/}"
}

# A process and all its descendants, parents first.
_peers_tree() { # PID
	local pid="$1" kid
	[ -d "/proc/$pid" ] || return 0
	printf '%s\n' "$pid"
	for kid in $(ps -o pid= --ppid "$pid" 2>/dev/null); do
		_peers_tree "$kid"
	done
}

# The start time of a process (clock ticks since boot), to tell our process from a later one with its pid.
_peers_starttime() {
	[ -r "/proc/$1/stat" ] || return 1
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $20 }'
}

# True when something already accepts connections on 127.0.0.1:PORT.
_peers_port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

peer_request() {
	local name="${1:-}" up
	_peers_known "$name" >&2 || return 1
	case "$name" in
	portkey)
		# Portkey routes by headers: the provider, and a custom host that replaces api.openai.com/v1.
		up="$(cat "$(_peers_state)/portkey.upstream" 2>/dev/null)"
		[ -n "$up" ] || { echo "peer_request portkey: start it first (the upstream goes into a header)" >&2; return 1; }
		printf '%s\n' /v1/chat/completions bench-model \
			"x-portkey-provider: openai" "x-portkey-custom-host: $up/v1" \
			"Authorization: Bearer $PEERS_UPSTREAM_KEY"
		;;
	litellm)
		printf '%s\n' /v1/chat/completions bench-model "Authorization: Bearer $PEERS_LITELLM_MASTER_KEY"
		;;
	bifrost)
		# Bifrost's unified API names the provider in the model: provider/model.
		printf '%s\n' /v1/chat/completions openai/bench-model
		;;
	esac
}

# One real chat completion through the peer, as the driver will send it; true on a 200 with choices.
_peers_probe() { # NAME PORT
	local req path model body line
	req="$(peer_request "$1" 2>/dev/null)" || return 1
	path="$(sed -n 1p <<<"$req")"
	model="$(sed -n 2p <<<"$req")"
	local -a hdr=(-H "Content-Type: application/json")
	while IFS= read -r line; do
		[ -n "$line" ] && hdr+=(-H "$line")
	done < <(sed -n '3,$p' <<<"$req")
	body="$(curl -s -m 5 -X POST "${hdr[@]}" "http://127.0.0.1:$2$path" \
		-d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":16}" 2>/dev/null)" || return 1
	case "$body" in *'"choices"'*) return 0 ;; esac
	return 1
}

peer_start() {
	local name="${1:-}" port="${2:-}" upstream="${3:-}" log="${4:-}"
	_peers_known "$name" || return 1
	if [ -z "$port" ] || [ -z "$upstream" ] || [ -z "$log" ]; then
		echo "usage: peer_start NAME PORT UPSTREAM LOGFILE"; return 1
	fi
	local dir state out base
	dir="$(peers_cache)/$name"
	state="$(_peers_state)"
	out="$(_peers_out)"
	base="$(_peers_base "$upstream")"
	mkdir -p "$state" "$out" || { echo "cannot create $state or $out"; return 1; }
	if [ -f "$state/$name.pid" ]; then
		peer_stop "$name" >/dev/null 2>&1
	fi
	if _peers_port_busy "$port"; then
		echo "$name: port $port on 127.0.0.1 is already in use"; return 1
	fi
	: >"$log" || { echo "cannot write $log"; return 1; }

	local -a cmd env
	local conf="$out/peer-$name.conf"
	case "$name" in
	portkey)
		[ -f "$dir/node_modules/@portkey-ai/gateway/build/start-server.js" ] || { echo "portkey is not installed (peer_install portkey)"; return 1; }
		# --headless: no UI and no /log/stream route (nobody watches it); the per-request work is Portkey's
		# default.  REDIS_CONNECTION_STRING is dropped so that no cache backend is attached.
		env=(env -u REDIS_CONNECTION_STRING)
		cmd=(node --require "$dir/listen-loopback.cjs" "$dir/node_modules/@portkey-ai/gateway/build/start-server.js"
			"--port=$port" --headless)
		printf '%s\n' "$base" >"$state/portkey.upstream"
		{
			echo "# Portkey AI gateway @portkey-ai/gateway $(_peers_npm_version "$dir/node_modules/@portkey-ai/gateway/package.json")" \
				"(@hono/node-server $(_peers_npm_version "$dir/node_modules/@hono/node-server/package.json") pinned), node $(node --version)"
			echo "# command: ${env[*]} ${cmd[*]}"
			echo "# Portkey has no config file here: it routes each request by its headers, which are:"
			peer_request portkey | sed -n '3,$p' | sed 's/^/#   /'
			echo "# path: $(peer_request portkey | sed -n 1p), model: $(peer_request portkey | sed -n 2p)"
		} >"$conf"
		;;
	litellm)
		[ -x "$dir/venv/bin/litellm" ] || { echo "litellm is not installed (peer_install litellm)"; return 1; }
		# One model, pointed at the upstream through LiteLLM's OpenAI provider.  No database (no
		# DATABASE_URL), spend logs and telemetry off; the master key is required by LiteLLM to start.
		cat >"$state/litellm.yaml" <<-EOF
		model_list:
		  - model_name: bench-model
		    litellm_params:
		      model: openai/bench-model
		      api_base: $base/v1
		      api_key: $PEERS_UPSTREAM_KEY
		litellm_settings:
		  telemetry: false
		general_settings:
		  master_key: $PEERS_LITELLM_MASTER_KEY
		  disable_spend_logs: true
		EOF
		# LITELLM_LOCAL_MODEL_COST_MAP: use the cost map shipped in the package instead of fetching it from
		# the internet at start (which cannot be reached here and costs retries).
		env=(env -u DATABASE_URL -u REDIS_HOST -u REDIS_URL LITELLM_TELEMETRY=False LITELLM_LOCAL_MODEL_COST_MAP=True)
		cmd=("$dir/venv/bin/litellm" --config "$state/litellm.yaml" --port "$port" --host 127.0.0.1)
		{
			echo "# LiteLLM proxy $("$dir/venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))'), 1 worker (uvicorn)"
			echo "# command: ${env[*]} ${cmd[*]}"
			echo "# $state/litellm.yaml:"
			cat "$state/litellm.yaml"
		} >"$conf"
		;;
	bifrost)
		[ -x "$dir/bin/bifrost-http" ] || { echo "bifrost is not installed (peer_install bifrost)"; return 1; }
		# An app dir of its own with config.json: the OpenAI provider with the upstream as its base URL
		# (Bifrost appends /v1/chat/completions), one dummy key for every model, and no config or logs store
		# (no SQLite database, no request logging).  Written from the transport's source and docs; not yet
		# run here, because the module proxy here refuses the bifrost modules (see peer_install).
		rm -rf "$state/bifrost-app"
		mkdir -p "$state/bifrost-app"
		cat >"$state/bifrost-app/config.json" <<-EOF
		{
		  "client": {
		    "drop_excess_requests": false,
		    "enable_logging": false
		  },
		  "providers": {
		    "openai": {
		      "keys": [ { "name": "bench", "value": "$PEERS_UPSTREAM_KEY", "models": [], "weight": 1.0 } ],
		      "network_config": { "base_url": "$base" }
		    }
		  },
		  "config_store": { "enabled": false },
		  "logs_store": { "enabled": false }
		}
		EOF
		env=(env)
		cmd=("$dir/bin/bifrost-http" -host 127.0.0.1 -port "$port" -app-dir "$state/bifrost-app")
		{
			echo "# Bifrost HTTP transport $(go version -m "$dir/bin/bifrost-http" 2>/dev/null | awk '$1 == "mod" { print $2 "@" $3 }')"
			echo "# command: ${cmd[*]}"
			echo "# $state/bifrost-app/config.json:"
			cat "$state/bifrost-app/config.json"
		} >"$conf"
		;;
	esac

	# Started with stdin from /dev/null and both outputs in the log, so that a driver calling
	# pid=$(peer_start ...) does not wait on the pipe for as long as the peer lives.
	"${env[@]}" "${cmd[@]}" </dev/null >>"$log" 2>&1 &
	local pid=$!
	printf '%s %s\n' "$pid" "$(_peers_starttime "$pid")" >"$state/$name.pid"

	local deadline=$((SECONDS + 60))
	while :; do
		if ! kill -0 "$pid" 2>/dev/null; then
			echo "$name exited during start-up; last lines of $log:"
			tail -n 15 "$log"
			rm -f "$state/$name.pid"
			return 1
		fi
		_peers_probe "$name" "$port" && break
		if [ "$SECONDS" -ge "$deadline" ]; then
			echo "$name did not answer a chat completion on 127.0.0.1:$port within 60 s; last lines of $log:"
			tail -n 15 "$log"
			peer_stop "$name" >/dev/null 2>&1
			return 1
		fi
		sleep 0.5
	done

	# The processes that do the work: the started process (node, LiteLLM's python running uvicorn in
	# process, the Go binary) and any children it forked (uvicorn workers when more than one).
	_peers_tree "$pid" | tr '\n' ' ' | sed 's/ $//'
	echo
}

peer_stop() {
	local name="${1:-}" state pid start pids p i
	_peers_known "$name" || return 1
	state="$(_peers_state)"
	[ -f "$state/$name.pid" ] || return 0
	read -r pid start <"$state/$name.pid"
	rm -f "$state/$name.pid" "$state/$name.upstream"
	[ -n "$pid" ] || return 0
	# Only our own process: the pid with the start time it had when peer_start recorded it.
	[ "$(_peers_starttime "$pid")" = "$start" ] || return 0
	pids="$(_peers_tree "$pid")"
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 50); do
		local alive=
		for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ -z "$alive" ] && break
		sleep 0.2
	done
	for p in $pids; do kill -KILL "$p" 2>/dev/null; done
	# Reap it when it is our own child, so no zombie is left behind.
	wait "$pid" 2>/dev/null
	return 0
}
