/*
 * log.c - timestamped log records on stderr (see vh_log.h for the format).
 *
 * Why a record is assembled in a buffer and written with one write(2): a
 * host under a supervisor shares stderr with other processes and with its
 * own future writer thread; one write per record keeps lines whole. A
 * record longer than the buffer is cut and ends with "...".
 *
 * Invariant: every record ends with exactly one '\n'; continuation lines
 * start with four spaces, so a log reader can tell record starts by the
 * leading digit of the timestamp.
 */
#include "vh_log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VH_LOG_BUF 8192

static vh_log_level_t vh_log_min = VH_LOG_INFO;

static const char *const vh_log_names[] = {"debug", "info", "warn", "error"};

void vh_log_set_level(vh_log_level_t level) {
  vh_log_min = level;
}

int vh_log_enabled(vh_log_level_t level) {
  return level >= vh_log_min;
}

int vh_log_parse_level(const char *s, vh_log_level_t *out) {
  for (int i = 0; i < 4; i++) {
    if (strcmp(s, vh_log_names[i]) == 0) {
      *out = (vh_log_level_t)i;
      return 0;
    }
  }
  return -1;
}

/* Append the header "<time> <level> [tag] " to buf; returns its length. */
static size_t vh_log_header(char *buf, size_t cap, vh_log_level_t level,
                            const char *tag) {
  struct timespec ts;
  struct tm tm;
  char when[32];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
  int n = snprintf(buf, cap, "%s.%03ldZ %-5s [%s] ", when,
                   (long)(ts.tv_nsec / 1000000), vh_log_names[level],
                   tag ? tag : "vedhost");
  return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

/* Append text to buf at *len, turning each '\n' into "\n    ". Leaves room
 * for the final newline; marks truncation with "...". */
static void vh_log_append(char *buf, size_t *len, size_t cap,
                          const char *text) {
  size_t n = *len;
  for (const char *p = text; *p; p++) {
    size_t need = (*p == '\n') ? 5 : 1;
    if (n + need + 4 >= cap) {
      memcpy(buf + n, "...", 3);
      n += 3;
      break;
    }
    if (*p == '\n') {
      memcpy(buf + n, "\n    ", 5);
    } else {
      buf[n] = *p;
    }
    n += need;
  }
  *len = n;
}

static void vh_log_write(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t w = write(STDERR_FILENO, buf, len);
    if (w <= 0) return; /* nowhere to report a failing stderr */
    buf += w;
    len -= (size_t)w;
  }
}

/* The last error record (for the REPL's :stats), kept even when errors
 * are not written. Loop thread only, like every logger of the host. */
static char vh_log_last[512];
static int64_t vh_log_last_ms;

int64_t vh_log_last_error(char *buf, size_t cap) {
  if (cap > 0) snprintf(buf, cap, "%s", vh_log_last);
  return vh_log_last_ms;
}

static vh_log_sink_fn vh_log_sink;
static void *vh_log_sink_arg;

void vh_log_set_sink(vh_log_sink_fn fn, void *arg) {
  vh_log_sink = fn;
  vh_log_sink_arg = arg;
}

void vh_log_text(vh_log_level_t level, const char *tag, const char *msg,
                 const char *more) {
  char buf[VH_LOG_BUF];
  if (level >= VH_LOG_ERROR) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    vh_log_last_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    const char *nl = strchr(msg, '\n');
    int n = nl ? (int)(nl - msg) : (int)strlen(msg);
    snprintf(vh_log_last, sizeof vh_log_last, "[%s] %.*s",
             tag ? tag : "vedhost", n, msg);
  }
  if (!vh_log_enabled(level)) return;
  size_t len = vh_log_sink ? 0 : vh_log_header(buf, sizeof buf, level, tag);
  vh_log_append(buf, &len, sizeof buf, msg);
  if (more && *more) {
    vh_log_append(buf, &len, sizeof buf, "\n");
    vh_log_append(buf, &len, sizeof buf, more);
  }
  /* no trailing blank continuation line */
  while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\n')) len--;
  if (vh_log_sink) {
    buf[len] = '\0';
    vh_log_sink(vh_log_sink_arg, level, tag ? tag : "vedhost", buf);
    return;
  }
  buf[len++] = '\n';
  vh_log_write(buf, len);
}

void vh_logv(vh_log_level_t level, const char *tag, const char *fmt,
             va_list ap) {
  char msg[VH_LOG_BUF];
  if (!vh_log_enabled(level)) return;
  vsnprintf(msg, sizeof msg, fmt, ap);
  vh_log_text(level, tag, msg, NULL);
}

void vh_log(vh_log_level_t level, const char *tag, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vh_logv(level, tag, fmt, ap);
  va_end(ap);
}
