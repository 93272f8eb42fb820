/*
 * vh_err.h - error codes shared by every persist/ module (and above).
 *
 * Functions return 0 on success and one of these negative codes on failure,
 * libuv style. vh_err_name() gives the symbolic name ("ECORRUPT").
 */
#ifndef VH_ERR_H
#define VH_ERR_H

#define VH_ENOMEM (-1)    /* an allocation failed; nothing changed */
#define VH_EKEY (-2)      /* nil or NaN key */
#define VH_ENOTFOUND (-3) /* vh_tab_next: the given key is not in the table */
#define VH_ERANGE (-4)    /* vh_tab_insert/remove: position out of range */
#define VH_EDEPTH (-5)    /* tables nested deeper than VH_MAX_DEPTH */
#define VH_EIO (-10)      /* RocksDB or the file system failed */
#define VH_ECORRUPT (-11) /* a checksum, a decode or an invariant check */
#define VH_EFORMAT (-12)  /* not a vedhost store, or a newer format */
#define VH_ELOCKED (-13)  /* another process has DIR/db open for writing */
#define VH_ENOENT (-14)   /* no store in DIR (no create asked); key absent */
#define VH_EINVAL (-15)   /* misuse: secondary submit, seq not increasing */

/* The symbolic name of an error code ("ENOMEM"), "EUNKNOWN" otherwise. */
static inline const char *vh_err_name(int err) {
  switch (err) {
    case VH_ENOMEM:
      return "ENOMEM";
    case VH_EKEY:
      return "EKEY";
    case VH_ENOTFOUND:
      return "ENOTFOUND";
    case VH_ERANGE:
      return "ERANGE";
    case VH_EDEPTH:
      return "EDEPTH";
    case VH_EIO:
      return "EIO";
    case VH_ECORRUPT:
      return "ECORRUPT";
    case VH_EFORMAT:
      return "EFORMAT";
    case VH_ELOCKED:
      return "ELOCKED";
    case VH_ENOENT:
      return "ENOENT";
    case VH_EINVAL:
      return "EINVAL";
    default:
      return "EUNKNOWN";
  }
}

#endif /* VH_ERR_H */
