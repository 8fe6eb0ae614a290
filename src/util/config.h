/* config.h -- the configuration: one declarative table, one parser, one validator.
 *
 * Sources, lowest precedence first: built-in defaults, the file (`key = value`, `#` comments), then the
 * environment variables the original program used (MONGO_URI, JWT_SECRET, ...; a `NAME_FILE` variant reads
 * a secret from a file).  Unknown keys, duplicate keys and bad values are errors reported as
 * `file:line: reason`; config_load collects every error, not just the first.
 *
 * Ownership: config_load returns a new struct config (refcount 1); config_release frees it when the last
 * reference goes.  The process-wide current configuration is swapped atomically on SIGHUP: a request takes
 * a reference at its start (config_acquire) and drops it at its end, so a reload never pulls a value out
 * from under a running request.  Keys not marked reloadable keep their old values across a reload.
 */
#ifndef PRISM_CONFIG_H
#define PRISM_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/netaddr.h"

enum prism_role { ROLE_FULL = 0, ROLE_CONTROL = 1, ROLE_WORKER = 2 };

struct cfg_list {
	size_t n;
	char **items;
};

struct config {
	atomic_int refs;
	char *source;                  /* the file it was read from, or "" */

	/* process */
	char *listen;                  /* "" = fd 0 (spawned by the web server) */
	long processes;
	long threads;
	long socket_mode;
	long shutdown_grace_ms;
	int role;                      /* enum prism_role */
	char *pid_file;
	char *data_dir;
	char *run_dir;

	/* storage and secrets */
	char *store;
	char *mongo_uri;
	long store_timeout_ms;
	char *jwt_secret;
	char *encryption_key;
	char *encryption_key_previous;
	long jwt_lifetime_ms;
	long audit_retention_ms;
	char *models_dev_url;
	bool offline;

	/* logging */
	int log_level;                 /* enum log_level */
	int log_target;                /* enum log_target */
	char *log_file;
	bool access_log;

	/* HTTP */
	long max_body_size;
	struct cfg_list cors_origins;
	struct cfg_list trusted_proxies;
	struct netprefix *proxy_prefixes;   /* parsed trusted_proxies */
	bool diag_endpoints;

	/* shared memory, per-IP limits, metrics */
	char *shm_name;
	long shm_size;
	long ratelimit_login;
	long ratelimit_admin;
	long ratelimit_gateway;
	long ratelimit_ipv6_prefix;
	struct cfg_list metrics_allow;
	struct netprefix *metrics_prefixes;   /* parsed metrics_allow */
	char *metrics_token;
	long generation_poll_ms;
};

enum cfg_type { CFG_STRING, CFG_INT, CFG_BOOL, CFG_SIZE, CFG_DURATION, CFG_ENUM, CFG_LIST, CFG_MODE };

#define CFG_RELOAD 0x1u        /* applied by SIGHUP without a restart */
#define CFG_SECRET 0x2u        /* never printed; env NAME_FILE variant allowed */

struct cfg_def {
	const char *name;
	const char *env;               /* environment variable that overrides it, or NULL */
	enum cfg_type type;
	const char *dflt;              /* default in the file's text form */
	long min, max;                 /* INT, SIZE, DURATION (ms), MODE; max length for STRING */
	const char *const *choices;    /* ENUM: NULL-terminated */
	unsigned flags;
	size_t offset;                 /* into struct config */
	const char *doc;               /* one line for prism.conf(5) and check-config --keys */
};

/* The table; terminated by an entry with name NULL. */
extern const struct cfg_def config_defs[];

/* A lookup function for environment variables (getenv in production; a table in tests). */
typedef const char *(*config_env_fn)(const char *name);

/* Loads defaults, then `path` (NULL or "" = no file), then the environment.  On error returns NULL and
 * writes every problem, one per line, into errors. */
struct config *config_load(const char *path, config_env_fn env, struct buf *errors);
/* Sets one key from its text form (command-line overrides); PRISM_E_CONFIG with the reason in errors. */
enum prism_err config_set(struct config *cfg, const char *name, const char *value, struct buf *errors);
/* Cross-key validation that depends on the role (secrets present, long enough, not well-known defaults). */
enum prism_err config_validate(const struct config *cfg, struct buf *errors);
/* After a reload: keys without CFG_RELOAD take old's values; each changed one is reported in notes. */
void config_keep_static(struct config *fresh, const struct config *old, struct buf *notes);

void config_release(struct config *cfg);
/* Process-wide current configuration. */
void config_install(struct config *cfg);          /* takes ownership of the caller's reference */
struct config *config_acquire(void);              /* new reference; never NULL once installed */

const struct cfg_def *config_find(const char *name);
/* The value of one key in text form (secrets masked as "(set)"/"(unset)"); into out. */
void config_format_value(const struct config *cfg, const struct cfg_def *def, char *out, size_t outlen);

const char *config_role_name(int role);

#endif
