/*
 * version_spec.c - resolving a version spec (`1234`, `-3`, `14:02`, `-5m`,
 * `2026-12-06T14:02:00Z`, a mark) to a retained version seq.
 *
 * The grammar and the error lines are in vh_version_spec.h. The work is
 * split in two so the parsing and the choice can be tested without a
 * store: vh_version_resolve_src() runs over a vh_vspec_src_t (a newest-
 * first walk of the retained versions and a mark lookup), and
 * vh_version_resolve() is the thin adapter over the store's version
 * records (vh_versions.h).
 *
 * COST. Every form walks the retained versions newest first and stops at
 * the first match, so `-N` costs N steps, a time the versions newer than
 * it, a seq the versions newer than it; a mark is one lookup. Only a spec
 * that names nothing walks the whole list (to name the oldest in the
 * error).
 *
 * TIMES are UTC. Calendar arithmetic is done here (days from the civil
 * date, valid for any year 1970..9999), not with timegm/gmtime, so the
 * result does not depend on the process's time zone or locale.
 */
#include "vh_version_spec.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_manifest.h"
#include "vh_store.h"
#include "vh_versions.h"

#define VH_MS_DAY 86400000LL

/* ---- messages ---- */

static int vh_vspec__err(char **errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int vh_vspec__err(char **errmsg, int code, const char *fmt, ...) {
  if (errmsg != NULL) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    *errmsg = strdup(buf);
  }
  return code;
}

/* ---- calendar ---- */

/* Days since 1970-01-01 of the civil date y-m-d (H. Hinnant's algorithm). */
static int64_t vh_vspec__days(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void vh_vspec__civil(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int vh_vspec__mdays(int y, int m) {
  static const int n[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : n[m - 1];
}

char *vh_version_time_fmt(int64_t t_ms, char *buf) {
  int64_t day =
      t_ms >= 0 ? t_ms / VH_MS_DAY : -((-t_ms + VH_MS_DAY - 1) / VH_MS_DAY);
  int64_t ms = t_ms - day * VH_MS_DAY;
  int y, m, d;
  vh_vspec__civil(day, &y, &m, &d);
  /* Bounded fields, so the output provably fits (years past 9999 wrap). */
  snprintf(buf, VH_VERSION_TIME_LEN, "%04u-%02u-%02uT%02u:%02u:%02u.%03uZ",
           (unsigned)y % 10000u, (unsigned)m % 100u, (unsigned)d % 100u,
           (unsigned)(ms / 3600000) % 100u, (unsigned)(ms / 60000 % 60),
           (unsigned)(ms / 1000 % 60), (unsigned)(ms % 1000));
  return buf;
}

/* ---- parsing ---- */

/* Exactly n digits at *p (advanced): their value, or -1. */
static int vh_vspec__digits(const char **p, int n) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  return v;
}

/* "HH:MM[:SS[.mmm]]" at *p (advanced) -> ms into the day, or -1 (not this
 * form) / -2 (this form, out of range). */
static int64_t vh_vspec__clock(const char **p) {
  const char *s = *p;
  int hh = vh_vspec__digits(&s, 2), mm, ss = 0, ms = 0;
  if (hh < 0 || *s != ':') return -1;
  s++;
  if ((mm = vh_vspec__digits(&s, 2)) < 0) return -1;
  if (*s == ':') {
    s++;
    if ((ss = vh_vspec__digits(&s, 2)) < 0) return -1;
    if (*s == '.') {
      s++;
      if ((ms = vh_vspec__digits(&s, 3)) < 0) return -1;
    }
  }
  *p = s;
  if (hh > 23 || mm > 59 || ss > 59) return -2;
  return ((int64_t)hh * 3600 + mm * 60 + ss) * 1000 + ms;
}

int vh_version_parse_time(const char *spec, int64_t now_ms, int64_t *t_ms,
                          char **errmsg) {
  const char *p = spec;
  size_t n = strlen(spec);
  if (errmsg != NULL) *errmsg = NULL;
  /* -DIGITS(s|m|h|d): an age. */
  if (n >= 3 && spec[0] == '-' && strchr("smhd", spec[n - 1]) != NULL) {
    int64_t v = 0;
    size_t i;
    for (i = 1; i < n - 1 && isdigit((unsigned char)spec[i]); i++) {
      if (v > INT64_MAX / 100 / 86400000) {
        return vh_vspec__err(errmsg, VH_EINVAL,
                             "bad version \"%s\": age too large", spec);
      }
      v = v * 10 + (spec[i] - '0');
    }
    if (i == n - 1) {
      static const int64_t unit[] = {1000, 60000, 3600000, 86400000};
      *t_ms = now_ms - v * unit[strchr("smhd", spec[n - 1]) - "smhd"];
      return 1;
    }
    return 0;
  }
  /* YYYY-MM-DD[T ]HH:MM[:SS[.mmm]][Z] */
  if (n >= 16 && isdigit((unsigned char)p[0]) && p[4] == '-') {
    int y = vh_vspec__digits(&p, 4), m, d;
    int64_t clock;
    if (y < 0 || *p++ != '-' || (m = vh_vspec__digits(&p, 2)) < 0 ||
        *p++ != '-' || (d = vh_vspec__digits(&p, 2)) < 0 ||
        (*p != 'T' && *p != 't' && *p != ' '))
      goto bad_iso;
    p++;
    clock = vh_vspec__clock(&p);
    if (clock == -1) goto bad_iso;
    if (*p == 'Z' || *p == 'z') p++;
    if (*p != '\0') goto bad_iso;
    if (clock < 0 || y < 1970 || m < 1 || m > 12 || d < 1 ||
        d > vh_vspec__mdays(y, m))
      return vh_vspec__err(errmsg, VH_EINVAL,
                           "bad version \"%s\": no such date or time", spec);
    *t_ms = vh_vspec__days(y, m, d) * VH_MS_DAY + clock;
    return 1;
  bad_iso:
    return vh_vspec__err(
        errmsg, VH_EINVAL,
        "bad version \"%s\": a time is written 2026-12-06T14:02:00Z", spec);
  }
  /* HH:MM[:SS]: today, UTC */
  if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) &&
      p[2] == ':') {
    int64_t clock = vh_vspec__clock(&p);
    if (clock == -1 || *p != '\0')
      return vh_vspec__err(
          errmsg, VH_EINVAL,
          "bad version \"%s\": a time of day is written 14:02 or 14:02:30",
          spec);
    if (clock < 0)
      return vh_vspec__err(errmsg, VH_EINVAL,
                           "bad version \"%s\": no such time of day", spec);
    int64_t day = now_ms >= 0 ? now_ms / VH_MS_DAY : 0;
    *t_ms = day * VH_MS_DAY + clock;
    return 1;
  }
  return 0;
}

