/* config.c -- see config.h. */
#include "config.h"
#include "util/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/limits.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/rand.h"
#include "util/xalloc.h"

#ifndef PRISM_LOCALSTATEDIR
#define PRISM_LOCALSTATEDIR "/var"
#endif
#ifndef PRISM_RUNSTATEDIR
#define PRISM_RUNSTATEDIR "/run"
#endif

static const char *const role_choices[] = { "full", "control", "worker", NULL };
static const char *const level_choices[] = { "error", "warn", "info", "debug", NULL };
static const char *const target_choices[] = { "stderr", "file", "syslog", NULL };

#define OFF(field) offsetof(struct config, field)

const struct cfg_def config_defs[] = {
	/* process */
	{ "listen", NULL, CFG_STRING, "", 0, 1024, NULL, 0, OFF(listen),
	  "Socket to listen on when run as a daemon: unix:PATH or tcp:127.0.0.1:PORT; empty = the socket the web server passes on fd 0" },
	{ "processes", NULL, CFG_INT, "2", 1, PRISM_MAX_PROCESSES, NULL, 0, OFF(processes),
	  "Worker processes pre-forked by the daemon (a child that dies is respawned)" },
	{ "threads", NULL, CFG_INT, "64", 1, PRISM_MAX_THREADS, NULL, 0, OFF(threads),
	  "The most request threads a process runs" },
	{ "socket_mode", NULL, CFG_MODE, "0660", 0, 0777, NULL, 0, OFF(socket_mode),
	  "Permissions of the unix socket created by listen = unix:PATH" },
	{ "shutdown_grace", NULL, CFG_DURATION, "30s", 0, 3600000, NULL, CFG_RELOAD, OFF(shutdown_grace_ms),
	  "How long SIGTERM waits for in-flight requests before exiting" },
	{ "role", "NODE_ROLE", CFG_ENUM, "full", 0, 0, role_choices, 0, OFF(role),
	  "full serves everything; control the admin API (/api/prism); worker the gateway; /health in every role" },
	{ "pid_file", NULL, CFG_STRING, "", 0, 1024, NULL, 0, OFF(pid_file),
	  "File the daemon writes its process id to (empty = none)" },
	{ "data_dir", NULL, CFG_STRING, PRISM_LOCALSTATEDIR "/lib/model-prism", 1, 1024, NULL, 0, OFF(data_dir),
	  "Directory for the SQLite database, the analytics spool and other state" },
	{ "run_dir", NULL, CFG_STRING, PRISM_RUNSTATEDIR "/model-prism", 1, 1024, NULL, 0, OFF(run_dir),
	  "Directory for sockets and pid files" },

	/* storage and secrets */
	{ "store", NULL, CFG_STRING, "sqlite:" PRISM_LOCALSTATEDIR "/lib/model-prism/prism.db", 1, 1024, NULL, 0,
	  OFF(store), "Data store: sqlite:PATH (one host); ignored when mongo_uri is set" },
	{ "mongo_uri", "MONGO_URI", CFG_STRING, "", 0, 4096, NULL, CFG_SECRET, OFF(mongo_uri),
	  "MongoDB connection string; when set, MongoDB is the store (several hosts sharing one database)" },
	{ "store_timeout", NULL, CFG_DURATION, "5s", 100, 600000, NULL, 0, OFF(store_timeout_ms),
	  "Longest a request waits for the store (MongoDB server selection, SQLite lock) before failing with 503" },
	{ "jwt_secret", "JWT_SECRET", CFG_STRING, "", 0, 4096, NULL, CFG_SECRET, OFF(jwt_secret),
	  "HMAC secret for admin session tokens; at least 32 characters; required unless role = worker" },
	{ "encryption_key", "ENCRYPTION_KEY", CFG_STRING, "", 0, 4096, NULL, CFG_SECRET, OFF(encryption_key),
	  "Secret from which the AES-256-GCM key for stored provider credentials is derived; at least 32 characters" },
	{ "encryption_key_previous", NULL, CFG_STRING, "", 0, 4096, NULL, CFG_SECRET, OFF(encryption_key_previous),
	  "The encryption_key before a rotation: still accepted for decryption until prismctl rotate-encryption-key has re-encrypted every stored secret; empty = none" },
	{ "jwt_lifetime", NULL, CFG_DURATION, "24h", 300000, 2592000000L, NULL, CFG_RELOAD, OFF(jwt_lifetime_ms),
	  "Lifetime of an admin session token; a logout, password or role change revokes it earlier" },
	{ "audit_retention", NULL, CFG_DURATION, "90d", 86400000L, 3650L * 86400000L, NULL, CFG_RELOAD, OFF(audit_retention_ms),
	  "How long configuration audit records are kept" },
	{ "models_dev_url", NULL, CFG_STRING, "https://models.dev/api.json", 0, 1024, NULL, CFG_RELOAD, OFF(models_dev_url),
	  "Where model metadata is fetched from when offline is false (the bundled snapshot is used when it is unreachable); empty = always the snapshot" },
	{ "offline", "OFFLINE", CFG_BOOL, "false", 0, 0, NULL, 0, OFF(offline),
	  "Air-gapped mode: no outbound connection except to configured providers" },

	/* logging */
	{ "log_level", "LOG_LEVEL", CFG_ENUM, "info", 0, 0, level_choices, CFG_RELOAD, OFF(log_level),
	  "error, warn, info or debug" },
	{ "log_target", NULL, CFG_ENUM, "stderr", 0, 0, target_choices, CFG_RELOAD, OFF(log_target),
	  "stderr, file (log_file) or syslog" },
	{ "log_file", NULL, CFG_STRING, "", 0, 1024, NULL, CFG_RELOAD, OFF(log_file),
	  "Log file when log_target = file; reopened on SIGHUP" },
	{ "access_log", NULL, CFG_BOOL, "true", 0, 0, NULL, CFG_RELOAD, OFF(access_log),
	  "One line per request: method, path, status, bytes, ms, request id, tenant" },

	/* HTTP */
	{ "max_body_size", NULL, CFG_SIZE, "4m", 1024, PRISM_BODY_HARD_MAX, NULL, CFG_RELOAD, OFF(max_body_size),
	  "Largest accepted request body (k, m suffixes); larger bodies get 413" },
	{ "cors_origins", "CORS_ORIGINS", CFG_LIST, "", 0, 0, NULL, CFG_RELOAD, OFF(cors_origins),
	  "Comma-separated exact origins allowed by CORS (https://app.example.com), or * for any origin without credentials; empty = no CORS" },
	{ "trusted_proxies", NULL, CFG_LIST, "", 0, 0, NULL, CFG_RELOAD, OFF(trusted_proxies),
	  "Comma-separated addresses or CIDR prefixes whose X-Forwarded-For is believed" },
	{ "diag_endpoints", NULL, CFG_BOOL, "false", 0, 0, NULL, CFG_RELOAD, OFF(diag_endpoints),
	  "Serve /_diag/sse, /_diag/sleep, /_diag/echo and /_diag/analytics, which show what the web server passes on (streaming, draining, client address, bodies) and exercise the analytics writer; off in production" },

	/* shared memory, per-IP limits, metrics */
	{ "shm_name", NULL, CFG_STRING, "", 0, 60, NULL, 0, OFF(shm_name),
	  "POSIX shared-memory segment of this instance (/name); empty = derived from the configuration file's path (without a file, from listen), so two instances never share one" },
	{ "shm_size", NULL, CFG_SIZE, "8m", 1048576, 1073741824, NULL, 0, OFF(shm_size),
	  "Size of the shared-memory segment; it decides how many rate-limit keys (clients, tenants) are tracked at once" },
	{ "ratelimit_login", NULL, CFG_INT, "20", 0, 1000000, NULL, CFG_RELOAD, OFF(ratelimit_login),
	  "Login attempts per minute per client address (0 = no limit)" },
	{ "ratelimit_admin", NULL, CFG_INT, "300", 0, 1000000, NULL, CFG_RELOAD, OFF(ratelimit_admin),
	  "Admin API requests per minute per client address (0 = no limit)" },
	{ "ratelimit_gateway", NULL, CFG_INT, "600", 0, 1000000, NULL, CFG_RELOAD, OFF(ratelimit_gateway),
	  "Gateway requests per minute per client address (0 = no limit)" },
	{ "ratelimit_ipv6_prefix", NULL, CFG_INT, "64", 1, 128, NULL, CFG_RELOAD, OFF(ratelimit_ipv6_prefix),
	  "IPv6 clients are limited per network of this prefix length, so rotating addresses gains nothing" },
	{ "metrics_allow", NULL, CFG_LIST, "127.0.0.0/8, ::1", 0, 0, NULL, CFG_RELOAD, OFF(metrics_allow),
	  "Comma-separated addresses or CIDR prefixes that may read /metrics without a token" },
	{ "metrics_token", NULL, CFG_STRING, "", 0, 4096, NULL, CFG_SECRET | CFG_RELOAD, OFF(metrics_token),
	  "Bearer token that also grants access to /metrics (for scrapers outside metrics_allow); empty = none" },
	{ "generation_poll", NULL, CFG_DURATION, "5s", 100, 3600000, NULL, CFG_RELOAD, OFF(generation_poll_ms),
	  "How often each process polls the store's configuration generation, so that changes made on other hosts reach its caches" },
	{ NULL, NULL, 0, NULL, 0, 0, NULL, 0, 0, NULL },
};

