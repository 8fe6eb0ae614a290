# slapd.sh -- a throwaway OpenLDAP server for the LDAP login tests.  Sourced (bash), not a test itself.
#
#   slapd_start DIR   writes DIR/slapd.conf, starts slapd on a free loopback port in 20000-29999 (another
#                     port when a parallel test took it first), waits until it answers and loads the fixture.
#                     Exports SLAPD_PORT and SLAPD_URL (ldap://127.0.0.1:PORT); also writes the port to
#                     DIR/port.  Returns non-zero (with the reason on stderr) when slapd cannot be started.
#   slapd_stop DIR    stops the instance started in DIR (by its pid, DIR/slapd.pid) and waits for it.
#
# With SLAPD_TLS=1 slapd_start also makes a throwaway CA and server certificate (openssl; SAN IP:127.0.0.1
# and DNS:localhost), offers StartTLS on the ldap:// port and listens on a second port for ldaps://.  It then
# also exports SLAPD_LDAPS_PORT, SLAPD_LDAPS_URL and SLAPD_CA_FILE (DIR/ca.pem) and writes DIR/ldaps_port.
# Without it the server knows no TLS at all (StartTLS is refused).
#
# Everything lives under DIR (configuration, database, log DIR/slapd.log); the caller removes DIR.
# SLAPD_DEBUG=stats (any slapd -d level) sends slapd's own log to DIR/slapd.log; the default 0 keeps it quiet.
# Works as root and as a normal user (unprivileged port, no setuid).  Needs the Debian packages slapd and
# ldap-utils.
#
# The fixture (suffix dc=prism,dc=test):
#   cn=admin,dc=prism,dc=test         rootdn, password admin-pw (loads the fixture)
#   cn=reader,dc=prism,dc=test        service account, password reader-pw: may search and read everything
#                                     but passwords
#   uid=alice,ou=people,...           password alice-pw, member of cn=admins and cn=finance (so the order
#                                     of a group mapping decides her role)
#   uid=bob,ou=people,...             password bob-pw, member of cn=finance
#   uid=carol,ou=people,...           password carol-pw, no group
#   uid=dave*(x),ou=people,...        password dave-pw, no group; uid with filter metacharacters
#   uid=twin1 / uid=twin2,ou=people   passwords twin1-pw / twin2-pw, both cn=twin (a filter on cn is ambiguous)
#   cn=admins,ou=groups,... / cn=finance,ou=groups,...   groupOfNames
# memberOf comes from the memberof overlay: users get it when a group naming them as member is added.
# Anonymous users may only bind (no search); each user may read its own entry.

SLAPD_BIN=${SLAPD_BIN:-/usr/sbin/slapd}
SLAPD_SUFFIX="dc=prism,dc=test"
SLAPD_ROOTDN="cn=admin,$SLAPD_SUFFIX"
SLAPD_ROOTPW="admin-pw"

_slapd_hash() { /usr/sbin/slappasswd -s "$1"; }

# Running and not a zombie (kill -0 alone succeeds on an exited child nobody has reaped yet).
_slapd_alive() {
	local st=""
	kill -0 "$1" 2>/dev/null || return 1
	read -r _ _ st _ <"/proc/$1/stat" 2>/dev/null || return 1
	[ "$st" != Z ]
}

# A CA and a server certificate signed by it (EC keys: fast to make).
_slapd_certs() {
	local dir=$1
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
		-subj "/CN=Prism Test CA" -keyout "$dir/ca.key" -out "$dir/ca.pem" \
		-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" || return 1
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
		-keyout "$dir/server.key" -out "$dir/server.csr" || return 1
	printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=CA:FALSE" \
		"keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$dir/server.ext"
	openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
		-days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" || return 1
}

