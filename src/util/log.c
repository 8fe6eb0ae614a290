/* log.c -- see log.h. */
#include "config.h"
#include "util/log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/limits.h"

static atomic_int log_level_cur = LOG_LVL_INFO;
static atomic_int log_fd = STDERR_FILENO;
static atomic_int log_target_cur = LOG_TO_STDERR;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

enum prism_err
log_open(enum log_target target, const char *file, const char *ident)
{
	if (target == LOG_TO_FILE) {
		int fd = open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (fd < 0)
			return PRISM_E_IO;
		int old = atomic_exchange(&log_fd, fd);
		if (old != STDERR_FILENO && old >= 0)
			close(old);
	} else {
		int old = atomic_exchange(&log_fd, STDERR_FILENO);
		if (old != STDERR_FILENO && old >= 0)
			close(old);
		if (target == LOG_TO_SYSLOG)
			openlog(ident ? ident : "model-prism", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	}
	atomic_store(&log_target_cur, (int)target);
	return PRISM_OK;
}

void
log_close(void)
{
	int old = atomic_exchange(&log_fd, STDERR_FILENO);
	if (old != STDERR_FILENO && old >= 0)
		close(old);
	if (atomic_load(&log_target_cur) == LOG_TO_SYSLOG)
		closelog();
	atomic_store(&log_target_cur, LOG_TO_STDERR);
}

void
log_set_level(enum log_level level)
{
	atomic_store(&log_level_cur, (int)level);
}

bool
log_enabled(enum log_level level)
{
	return (int)level <= atomic_load(&log_level_cur);
}

/* Length of a credential that starts at p: up to a space (or, for header values, the end of the value),
 * a quote, a comma, a semicolon or an ampersand. */
static size_t
token_len(const char *p, bool whole_value)
{
	size_t n = 0;
	while (p[n] && p[n] != '"' && p[n] != '\'' && p[n] != ',' && p[n] != ';' && p[n] != '&' &&
	       p[n] != '\n' && p[n] != '\r' && (whole_value || !isspace((unsigned char)p[n])))
		n++;
	/* a header value ends at the next word that looks like another field ("rest of the line") */
	if (whole_value) {
		const char *sp = memchr(p, ' ', n);
		if (sp) {
			const char *sp2 = memchr(sp + 1, ' ', n - (size_t)(sp + 1 - p));
			if (sp2)
				n = (size_t)(sp2 - p);
		}
	}
	return n;
}

void
log_scrub(const char *in, char *out, size_t outlen)
{
	/* Markers after which the next word (or header value) is a credential. */
	static const struct {
		const char *text;
		bool whole_value;
	} markers[] = {
		{ "authorization: ", true }, { "proxy-authorization: ", true }, { "bearer ", false },
		{ "api-key: ", false },      { "x-api-key: ", false },          { "password=", false },
		{ "secret=", false },        { "token=", false },
	};
	size_t o = 0;
	if (outlen == 0)
		return;
	for (size_t i = 0; in[i] && o + 1 < outlen;) {
		bool redacted = false;
		for (size_t m = 0; m < sizeof markers / sizeof markers[0]; m++) {
			size_t ml = strlen(markers[m].text);
			if (strncasecmp(in + i, markers[m].text, ml) == 0) {
				size_t tl = token_len(in + i + ml, markers[m].whole_value);
				if (tl == 0)
					continue;
				int w = snprintf(out + o, outlen - o, "%.*s[redacted]", (int)ml, in + i);
				o = w < 0 ? o : (o + (size_t)w >= outlen ? outlen - 1 : o + (size_t)w);
				i += ml + tl;
				redacted = true;
				break;
			}
		}
		if (redacted)
			continue;
		/* Gateway keys "omp-<64 hex>" anywhere in a line. */
		if (strncmp(in + i, "omp-", 4) == 0 && isxdigit((unsigned char)in[i + 4])) {
			size_t tl = token_len(in + i, false);
			int w = snprintf(out + o, outlen - o, "omp-[redacted]");
			o = w < 0 ? o : (o + (size_t)w >= outlen ? outlen - 1 : o + (size_t)w);
			i += tl;
			continue;
		}
		unsigned char c = (unsigned char)in[i];
		if (c < 0x20 || c == 0x7f) {
			if (o + 4 >= outlen)
				break;
			snprintf(out + o, outlen - o, "\\x%02x", c);
			o += 4;
		} else {
			out[o++] = (char)c;
		}
		i++;
	}
	out[o] = '\0';
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	if (!log_enabled(level))
		return;
	char raw[PRISM_MAX_LOG_LINE], clean[PRISM_MAX_LOG_LINE], line[PRISM_MAX_LOG_LINE + 96];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof raw, fmt, ap);
	va_end(ap);
	log_scrub(raw, clean, sizeof clean);

	if (atomic_load(&log_target_cur) == LOG_TO_SYSLOG) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
		syslog(prio[level], "%s", clean);
		return;
	}
	char ts[40];
	clock_iso8601(clock_realtime_ms(), ts, sizeof ts);
	int n = snprintf(line, sizeof line, "%s [%ld] %s: %s\n", ts, (long)getpid(), level_names[level], clean);
	if (n < 0)
		return;
	size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
	if (line[len - 1] != '\n')
		line[len - 1] = '\n';
	int saved = errno;
	(void)!write(atomic_load(&log_fd), line, len);
	errno = saved;
}
