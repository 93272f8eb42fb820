/*
 * diff_text.c - the literal printer of `vedhost diff` / `vedhost changes`
 * (vh_diff_text.h): a private lua_State with the proxy-aware globals and
 * scripts/pretty.lua (as inspect.c has), where each value is copied into a
 * plain Lua value (vhl_pushvalue) and printed by pretty.format with no
 * width, item or depth limit, so every line holds a whole literal.
 */
#include "vh_diff_text.h"

#include <stdio.h>
#include <stdlib.h>

#include "host_int.h"
#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"
#include "vh_changes.h"
#include "vhl.h"

struct vh_diff_text {
  lua_State *L;    /* [owned] */
  const char *cmd; /* [borrowed] for messages */
};

static int vh_diff_text__init(lua_State *L) {
  luaL_openlibs(L);
  lua_pushglobaltable(L);
  vhl_open_compat(L, lua_gettop(L));
  lua_pop(L, 1);
  vh_host__push_pretty(L);
  lua_setfield(L, LUA_REGISTRYINDEX, "vh.diff.pretty");
  return 0;
}

int vh_diff_text_open(const char *cmd, vh_diff_text_t **out) {
  vh_diff_text_t *p = calloc(1, sizeof *p);
  *out = NULL;
  if (p == NULL) return VH_ENOMEM;
  p->cmd = cmd;
  p->L = luaL_newstate();
  if (p->L == NULL) {
    free(p);
    return VH_ENOMEM;
  }
  lua_pushcfunction(p->L, vh_diff_text__init);
  if (lua_pcall(p->L, 0, 0, 0) != 0) {
    fprintf(stderr, "vedhost: %s: %s\n", cmd, lua_tostring(p->L, -1));
    vh_diff_text_close(p);
    return VH_EINVAL;
  }
  *out = p;
  return 0;
}

int vh_diff_text_change(vh_diff_text_t *p, const char *domain, int op,
                        const vh_val_t *path, size_t depth, vh_val_t old,
                        vh_val_t new, vh_buf_t *out) {
  char head[3] = {(char)op, ' ', 0};
  int r = vh_buf_put(out, head, 2);
  if (r == 0) r = vh_change_path_text(domain, path, depth, out);
  if (r == 0 && op == '+') {
    r = vh_buf_put(out, " = ", 3);
    if (r == 0) r = vh_diff_text_value(p, new, out);
  } else if (r == 0 && op == '~') {
    r = vh_buf_put(out, ": ", 2);
    if (r == 0) r = vh_diff_text_value(p, old, out);
    if (r == 0) r = vh_buf_put(out, " -> ", 4);
    if (r == 0) r = vh_diff_text_value(p, new, out);
  }
  return r;
}

void vh_diff_text_close(vh_diff_text_t *p) {
  if (p == NULL) return;
  if (p->L) lua_close(p->L);
  free(p);
}

/* Protected: push pretty.format(value) for the light userdata vh_val_t. */
static int vh_diff_text__fmt(lua_State *L) {
  const vh_val_t *v = lua_touserdata(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "vh.diff.pretty");
  lua_getfield(L, -1, "format");
  vhl_pushvalue(L, *v);
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, LUA_MAXINTEGER / 2);
  lua_setfield(L, -2, "width");
  lua_pushinteger(L, LUA_MAXINTEGER / 2);
  lua_setfield(L, -2, "max_items");
  lua_pushinteger(L, 1000000);
  lua_setfield(L, -2, "max_depth");
  lua_call(L, 2, 1);
  return 1;
}

int vh_diff_text_value(vh_diff_text_t *p, vh_val_t v, vh_buf_t *out) {
  lua_State *L = p->L;
  lua_pushcfunction(L, vh_diff_text__fmt);
  lua_pushlightuserdata(L, &v);
  if (lua_pcall(L, 1, 1, 0) != 0) {
    fprintf(stderr, "vedhost: %s: %s\n", p->cmd, lua_tostring(L, -1));
    lua_pop(L, 1);
    return VH_EINVAL;
  }
  size_t n;
  const char *s = lua_tolstring(L, -1, &n);
  int r = vh_buf_put(out, s, n);
  lua_pop(L, 1);
  return r;
}