_slapd_conf() {
	local dir=$1 tls=""
	if [ "${SLAPD_TLS:-0}" = 1 ]; then
		tls="TLSCACertificateFile  $dir/ca.pem
TLSCertificateFile    $dir/server.pem
TLSCertificateKeyFile $dir/server.key"
	fi
	cat >"$dir/slapd.conf" <<EOF
include     /etc/ldap/schema/core.schema
include     /etc/ldap/schema/cosine.schema
include     /etc/ldap/schema/inetorgperson.schema
pidfile     $dir/slapd.run.pid
argsfile    $dir/slapd.args
modulepath  /usr/lib/ldap
moduleload  back_mdb
moduleload  memberof
$tls

database    mdb
maxsize     16777216
suffix      "$SLAPD_SUFFIX"
rootdn      "$SLAPD_ROOTDN"
rootpw      $(_slapd_hash "$SLAPD_ROOTPW")
directory   $dir/db
index       objectClass eq
index       uid,cn eq

access to attrs=userPassword
    by anonymous auth
    by self auth
    by * none
access to dn.subtree="$SLAPD_SUFFIX"
    by dn.exact="cn=reader,$SLAPD_SUFFIX" read
    by self read
    by anonymous auth
    by * none

overlay     memberof
memberof-group-oc   groupOfNames
memberof-member-ad  member
memberof-memberof-ad memberOf
memberof-refint     TRUE
EOF
}

_slapd_fixture() {
	local dir=$1 s=$SLAPD_SUFFIX
	cat >"$dir/fixture.ldif" <<EOF
dn: $s
objectClass: dcObject
objectClass: organization
dc: prism
o: Open Model Prism tests

dn: cn=reader,$s
objectClass: organizationalRole
objectClass: simpleSecurityObject
cn: reader
userPassword: $(_slapd_hash reader-pw)

dn: ou=people,$s
objectClass: organizationalUnit
ou: people

dn: ou=groups,$s
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,$s
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Alice
mail: alice@prism.test
userPassword: $(_slapd_hash alice-pw)

dn: uid=bob,ou=people,$s
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Bob
userPassword: $(_slapd_hash bob-pw)

dn: uid=carol,ou=people,$s
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Carol
userPassword: $(_slapd_hash carol-pw)

dn: uid=dave*(x),ou=people,$s
objectClass: inetOrgPerson
uid: dave*(x)
cn: Dave
sn: Dave
userPassword: $(_slapd_hash dave-pw)

dn: uid=twin1,ou=people,$s
objectClass: inetOrgPerson
uid: twin1
cn: twin
sn: One
userPassword: $(_slapd_hash twin1-pw)

dn: uid=twin2,ou=people,$s
objectClass: inetOrgPerson
uid: twin2
cn: twin
sn: Two
userPassword: $(_slapd_hash twin2-pw)

dn: cn=admins,ou=groups,$s
objectClass: groupOfNames
cn: admins
member: uid=alice,ou=people,$s

dn: cn=finance,ou=groups,$s
objectClass: groupOfNames
cn: finance
member: uid=alice,ou=people,$s
member: uid=bob,ou=people,$s
EOF
}

# _slapd_try DIR PORT [LDAPS-PORT]: 0 when slapd runs and answers on PORT, 1 when it exited (port taken),
# 2 when it neither answered nor exited within 10 s.
_slapd_try() {
	local dir=$1 port=$2 pid i urls="ldap://127.0.0.1:$2/"
	[ -n "${3:-}" ] && urls="$urls ldaps://127.0.0.1:$3/"
	"$SLAPD_BIN" -h "$urls" -f "$dir/slapd.conf" -d "${SLAPD_DEBUG:-0}" </dev/null >>"$dir/slapd.log" 2>&1 &
	pid=$!
	echo "$pid" >"$dir/slapd.pid"
	for i in $(seq 1 100); do
		_slapd_alive "$pid" || { wait "$pid" 2>/dev/null; rm -f "$dir/slapd.pid"; return 1; }
		# bounded: whoever else may hold the port need not answer LDAP
		# LDAPNOINIT: the client tools must not pick up ~/.ldaprc or /etc/ldap/ldap.conf of the machine
		if LDAPNOINIT=1 timeout 2 ldapsearch -x -o nettimeout=1 -H "ldap://127.0.0.1:$port" -D "$SLAPD_ROOTDN" \
			-w "$SLAPD_ROOTPW" -b "" -s base "(objectClass=*)" 1.1 >/dev/null 2>&1; then
			_slapd_alive "$pid" && return 0
		fi
		sleep 0.1
	done
	return 2
}