/* A decimal u64 of the whole string s (no sign, no spaces): 1, else 0. */
static int vh_vspec__u64(const char *s, uint64_t *out) {
  uint64_t v = 0;
  if (*s == '\0') return 0;
  for (; *s; s++) {
    if (!isdigit((unsigned char)*s)) return 0;
    if (v > (UINT64_MAX - 9) / 10) return 0;
    v = v * 10 + (uint64_t)(*s - '0');
  }
  *out = v;
  return 1;
}

/* ---- choosing ---- */

enum { VH_VSPEC_SEQ, VH_VSPEC_BACK, VH_VSPEC_TIME };

/* The walk's state: what it looks for and what it saw. */
typedef struct vh_vspec_walk {
  int kind;        /* VH_VSPEC_* */
  uint64_t want;   /* SEQ: the seq; BACK: N */
  int64_t t_ms;    /* TIME: the moment */
  uint64_t oldest; /* the window's oldest seq */
  uint64_t seen;   /* window versions walked so far */
  int hit;         /* 1 once found is the answer */
  uint64_t found;  /* the answer */
  uint64_t first;  /* the newest version walked (0: none) */
  uint64_t last;   /* the oldest window version walked */
  int64_t last_t;  /* its time */
  uint64_t lowest; /* the oldest version walked (marks included) */
} vh_vspec_walk_t;

static int vh_vspec__step(void *arg, uint64_t seq, int64_t time_ms) {
  vh_vspec_walk_t *w = arg;
  if (w->first == 0) w->first = seq;
  w->lowest = seq;
  if (w->kind == VH_VSPEC_SEQ) {
    if (seq == w->want) {
      w->found = seq;
      w->hit = 1;
      return 1;
    }
    return seq < w->want; /* newest first: it cannot come later */
  }
  if (seq < w->oldest) return 0; /* a marked version below the window */
  w->last = seq;
  w->last_t = time_ms;
  if (w->kind == VH_VSPEC_BACK) {
    if (w->seen++ == w->want) {
      w->found = seq;
      w->hit = 1;
      return 1;
    }
    return 0;
  }
  if (time_ms <= w->t_ms) {
    w->found = seq;
    w->hit = 1;
    return 1;
  }
  return 0;
}

