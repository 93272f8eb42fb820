/*
 * vh_log.h - the host's log: one record per event of note, to stderr.
 *
 * Format (UTC, millisecond precision, level padded to five columns):
 *
 *   2026-11-24T10:00:00.123Z info  [counter] tick handled
 *
 * A record may carry continuation lines (a Lua traceback): they follow the
 * first line, each indented by four spaces, and are written with the first
 * line in a single write(2) so records from one process never interleave.
 */
#ifndef VH_LOG_H
#define VH_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef enum vh_log_level {
  VH_LOG_DEBUG = 0,
  VH_LOG_INFO = 1,
  VH_LOG_WARN = 2,
  VH_LOG_ERROR = 3
} vh_log_level_t;

/* Only records at or above level are written (default VH_LOG_INFO). */
void vh_log_set_level(vh_log_level_t level);
int vh_log_enabled(vh_log_level_t level);
/* Parse "debug" / "info" / "warn" / "error" (s [borrowed]) into *out.
 * 0, or -1 for any other string. */
int vh_log_parse_level(const char *s, vh_log_level_t *out);

/* Write one record tagged [tag] (tag [borrowed], e.g. a domain name or
 * "vedhost"). printf-style. */
void vh_log(vh_log_level_t level, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vh_logv(vh_log_level_t level, const char *tag, const char *fmt,
             va_list ap);
/* Write one record whose message is msg [borrowed] (first line) followed
 * by the lines of more [borrowed; may be NULL], indented. Newlines inside
 * msg also become indented continuation lines. */
void vh_log_text(vh_log_level_t level, const char *tag, const char *msg,
                 const char *more);

/* Send records to fn(arg, level, tag, text) instead of stderr (fn NULL:
 * back to stderr). text [borrowed] is the record without its time stamp:
 * the message and its indented continuation lines, no final newline.
 * Process-wide, loop thread only (the ved.testing harness captures each
 * host's records). */
typedef void (*vh_log_sink_fn)(void *arg, vh_log_level_t level, const char *tag,
                               const char *text);
void vh_log_set_sink(vh_log_sink_fn fn, void *arg);

/* The first line of the last record at VH_LOG_ERROR ("[tag] message"),
 * whether or not it was written, copied into buf [borrowed, cap bytes,
 * NUL-terminated]. Returns its wall-clock time in ms since the epoch, or 0
 * (and "") when there was none. For the REPL's :stats. */
int64_t vh_log_last_error(char *buf, size_t cap);

#endif /* VH_LOG_H */
