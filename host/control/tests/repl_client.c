/* repl_client.c: a test-only `vedhost repl`. The real executable (main.c,
 * wired by the host) calls vh_repl_main the same way; this one lets the
 * control tests drive the client, through a pipe or a pseudo-terminal,
 * against a fake host before the real host exists. */
#include "vh_repl.h"

int main(int argc, char **argv) {
  return vh_repl_main(argc, argv);
}