int vh_version_resolve_src(const vh_vspec_src_t *src, const char *spec,
                           int64_t now_ms, uint64_t *seq, char **errmsg) {
  vh_vspec_walk_t w;
  char *msg = NULL;
  char tb[VH_VERSION_TIME_LEN], ob[VH_VERSION_TIME_LEN];
  int rc;
  if (errmsg != NULL) *errmsg = NULL;
  memset(&w, 0, sizeof w);
  w.oldest = src->oldest;
  if (spec == NULL || *spec == '\0')
    return vh_vspec__err(errmsg, VH_EINVAL, "empty version");
  if (vh_vspec__u64(spec, &w.want)) {
    w.kind = VH_VSPEC_SEQ;
  } else if (spec[0] == '-' && vh_vspec__u64(spec + 1, &w.want)) {
    w.kind = VH_VSPEC_BACK;
  } else if ((rc = vh_version_parse_time(spec, now_ms, &w.t_ms, errmsg)) != 0) {
    if (rc < 0) return rc;
    w.kind = VH_VSPEC_TIME;
  } else {
    rc = src->mark(src->arg, spec, seq, &msg);
    if (rc == VH_ENOENT) {
      free(msg);
      return vh_vspec__err(errmsg, VH_ENOENT, "no mark named %s", spec);
    }
    if (rc < 0) {
      if (errmsg != NULL)
        *errmsg = msg;
      else
        free(msg);
    }
    return rc;
  }
  rc = src->each(src->arg, vh_vspec__step, &w, &msg);
  if (rc < 0) {
    if (errmsg != NULL)
      *errmsg = msg;
    else
      free(msg);
    return rc;
  }
  if (w.hit) {
    *seq = w.found;
    return 0;
  }
  if (w.first == 0)
    return vh_vspec__err(errmsg, VH_ENOENT,
                         "no version is retained yet (version %s)", spec);
  switch (w.kind) {
    case VH_VSPEC_SEQ:
      if (w.want > w.first)
        return vh_vspec__err(errmsg, VH_ENOENT,
                             "unknown version %s: newest is %" PRIu64, spec,
                             w.first);
      /* Walk on to find the oldest for the message. */
      w.kind = VH_VSPEC_BACK;
      w.want = UINT64_MAX;
      w.first = 0;
      if ((rc = src->each(src->arg, vh_vspec__step, &w, &msg)) < 0) {
        free(msg);
        return vh_vspec__err(errmsg, VH_ENOENT, "unknown version %s", spec);
      }
      return vh_vspec__err(errmsg, VH_ENOENT,
                           "unknown version %s: oldest retained is %" PRIu64
                           ", newest %" PRIu64,
                           spec, w.lowest, w.first);
    case VH_VSPEC_BACK:
      return vh_vspec__err(errmsg, VH_ENOENT,
                           "no version %s: only %" PRIu64
                           " retained (oldest is %" PRIu64 ")",
                           spec, w.seen, w.last);
    default:
      if (w.last != 0 && w.last_t == INT64_MAX)
        return vh_vspec__err(errmsg, VH_ENOENT,
                             "no version at or before %s: the store keeps "
                             "no version history (run the host with "
                             "--retain)",
                             vh_version_time_fmt(w.t_ms, tb));
      if (w.last == 0)
        return vh_vspec__err(errmsg, VH_ENOENT,
                             "no version at or before %s: only marked "
                             "versions are retained (name them by mark)",
                             vh_version_time_fmt(w.t_ms, tb));
      return vh_vspec__err(errmsg, VH_ENOENT,
                           "no version at or before %s: oldest retained is "
                           "%" PRIu64 " (%s)",
                           vh_version_time_fmt(w.t_ms, tb), w.last,
                           vh_version_time_fmt(w.last_t, ob));
  }
}

/* ---- the adapter over the store ---- */

/* The manifest as the only version: a store without version records
 * (written before versions existed, or not yet by this build) still
 * answers `N` (its seq) and `-0`. Its time is unknown, so times and
 * ages never match it. */
typedef struct vh_vspec_store {
  vh_store_t *s;
  uint64_t man_seq; /* the manifest's seq when there are no records */
  int records;      /* 1 when the store has version records */
} vh_vspec_store_t;

typedef struct vh_vspec_fwd {
  int (*fn)(void *fnarg, uint64_t seq, int64_t time_ms);
  void *fnarg;
} vh_vspec_fwd_t;