#define FIELD(cfg, def, type) ((type *)(void *)((char *)(cfg) + (def)->offset))

const struct cfg_def *
config_find(const char *name)
{
	for (const struct cfg_def *d = config_defs; d->name; d++)
		if (strcmp(d->name, name) == 0)
			return d;
	return NULL;
}

const char *
config_role_name(int role)
{
	return role >= ROLE_FULL && role <= ROLE_WORKER ? role_choices[role] : "full";
}

static void
list_free(struct cfg_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static char *
trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/* Checks one item of a list key; why gets the reason. */
static bool
list_item_ok(const struct cfg_def *def, const char *item, char *why, size_t whylen)
{
	if (def->offset == OFF(trusted_proxies) || def->offset == OFF(metrics_allow)) {
		struct netprefix p;
		if (netprefix_parse(item, &p)) {
			snprintf(why, whylen, "'%s' is not an IP address or CIDR prefix", item);
			return false;
		}
	} else if (def->offset == OFF(cors_origins)) {
		if (strcmp(item, "*") == 0)
			return true;
		const char *rest = NULL;
		if (strncmp(item, "https://", 8) == 0)
			rest = item + 8;
		else if (strncmp(item, "http://", 7) == 0)
			rest = item + 7;
		if (!rest || !*rest || strchr(rest, '/') || strpbrk(item, " \t\"'")) {
			snprintf(why, whylen, "'%s' is not an origin (scheme://host[:port], no path)", item);
			return false;
		}
	}
	return true;
}

/* Parses `value` for `def` into cfg.  Returns false with why set on error. */
static bool
set_value(struct config *cfg, const struct cfg_def *def, const char *value, char *why, size_t whylen)
{
	long v = 0;
	switch (def->type) {
	case CFG_STRING: {
		size_t n = strlen(value);
		if ((long)n > def->max) {
			snprintf(why, whylen, "value longer than %ld characters", def->max);
			return false;
		}
		if ((long)n < def->min) {
			snprintf(why, whylen, "value must not be empty");
			return false;
		}
		char **f = FIELD(cfg, def, char *);
		if (*f && (def->flags & CFG_SECRET))
			secure_wipe(*f, strlen(*f));
		free(*f);
		*f = xstrdup(value);
		return true;
	}
	case CFG_INT:
		if (parse_long(value, def->min, def->max, &v)) {
			snprintf(why, whylen, "'%s' is not an integer between %ld and %ld", value, def->min, def->max);
			return false;
		}
		*FIELD(cfg, def, long) = v;
		return true;
	case CFG_SIZE:
		if (parse_size(value, def->min, def->max, &v)) {
			snprintf(why, whylen, "'%s' is not a size between %ld and %ld bytes (suffixes k, m, g)", value,
				 def->min, def->max);
			return false;
		}
		*FIELD(cfg, def, long) = v;
		return true;
	case CFG_DURATION:
		if (parse_duration_ms(value, def->min, def->max, &v)) {
			snprintf(why, whylen, "'%s' is not a duration between %ldms and %lds (units ms, s, m, h)",
				 value, def->min, def->max / 1000);
			return false;
		}
		*FIELD(cfg, def, long) = v;
		return true;
	case CFG_MODE: {
		char *end = NULL;
		errno = 0;
		v = strtol(value, &end, 8);
		if (!*value || errno || *end || v < def->min || v > def->max) {
			snprintf(why, whylen, "'%s' is not an octal file mode such as 0660", value);
			return false;
		}
		*FIELD(cfg, def, long) = v;
		return true;
	}
	case CFG_BOOL: {
		bool b;
		if (parse_bool(value, &b)) {
			snprintf(why, whylen, "'%s' is not a boolean (true/false, yes/no, on/off, 1/0)", value);
			return false;
		}
		*FIELD(cfg, def, bool) = b;
		return true;
	}
	case CFG_ENUM:
		for (int i = 0; def->choices[i]; i++) {
			if (strcasecmp(value, def->choices[i]) == 0) {
				*FIELD(cfg, def, int) = i;
				return true;
			}
		}
		{
			int n = snprintf(why, whylen, "'%s' is not one of", value);
			for (int i = 0; def->choices[i] && n > 0 && (size_t)n < whylen; i++)
				n += snprintf(why + n, whylen - (size_t)n, " %s", def->choices[i]);
		}
		return false;
	case CFG_LIST: {
		struct cfg_list fresh = { 0, NULL };
		char *copy = xstrdup(value), *save = NULL;
		bool ok = true;
		for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			if (fresh.n >= PRISM_MAX_LIST_ITEMS) {
				snprintf(why, whylen, "more than %d items", PRISM_MAX_LIST_ITEMS);
				ok = false;
				break;
			}
			if (!list_item_ok(def, tok, why, whylen)) {
				ok = false;
				break;
			}
			fresh.items = xrealloc(fresh.items, (fresh.n + 1) * sizeof *fresh.items);
			fresh.items[fresh.n++] = xstrdup(tok);
		}
		free(copy);
		if (!ok) {
			list_free(&fresh);
			return false;
		}
		struct cfg_list *f = FIELD(cfg, def, struct cfg_list);
		list_free(f);
		*f = fresh;
		return true;
	}
	}
	snprintf(why, whylen, "internal: unknown type");
	return false;
}

