/* prismctl.c -- the sysadmin's command-line tool.
 *
 *   prismctl init [--config FILE] [--data-dir DIR] [--run-dir DIR] [--listen SPEC] [--user USER] [--force]
 *   prismctl check-config [--config FILE] [--show]
 *   prismctl migrate [--config FILE]
 *   prismctl export [--config FILE] [--output FILE]
 *   prismctl import [--config FILE] [--dry-run] FILE
 *   prismctl dump [--config FILE] [--limit N] COLLECTION
 *   prismctl shm [--config FILE] [--reset | --remove]
 *   prismctl create-admin [--config FILE] [--password-file FILE] [--force] USERNAME
 *   prismctl reset-password [--config FILE] [--password-file FILE] USERNAME
 *   prismctl rotate-encryption-key [--config FILE] [--dry-run]
 *   prismctl keys            (the configuration table: name, default, variable, reloadable, description)
 *   prismctl version
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "admin/audit.h"
#include "admin/auth.h"
#include "admin/setup.h"
#include "admin/system.h"
#include "core/request.h"
#include "shm/breaker.h"
#include "shm/ratelimit.h"
#include "shm/segment.h"
#include "shm/tenantcache.h"
#include "store/store.h"
#include "store/transfer.h"
#include "util/buf.h"
#include "util/clock.h"
#include "util/config.h"
#include "util/crypto.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/rand.h"
#include "util/xalloc.h"

#ifndef PRISM_SYSCONFDIR
#define PRISM_SYSCONFDIR "/etc"
#endif
#ifndef PRISM_LOCALSTATEDIR
#define PRISM_LOCALSTATEDIR "/var"
#endif
#ifndef PRISM_RUNSTATEDIR
#define PRISM_RUNSTATEDIR "/run"
#endif
#define DEFAULT_CONFIG PRISM_SYSCONFDIR "/model-prism/prism.conf"

static const char *
env_lookup(const char *name)
{
	return getenv(name);
}

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: prismctl init [--config FILE] [--data-dir DIR] [--run-dir DIR] [--listen SPEC]\n"
		"                     [--user USER] [--force]\n"
		"       prismctl check-config [--config FILE] [--show]\n"
		"       prismctl migrate [--config FILE]\n"
		"       prismctl export [--config FILE] [--output FILE]\n"
		"       prismctl import [--config FILE] [--dry-run] FILE\n"
		"       prismctl dump [--config FILE] [--limit N] COLLECTION\n"
		"       prismctl shm [--config FILE] [--reset | --remove]\n"
		"       prismctl create-admin [--config FILE] [--password-file FILE] [--force] USERNAME\n"
		"       prismctl reset-password [--config FILE] [--password-file FILE] USERNAME\n"
		"       prismctl rotate-encryption-key [--config FILE] [--dry-run]\n"
		"       prismctl keys\n"
		"       prismctl version\n"
		"See prismctl(8).\n");
}

static const char *
default_config_path(void)
{
	const char *p = getenv("PRISM_CONFIG");
	return p && *p ? p : DEFAULT_CONFIG;
}

/* mkdir -p; a directory this call creates gets `mode` and, when given, the owner uid/gid (-1 = keep).
 * Existing directories are left exactly as they are. */
static int
make_dir(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) != 0)
		return errno == EEXIST ? 0 : -1;
	if (chmod(tmp, mode) != 0)      /* mkdir applied the umask */
		return -1;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(tmp, uid, gid) != 0)
		return -1;
	return 0;
}

