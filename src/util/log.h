/* log.h -- the one logging choke point.
 *
 * Lines go to stderr (the default: lighttpd's breakagelog, Apache's ErrorLog, journald), to a file opened
 * with O_APPEND (one write per line, so lines from many processes never interleave) or to syslog.  Every
 * line passes through log_scrub(): control characters are escaped (no log injection from outside text) and
 * bearer tokens, API keys and secrets are replaced by "[redacted]".  Thread-safe; never fails loudly.
 */
#ifndef PRISM_LOG_H
#define PRISM_LOG_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN = 1, LOG_LVL_INFO = 2, LOG_LVL_DEBUG = 3 };
enum log_target { LOG_TO_STDERR = 0, LOG_TO_FILE = 1, LOG_TO_SYSLOG = 2 };

/* (Re)opens the target; safe to call again on SIGHUP.  `file` is used with LOG_TO_FILE. */
enum prism_err log_open(enum log_target target, const char *file, const char *ident);
void log_close(void);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Escapes control characters and redacts credentials in `in` into `out` (always NUL-terminated). */
void log_scrub(const char *in, char *out, size_t outlen);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LVL_DEBUG)) log_msg(LOG_LVL_DEBUG, __VA_ARGS__); } while (0)

#endif