static int vh_vspec__fwd(void *arg, const vh_version_t *v) {
  vh_vspec_fwd_t *f = arg;
  return f->fn(f->fnarg, v->seq, v->time_ms);
}

static int vh_vspec__store_each(void *arg,
                                int (*fn)(void *fnarg, uint64_t seq,
                                          int64_t time_ms),
                                void *fnarg, char **errmsg) {
  vh_vspec_store_t *st = arg;
  if (st->records) {
    vh_vspec_fwd_t f = {fn, fnarg};
    return vh_store_versions_each(st->s, 1, vh_vspec__fwd, &f, errmsg);
  }
  if (st->man_seq == 0) return 0;
  return fn(fnarg, st->man_seq, INT64_MAX);
}

static int vh_vspec__store_mark(void *arg, const char *name, uint64_t *seq,
                                char **errmsg) {
  vh_vspec_store_t *st = arg;
  vh_mark_t *m = NULL;
  size_t n = 0;
  int rc = vh_store_marks(st->s, &m, &n, errmsg);
  if (rc < 0) return rc;
  rc = VH_ENOENT;
  for (size_t i = 0; i < n; i++)
    if (strcmp(m[i].name, name) == 0) {
      *seq = m[i].seq;
      rc = 0;
    }
  vh_marks_free(m, n);
  return rc;
}

int vh_version_resolve(vh_store_t *s, const char *spec, int64_t now_ms,
                       uint64_t *seq, char **errmsg) {
  vh_vspec_store_t st = {s, 0, 0};
  vh_vspec_src_t src = {&st, vh_vspec__store_each, vh_vspec__store_mark, 0};
  int rc;
  if (errmsg != NULL) *errmsg = NULL;
  vh_history_t h;
  if ((rc = vh_store_history(s, &h, errmsg)) < 0) return rc;
  st.records = h.newest != 0;
  src.oldest = h.oldest;
  if (!st.records) {
    void *bytes = NULL;
    size_t len = 0;
    vh_manifest_t m;
    char *msg = NULL;
    rc = vh_store_get_manifest(s, &bytes, &len, &msg);
    if (rc == 0) {
      rc = vh_manifest_decode(bytes, len, &m, &msg);
      free(bytes);
      if (rc == 0) {
        st.man_seq = m.seq;
        src.oldest = m.seq;
        vh_manifest_free(&m);
      }
    }
    if (rc < 0 && rc != VH_ENOENT) {
      if (errmsg != NULL)
        *errmsg = msg;
      else
        free(msg);
      return rc;
    }
    free(msg);
  }
  return vh_version_resolve_src(&src, spec, now_ms, seq, errmsg);
}

int vh_version_load(vh_store_t *s, const char *spec, int64_t now_ms,
                    uint64_t *seq, int64_t *time_ms, vh_manifest_t *m,
                    char **errmsg) {
  int rc;
  uint64_t direct;
  vh_version_t v;
  memset(m, 0, sizeof *m);
  if (errmsg != NULL) *errmsg = NULL;
  /* A seq: one point read of its record (no walk); when it is not there,
   * the resolver below writes the error line. */
  if (vh_vspec__u64(spec, &direct) &&
      vh_store_version_get(s, direct, &v, NULL) == 0) {
    *seq = direct;
    *m = v.m; /* moved out */
    memset(&v.m, 0, sizeof v.m);
    *time_ms = v.time_ms;
    vh_version_free(&v);
    return 0;
  }
  if ((rc = vh_version_resolve(s, spec, now_ms, seq, errmsg)) < 0) return rc;
  {
    vh_history_t h;
    if ((rc = vh_store_history(s, &h, errmsg)) < 0) return rc;
    if (h.newest != 0) {
      if ((rc = vh_store_version_get(s, *seq, &v, errmsg)) < 0) return rc;
      *m = v.m; /* moved out */
      memset(&v.m, 0, sizeof v.m);
      *time_ms = v.time_ms;
      vh_version_free(&v);
      return 0;
    }
  }
  /* No version records: the resolver answered the current manifest. */
  void *bytes = NULL;
  size_t len = 0;
  if ((rc = vh_store_get_manifest(s, &bytes, &len, errmsg)) < 0) return rc;
  rc = vh_manifest_decode(bytes, len, m, errmsg);
  free(bytes);
  if (rc < 0) return rc;
  if (m->seq != *seq) { /* moved between the two reads */
    vh_manifest_free(m);
    return vh_vspec__err(errmsg, VH_ENOENT, "unknown version %s", spec);
  }
  *time_ms = INT64_MIN;
  return 0;
}