static int
cmd_init(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "data-dir", required_argument, NULL, 'd' },
		{ "run-dir", required_argument, NULL, 'r' }, { "listen", required_argument, NULL, 'l' },
		{ "user", required_argument, NULL, 'u' },    { "force", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = default_config_path();
	const char *data_dir = PRISM_LOCALSTATEDIR "/lib/model-prism";
	const char *run_dir = PRISM_RUNSTATEDIR "/model-prism";
	const char *listen = NULL, *user = NULL;
	int force = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:r:l:u:f", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'd': data_dir = optarg; break;
		case 'r': run_dir = optarg; break;
		case 'l': listen = optarg; break;
		case 'u': user = optarg; break;
		case 'f': force = 1; break;
		default: usage(stderr); return 2;
		}
	}
	if (data_dir[0] != '/' || run_dir[0] != '/') {
		fprintf(stderr, "prismctl init: --data-dir and --run-dir must be absolute paths\n");
		return 2;
	}
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	if (user) {
		struct passwd *pw = getpwnam(user);
		if (!pw) {
			fprintf(stderr, "prismctl init: no such user '%s'\n", user);
			return 2;
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		if (geteuid() != 0 && geteuid() != uid) {
			fprintf(stderr, "prismctl init: --user %s needs root (to hand directories to that user)\n", user);
			return 2;
		}
	}
	if (!force && access(path, F_OK) == 0) {
		fprintf(stderr, "prismctl init: %s already exists (use --force to replace it and its secrets)\n",
			path);
		return 1;
	}

	/* The directory of the config file; the file itself is created exclusively unless --force. */
	char dir[4096];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		if (make_dir(dir, 0755, (uid_t)-1, (gid_t)-1) != 0) {
			fprintf(stderr, "prismctl init: cannot create %s: %s\n", dir, strerror(errno));
			return 1;
		}
	}
	if (make_dir(data_dir, 0750, uid, gid) != 0 || make_dir(run_dir, 0750, uid, gid) != 0) {
		fprintf(stderr, "prismctl init: cannot create %s or %s: %s\n", data_dir, run_dir, strerror(errno));
		return 1;
	}

	char jwt[65], enc[65];
	if (rand_hex(jwt, 32) || rand_hex(enc, 32)) {
		fprintf(stderr, "prismctl init: no randomness available from the kernel\n");
		return 1;
	}
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "prismctl init: cannot write %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	FILE *f = fdopen(fd, "w");
	char ts[40];
	clock_iso8601(clock_realtime_ms(), ts, sizeof ts);
	fprintf(f, "# Open Model Prism configuration, written by prismctl init at %s.\n"
		   "# Every key and its default: prism.conf(5).  Keep this file private: it holds secrets.\n\n",
		ts);
	if (listen)
		fprintf(f, "listen = %s\n", listen);
	fprintf(f, "data_dir = %s\nrun_dir = %s\nstore = sqlite:%s/prism.db\n\n", data_dir, run_dir, data_dir);
	fprintf(f, "# Changing jwt_secret logs every admin out; changing encryption_key makes the\n"
		   "# provider credentials stored so far unreadable.\n");
	fprintf(f, "jwt_secret = %s\nencryption_key = %s\n", jwt, enc);
	secure_wipe(jwt, sizeof jwt);
	secure_wipe(enc, sizeof enc);
	if (fflush(f) != 0 || fsync(fd) != 0) {
		fprintf(stderr, "prismctl init: cannot write %s: %s\n", tmp, strerror(errno));
		fclose(f);
		unlink(tmp);
		return 1;
	}
	if (user && fchown(fd, 0, gid) == 0)
		fchmod(fd, 0640);       /* readable by the service's group, writable by root only */
	fclose(f);
	/* link() refuses an existing target atomically; rename() replaces it (--force). */
	int rc = force ? rename(tmp, path) : link(tmp, path);
	int saved = errno;
	if (!force || rc != 0)
		unlink(tmp);
	if (rc != 0) {
		if (saved == EEXIST)
			fprintf(stderr, "prismctl init: %s already exists (use --force to replace it and its "
					"secrets)\n", path);
		else
			fprintf(stderr, "prismctl init: cannot install %s: %s\n", path, strerror(saved));
		return 1;
	}
	printf("wrote %s (fresh secrets)\ndata directory %s\nrun directory %s\n", path, data_dir, run_dir);
	return 0;
}

static int
cmd_check_config(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "show", no_argument, NULL, 's' }, { NULL, 0, NULL, 0 },
	};
	const char *path = default_config_path();
	int show = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:s", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': path = optarg; break;
		case 's': show = 1; break;
		default: usage(stderr); return 2;
		}
	}
	struct buf errors;
	buf_init(&errors, 64 * 1024);
	struct config *cfg = config_load(path, env_lookup, &errors);
	if (cfg && config_validate(cfg, &errors)) {
		config_release(cfg);
		cfg = NULL;
	}
	if (!cfg) {
		fprintf(stderr, "%s", buf_cstr(&errors));
		fprintf(stderr, "%s: configuration is NOT valid\n", path);
		buf_free(&errors);
		return 1;
	}
	if (show) {
		for (const struct cfg_def *d = config_defs; d->name; d++) {
			char v[4096];
			config_format_value(cfg, d, v, sizeof v);
			printf("%s = %s\n", d->name, v);
		}
	}
	printf("%s: OK\n", path);
	config_release(cfg);
	buf_free(&errors);
	return 0;
}

/* Loads the configuration (and checks it across keys when `validate`); prints every problem and returns
 * NULL when it is not usable. */
static struct config *
load_config(const char *path, const char *cmd, bool validate)
{
	struct buf errors;
	buf_init(&errors, 64 * 1024);
	struct config *cfg = config_load(path, env_lookup, &errors);
	if (cfg && validate && config_validate(cfg, &errors)) {
		config_release(cfg);
		cfg = NULL;
	}
	if (!cfg)
		fprintf(stderr, "%sprismctl %s: %s: configuration is NOT valid\n", buf_cstr(&errors), cmd, path);
	buf_free(&errors);
	return cfg;
}

/* Loads and validates the configuration and opens its store; prints the reason and returns NULL on failure.
 * With cfg_out, the configuration is handed to the caller (config_release it). */
