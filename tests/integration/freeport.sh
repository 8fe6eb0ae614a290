# freeport.sh -- free_loopback_port: a loopback port nobody listens on, below the kernel's ephemeral range
# (32768 and up), where client connections (of parallel tests, of a benchmark's load) could hold it.
# Sourced by lib.sh (t_free_port) and by bench/run-gateway.sh, which cannot source lib.sh and its TAP traps.
free_loopback_port() {
	local p lo
	lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$lo" -gt 21000 ] || lo=32768
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % (lo - 20000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}