static void
config_free(struct config *cfg)
{
	for (const struct cfg_def *d = config_defs; d->name; d++) {
		if (d->type == CFG_STRING) {
			char **f = FIELD(cfg, d, char *);
			if (*f && (d->flags & CFG_SECRET))
				secure_wipe(*f, strlen(*f));
			free(*f);
		} else if (d->type == CFG_LIST) {
			list_free(FIELD(cfg, d, struct cfg_list));
		}
	}
	free(cfg->proxy_prefixes);
	free(cfg->metrics_prefixes);
	free(cfg->source);
	free(cfg);
}

void
config_release(struct config *cfg)
{
	if (cfg && atomic_fetch_sub(&cfg->refs, 1) == 1)
		config_free(cfg);
}

/* Reads a whole small file (a secret) into a string without its trailing newline. */
static char *
read_secret_file(const char *path, char *why, size_t whylen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	char data[PRISM_MAX_SECRET_FILE + 1];
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, data + len, sizeof data - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		if (len >= sizeof data - 1)
			break;
	}
	close(fd);
	if (len >= PRISM_MAX_SECRET_FILE) {
		snprintf(why, whylen, "%s is larger than %d bytes", path, PRISM_MAX_SECRET_FILE);
		secure_wipe(data, sizeof data);
		return NULL;
	}
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		len--;
	data[len] = '\0';
	char *s = xstrdup(data);
	secure_wipe(data, sizeof data);
	return s;
}

