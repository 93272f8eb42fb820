/*
 * hello.c - the example native plugin: everything the plugin ABI offers,
 * in one small file (see host/abi/include/vedhost/plugin.h).
 *
 *   vedhost run --plugin build/plugins/hello.so=counter/ping script.lua
 *
 * - registers the Lua module "hello" for domain scripts:
 *     local hello = require "hello"
 *     hello.greet("ann")  --> "hello, ann"
 *     hello.count()       --> how many greetings this process made
 * - when a config "DOMAIN/EVENT" is given, sends that event once, from a
 *   libuv timer on the host's loop, with the JSON payload
 *   {"from":"hello","n":1}, and logs the handler's reply (which arrives
 *   once the slice is durable): "hello: DOMAIN/EVENT replied JSON";
 * - the config "fail" makes init fail (to show how a plugin refuses to
 *   start: one line, exit 1);
 * - closes its timer in the stop callback and logs "hello: stopped".
 *
 * All state is static: a plugin is loaded once per process.
 */
#include <stdio.h>
#include <string.h>

#include "lauxlib.h"
#include "vedhost/plugin.h"

VEDHOST_PLUGIN("hello");

static const vedhost_api_t *api; /* [borrowed] lives as long as the host */
static uv_timer_t timer;         /* the one-shot sender */
static int timer_open;
static char target[256]; /* "DOMAIN/EVENT" or "" */
static long greetings;

static int hello_greet(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  greetings++;
  lua_pushfstring(L, "hello, %s", name);
  return 1;
}

static int hello_count(lua_State *L) {
  lua_pushinteger(L, greetings);
  return 1;
}

static int hello_open(lua_State *L) {
  static const luaL_Reg fns[] = {
      {"greet", hello_greet}, {"count", hello_count}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}

static void hello_log(int level, const char *msg) {
  api->log(api->host, level, "hello", msg);
}

static void hello_on_reply(void *arg, int status, const char *json,
                           size_t len) {
  (void)arg;
  char line[1024];
  snprintf(line, sizeof line, "hello: %s %s %.*s", target,
           status == 0 ? "replied" : "failed:", (int)len, json);
  hello_log(status == 0 ? VEDHOST_LOG_INFO : VEDHOST_LOG_WARN, line);
}

static void hello_on_timer(uv_timer_t *t) {
  (void)t;
  char dom[128], *slash = strchr(target, '/');
  snprintf(dom, sizeof dom, "%.*s", (int)(slash - target), target);
  static const char payload[] = "{\"from\":\"hello\",\"n\":1}";
  char err[256];
  if (api->call(api->host, dom, slash + 1, payload, sizeof payload - 1,
                hello_on_reply, NULL, err, sizeof err) != 0) {
    char line[600];
    snprintf(line, sizeof line, "hello: cannot send %s: %s", target, err);
    hello_log(VEDHOST_LOG_WARN, line);
  }
}

static void hello_closed(uv_handle_t *h) {
  (void)h;
}

static void hello_stop(void *arg) {
  (void)arg;
  if (timer_open) uv_close((uv_handle_t *)&timer, hello_closed);
  timer_open = 0;
  hello_log(VEDHOST_LOG_INFO, "hello: stopped");
}

__attribute__((visibility("default"))) int vedhost_plugin_init(
    const vedhost_api_t *a, char *err, size_t cap) {
  if (a->abi_major != VEDHOST_PLUGIN_ABI_MAJOR) {
    snprintf(err, cap, "host ABI %u is not %d", a->abi_major,
             VEDHOST_PLUGIN_ABI_MAJOR);
    return -1;
  }
  api = a;
  const char *cfg = a->config ? a->config : "";
  if (strcmp(cfg, "fail") == 0) {
    snprintf(err, cap, "asked to fail by its config");
    return -1;
  }
  if (*cfg && (!strchr(cfg, '/') || strlen(cfg) >= sizeof target)) {
    snprintf(err, cap, "config must be DOMAIN/EVENT (got '%s')", cfg);
    return -1;
  }
  snprintf(target, sizeof target, "%s", cfg);
  if (a->register_module(a->host, "hello", hello_open) != 0) {
    snprintf(err, cap, "cannot register the module");
    return -1;
  }
  if (a->on_stop(a->host, hello_stop, NULL) != 0) {
    snprintf(err, cap, "out of memory");
    return -1;
  }
  if (*target) {
    uv_timer_init(a->loop(a->host), &timer);
    timer_open = 1;
    uv_timer_start(&timer, hello_on_timer, 0, 0);
  }
  return 0;
}