slapd_start() {
	local dir=${1:?usage: slapd_start DIR} port port2="" try rc
	if [ ! -x "$SLAPD_BIN" ]; then
		echo "slapd_start: $SLAPD_BIN not found: run tools/install-deps --test (Debian packages slapd, ldap-utils)" >&2
		return 1
	fi
	command -v ldapsearch >/dev/null 2>&1 && command -v ldapadd >/dev/null 2>&1 || {
		echo "slapd_start: ldapsearch/ldapadd not found: run tools/install-deps --test (Debian package ldap-utils)" >&2
		return 1
	}
	mkdir -p "$dir/db" || return 1
	if [ "${SLAPD_TLS:-0}" = 1 ] && ! _slapd_certs "$dir" >>"$dir/certs.log" 2>&1; then
		echo "slapd_start: making the test certificates failed (see $dir/certs.log)" >&2
		return 1
	fi
	_slapd_conf "$dir" || return 1
	if ! /usr/sbin/slaptest -Q -u -f "$dir/slapd.conf" >>"$dir/slapd.log" 2>&1; then
		echo "slapd_start: slaptest rejected $dir/slapd.conf (see $dir/slapd.log)" >&2
		return 1
	fi
	# 20000-29999: below the kernel's ephemeral range, where client connections of parallel tests live.
	for try in $(seq 1 10); do
		port=$((20000 + RANDOM % 10000))
		# Someone listens there already: try another one without starting slapd.
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
		if [ "${SLAPD_TLS:-0}" = 1 ]; then
			port2=$((20000 + RANDOM % 10000))
			[ "$port2" != "$port" ] || continue
			if (exec 3<>"/dev/tcp/127.0.0.1/$port2") 2>/dev/null; then continue; fi
		fi
		_slapd_try "$dir" "$port" ${port2:+"$port2"}
		rc=$?
		[ "$rc" -eq 1 ] && continue
		if [ "$rc" -eq 2 ]; then
			echo "slapd_start: slapd did not answer on port $port within 10 s (see $dir/slapd.log)" >&2
			slapd_stop "$dir"
			return 1
		fi
		_slapd_fixture "$dir"
		if ! LDAPNOINIT=1 ldapadd -x -H "ldap://127.0.0.1:$port" -D "$SLAPD_ROOTDN" -w "$SLAPD_ROOTPW" \
			-f "$dir/fixture.ldif" >>"$dir/ldapadd.log" 2>&1; then
			echo "slapd_start: loading the fixture failed (see $dir/ldapadd.log)" >&2
			slapd_stop "$dir"
			return 1
		fi
		SLAPD_PORT=$port
		SLAPD_URL="ldap://127.0.0.1:$port"
		export SLAPD_PORT SLAPD_URL
		echo "$port" >"$dir/port"
		if [ -n "$port2" ]; then
			SLAPD_LDAPS_PORT=$port2
			SLAPD_LDAPS_URL="ldaps://127.0.0.1:$port2"
			SLAPD_CA_FILE=$dir/ca.pem
			export SLAPD_LDAPS_PORT SLAPD_LDAPS_URL SLAPD_CA_FILE
			echo "$port2" >"$dir/ldaps_port"
		fi
		return 0
	done
	echo "slapd_start: no free port found after 10 tries (see $dir/slapd.log)" >&2
	return 1
}

slapd_stop() {
	local dir=${1:?usage: slapd_stop DIR} pid i
	[ -f "$dir/slapd.pid" ] || return 0
	pid=$(cat "$dir/slapd.pid")
	rm -f "$dir/slapd.pid"
	case $pid in '' | *[!0-9]*) return 0 ;; esac
	kill -TERM "$pid" 2>/dev/null || return 0
	# Not necessarily our child (the starting shell may be gone), so poll instead of wait.
	for i in $(seq 1 100); do
		_slapd_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}