static struct store *
open_configured_store_cfg(const char *path, const char *cmd, bool migrate, struct config **cfg_out)
{
	struct config *cfg = load_config(path, cmd, true);
	if (!cfg)
		return NULL;
	log_set_level(LOG_LVL_WARN);
	struct store *s = NULL;
	char err[512];
	int applied;
	/* Every command works on a current schema, also on a store the server has never opened. */
	if (store_open(cfg, &s, err, sizeof err) || (migrate && s->ops->migrate(s, &applied, err, sizeof err))) {
		fprintf(stderr, "prismctl %s: %s\n", cmd, err);
		store_close(s);
		s = NULL;
	}
	if (s && cfg_out)
		*cfg_out = cfg;
	else
		config_release(cfg);
	return s;
}

static struct store *
open_configured_store(const char *path, const char *cmd, bool migrate)
{
	return open_configured_store_cfg(path, cmd, migrate, NULL);
}

/* --config FILE and the remaining arguments, for the store commands. */
struct store_args {
	const char *config;
	const char *output;
	const char *file;
	int dry_run;
	int remove;
	int reset;
	long limit;
};

static int
parse_store_args(int argc, char **argv, struct store_args *a, bool want_file)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "output", required_argument, NULL, 'o' },
		{ "dry-run", no_argument, NULL, 'n' },      { "limit", required_argument, NULL, 'L' },
		{ "remove", no_argument, NULL, 'R' },       { "reset", no_argument, NULL, 'Z' },
		{ NULL, 0, NULL, 0 },
	};
	memset(a, 0, sizeof *a);
	a->config = default_config_path();
	int c;
	optind = 1;
	a->limit = 100;
	while ((c = getopt_long(argc, argv, "c:o:nL:RZ", longopts, NULL)) != -1) {
		switch (c) {
		case 'R': a->remove = 1; break;
		case 'Z': a->reset = 1; break;
		case 'c': a->config = optarg; break;
		case 'o': a->output = optarg; break;
		case 'n': a->dry_run = 1; break;
		case 'L':
			if (parse_long(optarg, 1, STORE_MAX_LIMIT, &a->limit)) {
				fprintf(stderr, "prismctl: --limit must be 1..%d\n", STORE_MAX_LIMIT);
				return 2;
			}
			break;
		default: usage(stderr); return 2;
		}
	}
	if (want_file) {
		if (optind != argc - 1) {
			usage(stderr);
			return 2;
		}
		a->file = argv[optind];
	} else if (optind != argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

static int
cmd_migrate(int argc, char **argv)
{
	struct store_args a;
	int rc = parse_store_args(argc, argv, &a, false);
	if (rc)
		return rc;
	struct store *s = open_configured_store(a.config, "migrate", false);
	if (!s)
		return 1;
	int applied = 0;
	char err[512];
	enum prism_err e = s->ops->migrate(s, &applied, err, sizeof err);
	if (e)
		fprintf(stderr, "prismctl migrate: %s\n", err);
	else
		printf("%s store: %d migration step(s) applied; schema and indexes are current\n", s->ops->name, applied);
	store_close(s);
	return e ? 1 : 0;
}

static int
cmd_export(int argc, char **argv)
{
	struct store_args a;
	int rc = parse_store_args(argc, argv, &a, false);
	if (rc)
		return rc;
	struct store *s = open_configured_store(a.config, "export", true);
	if (!s)
		return 1;
	json_t *doc = NULL;
	char err[512];
	enum prism_err e = transfer_export(s, &doc, err, sizeof err);
	store_close(s);
	if (e) {
		fprintf(stderr, "prismctl export: %s\n", err);
		return 1;
	}
	int fail;
	if (a.output) {
		/* The export holds key hashes and encrypted credentials: private like the configuration. */
		char tmp[4200];
		snprintf(tmp, sizeof tmp, "%s.tmp.%ld", a.output, (long)getpid());
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		fail = fd < 0 || json_dumpfd(doc, fd, JSON_INDENT(2)) != 0 || fsync(fd) != 0;
		if (fd >= 0)
			close(fd);
		if (!fail && rename(tmp, a.output) != 0)
			fail = 1;
		if (fail) {
			fprintf(stderr, "prismctl export: cannot write %s: %s\n", a.output, strerror(errno));
			unlink(tmp);
		}
	} else {
		fail = json_dumpf(doc, stdout, JSON_INDENT(2)) != 0;
		putchar('\n');
	}
	json_decref(doc);
	return fail ? 1 : 0;
}

static int
cmd_import(int argc, char **argv)
{
	struct store_args a;
	int rc = parse_store_args(argc, argv, &a, true);
	if (rc)
		return rc;
	json_error_t jerr;
	json_t *in = strcmp(a.file, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(a.file, 0, &jerr);
	if (!in) {
		fprintf(stderr, "prismctl import: %s:%d:%d: %s\n", a.file, jerr.line, jerr.column, jerr.text);
		return 1;
	}
	struct store *s = open_configured_store(a.config, "import", true);
	if (!s) {
		json_decref(in);
		return 1;
	}
	json_t *summary = NULL;
	static char err[8192];
	enum prism_err e = transfer_import(s, in, a.dry_run, &summary, err, sizeof err);
	store_close(s);
	json_decref(in);
	if (e) {
		fprintf(stderr, "prismctl import: %s: %s%s", a.file, err, err[strlen(err) - 1] == '\n' ? "" : "\n");
		fprintf(stderr, "prismctl import: nothing was changed\n");
		return 1;
	}
	json_dumpf(summary, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(summary);
	return 0;
}

/* The newest documents of one collection as JSON, for inspection (password hashes hidden). */
static int
cmd_dump(int argc, char **argv)
{
	struct store_args a;
	int rc = parse_store_args(argc, argv, &a, true);
	if (rc)
		return rc;
	enum store_coll coll;
	if (!store_coll_by_name(a.file, &coll)) {
		fprintf(stderr, "prismctl dump: unknown collection '%s'\n", a.file);
		return 2;
	}
	struct store *s = open_configured_store(a.config, "dump", true);
	if (!s)
		return 1;
	struct store_query q = { NULL, 0, NULL, true, a.limit, NULL };
	json_t *docs = NULL;
	char *next = NULL, err[512];
	enum prism_err e = s->ops->find(s, coll, &q, &docs, &next, err, sizeof err);
	store_close(s);
	free(next);
	if (e) {
		fprintf(stderr, "prismctl dump: %s\n", err);
		return 1;
	}
	size_t i;
	json_t *d;
	json_array_foreach(docs, i, d)
		if (json_object_get(d, "passwordHash"))
			json_object_set_new(d, "passwordHash", json_string("[hidden]"));
	json_dumpf(docs, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(docs);
	return 0;
}

/* A process (other than this one) that maps `path`, or 0. */
static long
shm_mapped_by(const char *path)
{
	DIR *proc = opendir("/proc");
	if (!proc)
		return 0;
	struct dirent *de;
	long found = 0;
	while (!found && (de = readdir(proc)) != NULL) {
		long pid;
		if (parse_long(de->d_name, 1, LONG_MAX, &pid) || pid == (long)getpid())
			continue;
		char maps[64], line[4096];
		snprintf(maps, sizeof maps, "/proc/%ld/maps", pid);
		FILE *f = fopen(maps, "re");
		if (!f)
			continue;
		while (fgets(line, sizeof line, f)) {
			char *p = strstr(line, path);
			if (p && (p[strlen(path)] == '\n' || p[strlen(path)] == ' ')) {
				found = pid;
				break;
			}
		}
		fclose(f);
	}
	closedir(proc);
	return found;
}

/* The running pool's shared memory: the segment, the tenant cache and the circuit breakers. */
static int
cmd_shm(int argc, char **argv)
{
	struct store_args a;
	int rc = parse_store_args(argc, argv, &a, false);
	if (rc)
		return rc;
	struct config *cfg = load_config(a.config, "shm", false);
	if (!cfg)
		return 1;
	char name[SHM_NAME_MAX], key[2200], path[SHM_NAME_MAX + 16];
	if (*cfg->shm_name)
		snprintf(name, sizeof name, "%s", cfg->shm_name);
	else if (!shm_instance_key(a.config, cfg->listen, key, sizeof key) ||
		 shm_segment_default_name(key, name, sizeof name))
		name[0] = '\0';
	config_release(cfg);
	/* Attach only: a missing segment means no pool runs with this configuration (do not create one). */
	snprintf(path, sizeof path, "/dev/shm%s", name);
	if (!name[0] || access(path, F_OK) != 0) {
		fprintf(stderr, "prismctl shm: no shared memory %s: no pool is running with %s\n", name, a.config);
		return 1;
	}
	char err[512];
	if (a.remove) {
		/* Only a segment nobody maps: removing a live pool's segment would split its processes' state. */
		long holder = shm_mapped_by(path);
		if (holder > 0) {
			fprintf(stderr, "prismctl shm: %s is in use by process %ld; stop the pool first\n", name, holder);
			return 1;
		}
		if (shm_segment_unlink(name, err, sizeof err)) {
			fprintf(stderr, "prismctl shm: %s\n", err);
			return 1;
		}
		printf("removed %s\n", name);
		return 0;
	}
	struct shm_segment *seg = NULL;
	if (shm_segment_open(name, 0, &seg, err, sizeof err)) {
		fprintf(stderr, "prismctl shm: %s\n", err);
		return 1;
	}
	if (a.reset) {
		/* While the pool runs: every table is cleared under its own locks; counters stay monotonic. */
		tenantcache_invalidate_all(seg);
		ratelimit_clear(seg);
		breaker_reset_all(seg);
		shm_segment_close(seg);
		printf("reset %s: tenant cache invalidated, rate-limit windows forgotten, circuit breakers closed\n", name);
		return 0;
	}
	const struct shm_header *h = &seg->map->hdr;
	char created[40];
	clock_iso8601(h->created_at_ms, created, sizeof created);
	printf("segment %s: layout %u, %.1f MiB, created %s by pid %d, %ld lock recoveries\n", name,
	       h->layout_version, (double)h->size / 1048576.0, created, h->creator_pid,
	       (long)atomic_load(&seg->map->hdr.lock_recoveries));
	printf("rate limits: %u keys tracked at most\n", h->rl_slots);
	struct tenantcache_stats tc;
	tenantcache_stats(seg, &tc);
	printf("tenant cache: %ld of %ld slots, %ld hits, %ld misses, %ld evictions, %ld invalidations, "
	       "store generation %lld\n", tc.fill, tc.capacity, tc.hits, tc.misses, tc.evictions, tc.invalidations,
	       (long long)tc.generation);
	struct ratelimit_entry top[10];
	size_t nt = ratelimit_top(seg, clock_monotonic_ms(), top, 10);
	printf("busiest rate-limit keys: %zu\n", nt);
	for (size_t i = 0; i < nt; i++)
		printf("  %s %ld in %ld s\n", top[i].key, top[i].used, top[i].window_s);
	struct breaker_info info[SHM_BREAKERS];
	size_t n = breaker_snapshot(seg, clock_monotonic_ms(), info, SHM_BREAKERS);
	printf("circuit breakers: %zu provider(s)\n", n);
	for (size_t i = 0; i < n; i++)
		printf("  %s %s, %d consecutive failure(s), %lld trip(s)\n", info[i].id, breaker_state_name(info[i].state),
		       info[i].failures, (long long)info[i].trips);
	shm_segment_close(seg);
	return 0;
}

/* --- user accounts and secrets ---------------------------------------------------------------------------- */

/* A request-shaped context for the shared admin code (username and password rules, the audit trail): the
 * changes are recorded as made by "prismctl". */
static struct request *
cli_request(void)
{
	struct request *r = xcalloc(1, sizeof *r);
	r->user.authenticated = true;
	snprintf(r->user.username, sizeof r->user.username, "prismctl");
	snprintf(r->request_id, sizeof r->request_id, "prismctl-%ld", (long)getpid());
	r->query = "";
	return r;
}

/* One line from f without its line end, into out; -1 at EOF or when longer than outlen - 2. */
static int
read_line(FILE *f, char *out, size_t outlen)
{
	if (!fgets(out, (int)outlen, f))
		return -1;
	size_t n = strlen(out);
	bool complete = n > 0 && out[n - 1] == '\n';
	if (!complete && !feof(f)) {
		secure_wipe(out, outlen);
		return -1;
	}
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
		out[--n] = '\0';
	return 0;
}

/* The password: the first line of `file`, or prompted twice without echo when standard input is a terminal,
 * or the first line of standard input.  Checked against the policy of the admin API.  0 or 1 (told why). */
static int
read_password(struct request *req, const char *cmd, const char *file, const char *username, char *out, size_t outlen)
{
	out[0] = '\0';
	if (file) {
		FILE *f = fopen(file, "re");
		if (!f) {
			fprintf(stderr, "prismctl %s: cannot read %s: %s\n", cmd, file, strerror(errno));
			return 1;
		}
		int r = read_line(f, out, outlen);
		fclose(f);
		if (r) {
			fprintf(stderr, "prismctl %s: %s: no password on its first line (or a line too long)\n", cmd, file);
			return 1;
		}
	} else if (isatty(STDIN_FILENO)) {
		char again[CRYPTO_PASSWORD_MAX + 64];
		struct termios old, quiet;
		if (tcgetattr(STDIN_FILENO, &old) != 0) {
			fprintf(stderr, "prismctl %s: cannot turn off the terminal's echo: %s\n", cmd, strerror(errno));
			return 1;
		}
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		quiet.c_lflag |= ECHONL;
		tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
		fprintf(stderr, "New password for %s: ", username);
		int r = read_line(stdin, out, outlen);
		if (!r) {
			fprintf(stderr, "Repeat the password: ");
			r = read_line(stdin, again, sizeof again);
		}
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		bool same = !r && crypto_str_eq(out, again);
		secure_wipe(again, sizeof again);
		if (r || !same) {
			fprintf(stderr, "prismctl %s: %s\n", cmd, r ? "no password given" : "the two passwords differ");
			secure_wipe(out, outlen);
			return 1;
		}
	} else if (read_line(stdin, out, outlen)) {
		fprintf(stderr, "prismctl %s: no password on standard input (or a line too long)\n", cmd);
		return 1;
	}
	if (auth_password_check(req, "password", out) != PRISM_OK) {
		fprintf(stderr, "prismctl %s: %s\n", cmd, req->errdetail);
		secure_wipe(out, outlen);
		return 1;
	}
	return 0;
}

struct user_args {
	const char *config;
	const char *password_file;
	const char *username;
	int force;
};

static int
parse_user_args(int argc, char **argv, struct user_args *a, bool allow_force)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' }, { "password-file", required_argument, NULL, 'p' },
		{ "force", no_argument, NULL, 'f' },        { NULL, 0, NULL, 0 },
	};
	memset(a, 0, sizeof *a);
	a->config = default_config_path();
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:p:f", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': a->config = optarg; break;
		case 'p': a->password_file = optarg; break;
		case 'f':
			if (!allow_force) {
				usage(stderr);
				return 2;
			}
			a->force = 1;
			break;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	a->username = argv[optind];
	return 0;
}

/* The user document of `username` (new reference) or NULL; false when the store failed (printed). */
static bool
find_user(struct store *s, const char *cmd, const char *username, json_t **out)
{
	*out = NULL;
	json_t *v = json_string(username), *page = NULL;
	struct store_cond cond = { "username", SOP_EQ, v };
	struct store_query q = { &cond, 1, NULL, false, 1, NULL };
	char *next = NULL, err[512];
	enum prism_err e = s->ops->find(s, COLL_USERS, &q, &page, &next, err, sizeof err);
	json_decref(v);
	free(next);
	if (e) {
		fprintf(stderr, "prismctl %s: %s\n", cmd, err);
		return false;
	}
	if (json_array_size(page))
		*out = json_incref(json_array_get(page, 0));
	json_decref(page);
	return true;
}

/* Read-modify-write of one user with a version check: `change` edits the fresh document.  The document as
 * written goes to *after (new reference) and the one it replaced to *before.  0, or 1 (printed). */
static int
update_user(struct store *s, const char *cmd, const char *id, void (*change)(json_t *user, void *arg), void *arg,
	    json_t **before, json_t **after)
{
	char err[512];
	*before = *after = NULL;
	for (int attempt = 0; attempt < 5; attempt++) {
		json_t *user = NULL;
		enum prism_err e = s->ops->get(s, COLL_USERS, id, &user, err, sizeof err);
		if (e) {
			fprintf(stderr, "prismctl %s: %s\n", cmd, e == PRISM_E_NOT_FOUND ? "the user was deleted meanwhile" : err);
			return 1;
		}
		json_t *old = json_deep_copy(user);
		long ver = (long)json_integer_value(json_object_get(user, "__v"));
		change(user, arg);
		e = s->ops->update(s, COLL_USERS, id, user, ver, NULL, err, sizeof err);
		if (e == PRISM_OK) {
			*before = old;
			*after = user;
			return 0;
		}
		json_decref(old);
		json_decref(user);
		if (e != PRISM_E_CONFLICT) {
			fprintf(stderr, "prismctl %s: %s\n", cmd, err);
			return 1;
		}
	}
	fprintf(stderr, "prismctl %s: the user was changed concurrently five times; try again\n", cmd);
	return 1;
}

static long
user_token_version(const json_t *user)
{
	json_t *v = json_object_get(user, "tokenVersion");
	return json_is_integer(v) ? (long)json_integer_value(v) : 0;
}

/* A new password and a new token version: every session of the user ends. */
static void
set_password(json_t *user, void *hash)
{
	json_object_set_new(user, "passwordHash", json_string(hash));
	json_object_set_new(user, "tokenVersion", json_integer(user_token_version(user) + 1));
}

static void
make_admin(json_t *user, void *hash)
{
	set_password(user, hash);
	json_object_set_new(user, "role", json_string("admin"));
	json_object_set_new(user, "source", json_string("local"));
	json_object_set_new(user, "active", json_true());
	json_object_set_new(user, "tenants", json_array());
	json_object_del(user, "ldapDn");
}

static int
cmd_create_admin(int argc, char **argv)
{
	const char *cmd = "create-admin";
	struct user_args a;
	int rc = parse_user_args(argc, argv, &a, true);
	if (rc)
		return rc;
	struct request *req = cli_request();
	struct store *s = NULL;
	json_t *user = NULL, *before = NULL, *after = NULL, *doc = NULL;
	char username[PRISM_MAX_USERNAME + 1], password[CRYPTO_PASSWORD_MAX + 64], err[512], id[25];
	char *hash = NULL;
	bool claimed = false;
	password[0] = '\0';
	rc = 1;
	if (auth_username_normalise(req, a.username, username, sizeof username) != PRISM_OK) {
		fprintf(stderr, "prismctl %s: %s\n", cmd, req->errdetail);
		rc = 2;
		goto out;
	}
	if (read_password(req, cmd, a.password_file, username, password, sizeof password))
		goto out;
	if (!(s = open_configured_store(a.config, cmd, true)))
		goto out;
	store_set_current(s);               /* for the audit trail */
	if (crypto_password_hash(password, &hash) != PRISM_OK) {
		fprintf(stderr, "prismctl %s: cannot hash the password\n", cmd);
		goto out;
	}
	if (!find_user(s, cmd, username, &user))
		goto out;
	if (user) {
		if (!a.force) {
			fprintf(stderr, "prismctl %s: user '%s' already exists (use --force to make it an active local "
					"admin with this password)\n", cmd, username);
			goto out;
		}
		snprintf(id, sizeof id, "%s", json_string_value(json_object_get(user, "_id")));
		if (update_user(s, cmd, id, make_admin, hash, &before, &after))
			goto out;
		audit_record(req, "update", "user", id, username, before, after);
		printf("user '%s' (%s) is now an active local admin with the new password; its sessions are revoked\n",
		       username, id);
		rc = 0;
		goto out;
	}
	/* Before the setup, as POST /api/prism/setup/admin: the first admin holds the setup claim. */
	bool done = false;
	long users = 0;
	struct store_query all = { NULL, 0, NULL, false, 0, NULL };
	if (setup_is_complete(s, &done, err, sizeof err) || s->ops->count(s, COLL_USERS, &all, &users, err, sizeof err)) {
		fprintf(stderr, "prismctl %s: %s\n", cmd, err);
		goto out;
	}
	if (!done && users == 0) {
		json_t *claim = json_pack("{s:s, s:b, s:s}", "_id", SETUP_CLAIM_ID, "completed", 0, "adminUser", username);
		enum prism_err e = s->ops->insert(s, COLL_SETUPS, claim, NULL, err, sizeof err);
		json_decref(claim);
		if (e == PRISM_OK)
			claimed = true;
		else if (e != PRISM_E_CONFLICT) {    /* CONFLICT: a claim without a user, left by a failed attempt */
			fprintf(stderr, "prismctl %s: %s\n", cmd, err);
			goto out;
		}
	}
	doc = json_pack("{s:s, s:s, s:s, s:[], s:s, s:b, s:i}", "username", username, "passwordHash", hash, "role",
			"admin", "tenants", "source", "local", "active", 1, "tokenVersion", 0);
	enum prism_err e = s->ops->insert(s, COLL_USERS, doc, id, err, sizeof err);
	if (e) {
		char rerr[256];
		if (claimed && s->ops->remove(s, COLL_SETUPS, SETUP_CLAIM_ID, rerr, sizeof rerr))
			fprintf(stderr, "prismctl %s: cannot release the setup claim: %s\n", cmd, rerr);
		fprintf(stderr, "prismctl %s: %s\n", cmd,
			e == PRISM_E_CONFLICT ? "a user of this name was created meanwhile" : err);
		goto out;
	}
	audit_record(req, "create", "user", id, username, NULL, NULL);
	printf("created local admin '%s' (%s)\n", username, id);
	if (!done)
		printf("the setup is not complete: log in as '%s' and complete it in the web UI "
		       "(or POST /api/prism/setup/complete)\n", username);
	rc = 0;
out:
	secure_wipe(password, sizeof password);
	free(hash);
	json_decref(user);
	json_decref(before);
	json_decref(after);
	json_decref(doc);
	store_set_current(NULL);
	store_close(s);
	free(req);
	return rc;
}

static int
cmd_reset_password(int argc, char **argv)
{
	const char *cmd = "reset-password";
	struct user_args a;
	int rc = parse_user_args(argc, argv, &a, false);
	if (rc)
		return rc;
	struct request *req = cli_request();
	struct store *s = NULL;
	json_t *user = NULL, *before = NULL, *after = NULL;
	char username[PRISM_MAX_USERNAME + 1], password[CRYPTO_PASSWORD_MAX + 64], id[25];
	char *hash = NULL;
	password[0] = '\0';
	rc = 1;
	if (auth_username_normalise(req, a.username, username, sizeof username) != PRISM_OK) {
		fprintf(stderr, "prismctl %s: %s\n", cmd, req->errdetail);
		rc = 2;
		goto out;
	}
	/* The account first: nobody types a new password for a user that cannot have one. */
	if (!(s = open_configured_store(a.config, cmd, true)))
		goto out;
	store_set_current(s);
	if (!find_user(s, cmd, username, &user))
		goto out;
	if (!user) {
		fprintf(stderr, "prismctl %s: no user '%s'\n", cmd, username);
		goto out;
	}
	if (strcmp(json_string_value(json_object_get(user, "source")) ?: "local", "ldap") == 0) {
		fprintf(stderr, "prismctl %s: '%s' is a directory (LDAP) account: its password is the directory's\n", cmd,
			username);
		goto out;
	}
	if (read_password(req, cmd, a.password_file, username, password, sizeof password))
		goto out;
	if (crypto_password_hash(password, &hash) != PRISM_OK) {
		fprintf(stderr, "prismctl %s: cannot hash the password\n", cmd);
		goto out;
	}
	snprintf(id, sizeof id, "%s", json_string_value(json_object_get(user, "_id")));
	if (update_user(s, cmd, id, set_password, hash, &before, &after))
		goto out;
	audit_record(req, "password", "user", id, username, NULL, NULL);
	printf("password of '%s' (%s) changed; its sessions are revoked\n", username, id);
	json_t *active = json_object_get(after, "active");
	if (json_is_false(active))
		printf("note: '%s' is deactivated and cannot log in until an admin activates the account again\n", username);
	rc = 0;
out:
	secure_wipe(password, sizeof password);
	free(hash);
	json_decref(user);
	json_decref(before);
	json_decref(after);
	store_set_current(NULL);
	store_close(s);
	free(req);
	return rc;
}

static void
rotate_report(void *arg, const char *collection, const char *id, const char *path, const char *why)
{
	(void)arg;
	fprintf(stderr, "prismctl rotate-encryption-key: %s %s %s: %s; left as it is\n", collection, id, path, why);
}

/* Re-encrypts every stored secret under encryption_key (reading old ones with encryption_key_previous). */
static int
cmd_rotate_encryption_key(int argc, char **argv)
{
	const char *cmd = "rotate-encryption-key";
	struct store_args a;
	int rc = parse_store_args(argc, argv, &a, false);
	if (rc)
		return rc;
	struct config *cfg = NULL;
	struct store *s = open_configured_store_cfg(a.config, cmd, true, &cfg);
	if (!s)
		return 1;
	bool have_previous = cfg->encryption_key_previous && *cfg->encryption_key_previous;
	if (!have_previous)
		printf("note: encryption_key_previous is not set: the stored values are only checked against "
		       "encryption_key\n");
	struct system_rotate_count counts[SYSTEM_ROTATE_COLLECTIONS];
	static char err[1024];
	enum prism_err e = system_rotate_secrets(s, cfg->encryption_key, cfg->encryption_key_previous, a.dry_run != 0,
						 counts, rotate_report, NULL, err, sizeof err);
	long rotated = 0, unreadable = 0, current = 0;
	for (size_t i = 0; i < SYSTEM_ROTATE_COLLECTIONS && counts[i].collection; i++) {
		printf("%-14s %ld document(s) read, %ld changed, %ld value(s) re-encrypted, %ld already current, "
		       "%ld unreadable\n", counts[i].collection, counts[i].documents, counts[i].changed, counts[i].rotated,
		       counts[i].current, counts[i].unreadable);
		rotated += counts[i].rotated;
		unreadable += counts[i].unreadable;
		current += counts[i].current;
	}
	rc = 0;
	if (e) {
		fprintf(stderr, "prismctl %s: %s\nprismctl %s: stopped; what was re-encrypted so far stays so, run the "
				"command again\n", cmd, err, cmd);
		rc = 1;
	}
	if (rotated && !a.dry_run) {
		/* Processes that cache decrypted credentials read them again. */
		int64_t gen;
		char gerr[256];
		if (s->ops->bump_generation(s, &gen, gerr, sizeof gerr))
			fprintf(stderr, "prismctl %s: cannot bump the configuration generation: %s\n", cmd, gerr);
		struct request *req = cli_request();
		json_t *after = json_pack("{s:I, s:I}", "valuesRotated", (json_int_t)rotated, "valuesUnreadable",
					  (json_int_t)unreadable);
		store_set_current(s);
		audit_record(req, "rotate-key", "system", NULL, "encryption key rotation", NULL, after);
		store_set_current(NULL);
		json_decref(after);
		free(req);
	}
	if (a.dry_run)
		printf("dry run: %ld value(s) would be re-encrypted; nothing was written\n", rotated);
	if (unreadable) {
		fprintf(stderr, "prismctl %s: %ld value(s) are readable with neither encryption_key nor "
				"encryption_key_previous; they were left as they are (listed above)\n", cmd, unreadable);
		rc = 1;
	} else if (!e && !a.dry_run) {
		printf("%ld value(s) re-encrypted; all %ld stored secret(s) are readable with encryption_key%s\n", rotated,
		       rotated + current, have_previous ? ": remove encryption_key_previous from the configuration and "
							   "restart prism.fcgi" : "");
	}
	store_close(s);
	config_release(cfg);
	return rc;
}

/* The configuration table as tab-separated lines, for scripts and for checking the documentation. */
static int
cmd_keys(void)
{
	for (const struct cfg_def *d = config_defs; d->name; d++)
		printf("%s\t%s\t%s\t%s\t%s\n", d->name, d->dflt, d->env ? d->env : "-",
		       (d->flags & CFG_RELOAD) ? "reload" : "restart", d->doc);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc - 1, argv + 1);
	if (strcmp(cmd, "check-config") == 0)
		return cmd_check_config(argc - 1, argv + 1);
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(argc - 1, argv + 1);
	if (strcmp(cmd, "export") == 0)
		return cmd_export(argc - 1, argv + 1);
	if (strcmp(cmd, "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(cmd, "shm") == 0)
		return cmd_shm(argc - 1, argv + 1);
	if (strcmp(cmd, "dump") == 0)
		return cmd_dump(argc - 1, argv + 1);
	if (strcmp(cmd, "create-admin") == 0)
		return cmd_create_admin(argc - 1, argv + 1);
	if (strcmp(cmd, "reset-password") == 0)
		return cmd_reset_password(argc - 1, argv + 1);
	if (strcmp(cmd, "rotate-encryption-key") == 0)
		return cmd_rotate_encryption_key(argc - 1, argv + 1);
	if (strcmp(cmd, "keys") == 0)
		return cmd_keys();
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("prismctl %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "prismctl: unknown command '%s'\n", cmd);
	usage(stderr);
	return 2;
}