static bool
parse_file(struct config *cfg, const char *path, struct buf *errors)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		buf_printf(errors, "%s: cannot open: %s\n", path, strerror(errno));
		return false;
	}
	bool ok = true;
	char line[PRISM_MAX_CONFIG_LINE + 2];
	int lineno = 0;
	unsigned seen_line[64] = { 0 };
	long total = 0;
	while (fgets(line, sizeof line, f)) {
		lineno++;
		size_t n = strlen(line);
		total += (long)n;
		if (total > PRISM_MAX_CONFIG_FILE) {
			buf_printf(errors, "%s:%d: file larger than %d bytes\n", path, lineno, PRISM_MAX_CONFIG_FILE);
			ok = false;
			break;
		}
		if (n > 0 && line[n - 1] != '\n' && !feof(f)) {
			buf_printf(errors, "%s:%d: line longer than %d characters\n", path, lineno,
				   PRISM_MAX_CONFIG_LINE);
			ok = false;
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			buf_printf(errors, "%s:%d: expected 'key = value'\n", path, lineno);
			ok = false;
			continue;
		}
		*eq = '\0';
		char *key = trim(s), *value = trim(eq + 1);
		size_t vl = strlen(value);
		if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
			value[vl - 1] = '\0';
			value++;
		}
		const struct cfg_def *def = config_find(key);
		if (!def) {
			buf_printf(errors, "%s:%d: unknown key '%s'\n", path, lineno, key);
			ok = false;
			continue;
		}
		size_t idx = (size_t)(def - config_defs);
		if (idx < sizeof seen_line / sizeof seen_line[0] && seen_line[idx]) {
			buf_printf(errors, "%s:%d: duplicate key '%s' (first set on line %u)\n", path, lineno, key,
				   seen_line[idx]);
			ok = false;
			continue;
		}
		if (idx < sizeof seen_line / sizeof seen_line[0])
			seen_line[idx] = (unsigned)lineno;
		char why[256];
		if (!set_value(cfg, def, value, why, sizeof why)) {
			buf_printf(errors, "%s:%d: %s: %s\n", path, lineno, key, why);
			ok = false;
		}
	}
	secure_wipe(line, sizeof line);
	fclose(f);
	return ok;
}

