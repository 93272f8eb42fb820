/*
 * vh_diff_text.h - values in the REPL's literal format for `vedhost diff`
 * and `vedhost changes` (host/admin/diff_text.c): scripts/pretty.lua in a
 * private lua_State, on one line, nothing elided.
 */
#ifndef VH_DIFF_TEXT_H
#define VH_DIFF_TEXT_H

#include "vh_bytes.h"
#include "vh_trie.h"

typedef struct vh_diff_text vh_diff_text_t;

/* *out [new] (vh_diff_text_close). 0, VH_ENOMEM, or VH_EINVAL with a
 * one-line message on stderr prefixed "vedhost: CMD: " (cmd [borrowed]). */
int vh_diff_text_open(const char *cmd, vh_diff_text_t **out);
/* Append v [borrowed] as a literal to out. 0, VH_ENOMEM, or VH_EINVAL (the
 * printer failed: a message was printed; a node that could not be read
 * leaves the trie's fault set). */
int vh_diff_text_value(vh_diff_text_t *p, vh_val_t v, vh_buf_t *out);
/* Append one change line body, `OP path`, then ` = new` for '+' or
 * `: old -> new` for '~' (nothing more for '-'): the format `vedhost diff`,
 * `changes`, `replay` and `rehearse` print. domain, path, old and new
 * [borrowed]. 0 or what vh_change_path_text / vh_diff_text_value return. */
int vh_diff_text_change(vh_diff_text_t *p, const char *domain, int op,
                        const vh_val_t *path, size_t depth, vh_val_t old,
                        vh_val_t new, vh_buf_t *out);
void vh_diff_text_close(vh_diff_text_t *p);

#endif /* VH_DIFF_TEXT_H */
