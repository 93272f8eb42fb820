/*
 * vh_err.h - the one error space of vedhost: every internal error code of
 * persist/, bindings/ and host/, each listed once, with its name and text.
 *
 * Functions return 0 on success and one of these negative codes on failure,
 * libuv style. Each room owns a range, so no two codes share a value:
 *   -1 .. -19  persist (the trie, codecs, the store)
 *   -20 .. -29 bindings (vhl.h)
 *   -30 .. -39 the plugin loader (vh_plugin.h)
 *   -40 .. -49 JSON (vh_json.h)
 *   -50 .. -69 the host runtime (vh_host.h, vh_datadir.h)
 * Values are internal and may change; the public plugin ABI has its own,
 * fixed VEDHOST_E* codes (include/vedhost/plugin.h) and host/abi/plugin.c maps
 * these to those in one switch (vh_plugin_code). persist is the bottom
 * room, so the header lives here and every room above includes it.
 *
 * VH_ERR_LIST is the table: vh_err_name() gives the symbolic name
 * ("ECORRUPT"), vh_strerror() a short text; persist/tests/test_err.c checks
 * that every code is distinct and named. Add a code here, in its range.
 */
#ifndef VH_ERR_H
#define VH_ERR_H

/* persist */
#define VH_ENOMEM (-1)    /* an allocation failed; nothing changed */
#define VH_EKEY (-2)      /* nil or NaN key */
#define VH_ENOTFOUND (-3) /* vh_tab_next: the given key is not in the table */
#define VH_ERANGE (-4)    /* vh_tab_insert/remove: position out of range */
#define VH_EDEPTH (-5)    /* tables nested deeper than VH_MAX_DEPTH */
/* A node would have to be read while loads are off (vh_trie_noload). */
#define VH_ENOLOAD (-6)
#define VH_EIO (-10)      /* RocksDB or the file system failed */
#define VH_ECORRUPT (-11) /* a checksum, a decode or an invariant check */
#define VH_EFORMAT (-12)  /* not a vedhost store, or a newer format */
#define VH_ELOCKED (-13)  /* another process has DIR/db open for writing */
#define VH_ENOENT (-14)   /* no store in DIR (no create asked); key absent */
#define VH_EINVAL (-15)   /* misuse: secondary submit, seq not increasing */

/* bindings */
#define VHL_EBUSY (-20)     /* vhl_tx_begin: a transaction is already open */
#define VHL_EREADONLY (-21) /* vhl_tx_begin: the state is a snapshot */
/* The trie's write to a view of an old version (vh_tab_stub_view): the
 * same code as a snapshot's, "the state is read-only". */
#define VH_EREADONLY VHL_EREADONLY

/* plugin loader */
#define VH_PLUGIN_ELOAD (-30) /* dlopen, symbol, ABI or init failure */

/* JSON */
#define VH_JSON_EPARSE (-40) /* bad or unrepresentable JSON: see err */
#define VH_JSON_EIO (-41)    /* a node could not be read from the store */

/* host runtime */
#define VH_HOST_ELOAD (-50)       /* a script failed to load: see message */
#define VH_HOST_ENODOMAIN (-51)   /* no such domain, or it is gone */
#define VH_HOST_ESTATE (-52)      /* call not allowed in this phase */
#define VH_HOST_EDATADIR (-53)    /* data dir cannot be created or locked */
#define VH_HOST_ENOEVENT (-54)    /* the domain has no handler for the event */
#define VH_HOST_EREFUSED (-55)    /* the domain is refused (README) */
#define VH_HOST_EROLLBACK (-56)   /* the handler raised: rolled back */
#define VH_HOST_ESTOPPED (-57)    /* the host stopped before the call ran */
#define VH_HOST_ENOTDURABLE (-58) /* the slice was never made durable */
#define VH_DATADIR_EIO (-59)      /* data dir: cannot create / open */
#define VH_DATADIR_EBUSY (-60)    /* data dir: another process holds it */

/* The table: X(code, name, text), every code above exactly once. */
#define VH_ERR_LIST(X)                                                    \
  X(VH_ENOMEM, "ENOMEM", "out of memory")                                 \
  X(VH_EKEY, "EKEY", "nil or NaN key")                                    \
  X(VH_ENOTFOUND, "ENOTFOUND", "key not found")                           \
  X(VH_ERANGE, "ERANGE", "position out of range")                         \
  X(VH_EDEPTH, "EDEPTH", "tables nested too deep")                        \
  X(VH_ENOLOAD, "ENOLOAD", "a node is not in memory (loads are off)")     \
  X(VH_EIO, "EIO", "input/output error")                                  \
  X(VH_ECORRUPT, "ECORRUPT", "corrupt data")                              \
  X(VH_EFORMAT, "EFORMAT", "not a vedhost store, or a newer format")      \
  X(VH_ELOCKED, "ELOCKED", "the store is locked by another process")      \
  X(VH_ENOENT, "ENOENT", "no such store or key")                          \
  X(VH_EINVAL, "EINVAL", "invalid argument")                              \
  X(VHL_EBUSY, "EBUSY", "a transaction is already open")                  \
  X(VHL_EREADONLY, "EREADONLY", "the state is read-only")                 \
  X(VH_PLUGIN_ELOAD, "EPLUGINLOAD", "a plugin failed to load")            \
  X(VH_JSON_EPARSE, "EJSON", "bad or unrepresentable JSON")               \
  X(VH_JSON_EIO, "EJSONIO", "a value could not be read from the store")   \
  X(VH_HOST_ELOAD, "ELOAD", "a script failed to load")                    \
  X(VH_HOST_ENODOMAIN, "ENODOMAIN", "no such domain")                     \
  X(VH_HOST_ESTATE, "ESTATE", "not allowed in this phase")                \
  X(VH_HOST_EDATADIR, "EDATADIR", "the data dir cannot be used")          \
  X(VH_HOST_ENOEVENT, "ENOEVENT", "no handler for the event")             \
  X(VH_HOST_EREFUSED, "EREFUSED", "the domain is refused")                \
  X(VH_HOST_EROLLBACK, "EROLLBACK", "the handler failed; rolled back")    \
  X(VH_HOST_ESTOPPED, "ESTOPPED", "vedhost stopped")                      \
  X(VH_HOST_ENOTDURABLE, "ENOTDURABLE", "the slice was not made durable") \
  X(VH_DATADIR_EIO, "EDATADIRIO", "the data dir cannot be created")       \
  X(VH_DATADIR_EBUSY, "EDATADIRBUSY", "the data dir is in use")

/* The symbolic name of an error code ("ENOMEM"), "EUNKNOWN" otherwise. */
static inline const char *vh_err_name(int err) {
#define VH_ERR__NAME(c, n, t) \
  case c:                     \
    return n;
  switch (err) {
    VH_ERR_LIST(VH_ERR__NAME)
    default:
      return "EUNKNOWN";
  }
#undef VH_ERR__NAME
}

/* A short text for an error code ("out of memory"), "unknown error"
 * otherwise. [borrowed, static] */
static inline const char *vh_strerror(int err) {
#define VH_ERR__TEXT(c, n, t) \
  case c:                     \
    return t;
  switch (err) {
    VH_ERR_LIST(VH_ERR__TEXT)
    default:
      return "unknown error";
  }
#undef VH_ERR__TEXT
}

#endif /* VH_ERR_H */