static bool
apply_env(struct config *cfg, config_env_fn env, struct buf *errors)
{
	bool ok = true;
	for (const struct cfg_def *d = config_defs; d->name; d++) {
		if (!d->env || !env)
			continue;
		char why[256];
		const char *v = env(d->env);
		char *from_file = NULL;
		const char *origin = d->env;
		char fname[96];
		if ((!v || !*v) && (d->flags & CFG_SECRET)) {
			snprintf(fname, sizeof fname, "%s_FILE", d->env);
			const char *path = env(fname);
			if (path && *path) {
				from_file = read_secret_file(path, why, sizeof why);
				if (!from_file) {
					buf_printf(errors, "environment %s: %s\n", fname, why);
					ok = false;
					continue;
				}
				v = from_file;
				origin = fname;
			}
		}
		/* An empty variable counts as unset: compose files often pass VAR=${VAR} through. */
		if (v && *v && !set_value(cfg, d, v, why, sizeof why)) {
			buf_printf(errors, "environment %s: %s\n", origin, why);
			ok = false;
		}
		if (from_file) {
			secure_wipe(from_file, strlen(from_file));
			free(from_file);
		}
	}
	return ok;
}

/* Fields computed from others. */
static struct netprefix *
parse_prefixes(const struct cfg_list *l)
{
	if (!l->n)
		return NULL;
	struct netprefix *p = xcalloc(l->n, sizeof *p);
	for (size_t i = 0; i < l->n; i++)
		netprefix_parse(l->items[i], &p[i]);
	return p;
}

static void
derive(struct config *cfg)
{
	free(cfg->proxy_prefixes);
	cfg->proxy_prefixes = parse_prefixes(&cfg->trusted_proxies);
	free(cfg->metrics_prefixes);
	cfg->metrics_prefixes = parse_prefixes(&cfg->metrics_allow);
}

enum prism_err
config_set(struct config *cfg, const char *name, const char *value, struct buf *errors)
{
	const struct cfg_def *def = config_find(name);
	char why[256];
	if (!def) {
		buf_printf(errors, "unknown key '%s'\n", name);
		return PRISM_E_CONFIG;
	}
	if (!set_value(cfg, def, value, why, sizeof why)) {
		buf_printf(errors, "%s: %s\n", name, why);
		return PRISM_E_CONFIG;
	}
	derive(cfg);
	return PRISM_OK;
}

struct config *
config_load(const char *path, config_env_fn env, struct buf *errors)
{
	struct config *cfg = xcalloc(1, sizeof *cfg);
	atomic_init(&cfg->refs, 1);
	cfg->source = xstrdup(path ? path : "");
	bool ok = true;
	for (const struct cfg_def *d = config_defs; d->name; d++) {
		char why[256];
		if (!set_value(cfg, d, d->dflt, why, sizeof why)) {
			buf_printf(errors, "built-in default of %s: %s\n", d->name, why);
			ok = false;
		}
	}
	if (path && *path && !parse_file(cfg, path, errors))
		ok = false;
	if (!apply_env(cfg, env, errors))
		ok = false;
	if (ok)
		derive(cfg);
	if (!ok) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* Values from documentation and example files of the original and of common tutorials. */
static const char *const known_default_secrets[] = {
	"change-me-in-production",
	"change-me-in-production-jwt-secret",
	"change-me-32-chars-encryption-k!",
	"changeme", "change-me", "secret", "your-secret-key", "supersecret",
	NULL,
};

static bool
secret_ok(const char *name, const char *v, bool required, struct buf *errors)
{
	if (!v || !*v) {
		if (required)
			buf_printf(errors, "%s is not set: run 'prismctl init' or set %s (or %s_FILE)\n", name,
				   config_find(name)->env, config_find(name)->env);
		return !required;
	}
	for (int i = 0; known_default_secrets[i]; i++) {
		if (strcasecmp(v, known_default_secrets[i]) == 0) {
			buf_printf(errors, "%s is a well-known default value; generate a random one "
					   "(prismctl init, or: openssl rand -hex 32)\n", name);
			return false;
		}
	}
	if (strlen(v) < 32) {
		buf_printf(errors, "%s is too short (%zu characters; at least 32 are required)\n", name, strlen(v));
		return false;
	}
	bool seen[256] = { false };
	int distinct = 0;
	for (const unsigned char *p = (const unsigned char *)v; *p; p++)
		if (!seen[*p]) {
			seen[*p] = true;
			distinct++;
		}
	if (distinct < 8) {
		buf_printf(errors, "%s has too little variety (%d distinct characters); generate a random one\n",
			   name, distinct);
		return false;
	}
	return true;
}

static bool
listen_spec_ok(const char *spec)
{
	if (strncmp(spec, "unix:/", 6) == 0)
		return true;
	if (strncmp(spec, "tcp:", 4) != 0)
		return false;
	const char *colon = strrchr(spec + 4, ':');
	long port;
	return colon && colon > spec + 4 && parse_long(colon + 1, 1, 65535, &port) == PRISM_OK;
}

enum prism_err
config_validate(const struct config *cfg, struct buf *errors)
{
	bool ok = true;
	ok &= secret_ok("jwt_secret", cfg->jwt_secret, cfg->role != ROLE_WORKER, errors);
	ok &= secret_ok("encryption_key", cfg->encryption_key, true, errors);
	if (cfg->jwt_secret && cfg->encryption_key && *cfg->jwt_secret &&
	    strcmp(cfg->jwt_secret, cfg->encryption_key) == 0) {
		buf_printf(errors, "jwt_secret and encryption_key must differ\n");
		ok = false;
	}
	if (cfg->encryption_key && cfg->encryption_key_previous && *cfg->encryption_key_previous &&
	    strcmp(cfg->encryption_key, cfg->encryption_key_previous) == 0) {
		buf_printf(errors, "encryption_key_previous must differ from encryption_key (leave it empty when not rotating)\n");
		ok = false;
	}
	for (size_t i = 0; i < cfg->cors_origins.n; i++) {
		if (strcmp(cfg->cors_origins.items[i], "*") == 0 && cfg->cors_origins.n > 1) {
			buf_printf(errors, "cors_origins: '*' cannot be combined with other origins\n");
			ok = false;
			break;
		}
	}
	if (cfg->log_target == 1 /* file */ && !*cfg->log_file) {
		buf_printf(errors, "log_target = file needs log_file\n");
		ok = false;
	}
	if (*cfg->listen && !listen_spec_ok(cfg->listen)) {
		buf_printf(errors, "listen: '%s' must be unix:/ABSOLUTE/PATH or tcp:HOST:PORT\n", cfg->listen);
		ok = false;
	}
	if (strncmp(cfg->store, "sqlite:/", 8) != 0) {
		buf_printf(errors, "store: '%s' must be sqlite:/ABSOLUTE/PATH\n", cfg->store);
		ok = false;
	}
	if (*cfg->shm_name && (cfg->shm_name[0] != '/' || strchr(cfg->shm_name + 1, '/'))) {
		buf_printf(errors, "shm_name: '%s' must be /NAME without further slashes\n", cfg->shm_name);
		ok = false;
	}
	if (*cfg->metrics_token && strlen(cfg->metrics_token) < 16) {
		buf_printf(errors, "metrics_token is too short (at least 16 characters)\n");
		ok = false;
	}
	if (*cfg->mongo_uri && strncmp(cfg->mongo_uri, "mongodb://", 10) != 0 &&
	    strncmp(cfg->mongo_uri, "mongodb+srv://", 14) != 0) {
		buf_printf(errors, "mongo_uri must start with mongodb:// or mongodb+srv://\n");
		ok = false;
	}
	return ok ? PRISM_OK : PRISM_E_CONFIG;
}

static bool
field_equal(const struct config *a, const struct config *b, const struct cfg_def *d)
{
	switch (d->type) {
	case CFG_STRING: return strcmp(*FIELD(a, d, char *), *FIELD(b, d, char *)) == 0;
	case CFG_INT: case CFG_SIZE: case CFG_DURATION: case CFG_MODE:
		return *FIELD(a, d, long) == *FIELD(b, d, long);
	case CFG_BOOL: return *FIELD(a, d, bool) == *FIELD(b, d, bool);
	case CFG_ENUM: return *FIELD(a, d, int) == *FIELD(b, d, int);
	case CFG_LIST: {
		const struct cfg_list *x = FIELD(a, d, struct cfg_list), *y = FIELD(b, d, struct cfg_list);
		if (x->n != y->n)
			return false;
		for (size_t i = 0; i < x->n; i++)
			if (strcmp(x->items[i], y->items[i]) != 0)
				return false;
		return true;
	}
	}
	return true;
}

void
config_keep_static(struct config *fresh, const struct config *old, struct buf *notes)
{
	for (const struct cfg_def *d = config_defs; d->name; d++) {
		if ((d->flags & CFG_RELOAD) || field_equal(fresh, old, d))
			continue;
		buf_printf(notes, "%s changed; it takes effect after a restart\n", d->name);
		switch (d->type) {
		case CFG_STRING: {
			char **f = FIELD(fresh, d, char *);
			free(*f);
			*f = xstrdup(*FIELD(old, d, char *));
			break;
		}
		case CFG_INT: case CFG_SIZE: case CFG_DURATION: case CFG_MODE:
			*FIELD(fresh, d, long) = *FIELD(old, d, long);
			break;
		case CFG_BOOL: *FIELD(fresh, d, bool) = *FIELD(old, d, bool); break;
		case CFG_ENUM: *FIELD(fresh, d, int) = *FIELD(old, d, int); break;
		case CFG_LIST: break;   /* every list key is reloadable */
		}
	}
}

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct config *current;

void
config_install(struct config *cfg)
{
	pthread_mutex_lock(&current_lock);
	struct config *old = current;
	current = cfg;
	pthread_mutex_unlock(&current_lock);
	config_release(old);
}

struct config *
config_acquire(void)
{
	pthread_mutex_lock(&current_lock);
	struct config *cfg = current;
	if (cfg)
		atomic_fetch_add(&cfg->refs, 1);
	pthread_mutex_unlock(&current_lock);
	return cfg;
}

void
config_format_value(const struct config *cfg, const struct cfg_def *d, char *out, size_t outlen)
{
	switch (d->type) {
	case CFG_STRING: {
		const char *v = *FIELD(cfg, d, char *);
		if (d->flags & CFG_SECRET)
			snprintf(out, outlen, "%s", *v ? "(set)" : "(unset)");
		else
			snprintf(out, outlen, "%s", v);
		return;
	}
	case CFG_INT: snprintf(out, outlen, "%ld", *FIELD(cfg, d, long)); return;
	case CFG_SIZE: snprintf(out, outlen, "%ld", *FIELD(cfg, d, long)); return;
	case CFG_DURATION: snprintf(out, outlen, "%ldms", *FIELD(cfg, d, long)); return;
	case CFG_MODE: snprintf(out, outlen, "%04lo", (unsigned long)*FIELD(cfg, d, long)); return;
	case CFG_BOOL: snprintf(out, outlen, "%s", *FIELD(cfg, d, bool) ? "true" : "false"); return;
	case CFG_ENUM: snprintf(out, outlen, "%s", d->choices[*FIELD(cfg, d, int)]); return;
	case CFG_LIST: {
		const struct cfg_list *l = FIELD(cfg, d, struct cfg_list);
		size_t o = 0;
		out[0] = '\0';
		for (size_t i = 0; i < l->n && o < outlen; i++) {
			int w = snprintf(out + o, outlen - o, "%s%s", i ? "," : "", l->items[i]);
			if (w < 0)
				break;
			o += (size_t)w;
		}
		return;
	}
	}
}
