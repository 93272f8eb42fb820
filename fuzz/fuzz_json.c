/*
 * fuzz_json.c - the JSON decoder of HTTP request bodies and plugin calls
 * (host/abi/json.c, vh_json_decode), and the encoder of replies.
 *
 * Input: any bytes, taken as a request body. Checked: decoding never
 * crashes or leaks, it succeeds or refuses with a non-empty one-line
 * message; what it accepted encodes, and that JSON decodes again to a
 * value that encodes to the same bytes (encode . decode is idempotent
 * after one round: nothing is dropped or changed on the way back).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vh_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void vh_fuzz_fail(const char *what, const char *a, const char *b) {
  fprintf(stderr, "fuzz_json: %s\n  first:  %s\n  second: %s\n", what,
          a ? a : "", b ? b : "");
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 20)) return 0; /* the HTTP body limit */
  char err[512];
  vh_val_t v;
  err[0] = '\0';
  int rc = vh_json_decode((const char *)data, size, &v, err, sizeof err);
  if (rc == VH_ENOMEM) return 0;
  if (rc != 0) {
    if (rc != VH_JSON_EPARSE) vh_fuzz_fail("unexpected error code", err, "");
    if (!err[0] || strchr(err, '\n'))
      vh_fuzz_fail("refusal without a one-line message", err, "");
    return 0;
  }
  char *js1 = NULL, *js2 = NULL;
  size_t n1 = 0, n2 = 0;
  rc = vh_json_encode(v, &js1, &n1);
  vh_val_release(v);
  if (rc != 0) {
    free(js1);
    if (rc == VH_ENOMEM) return 0;
    vh_fuzz_fail("an accepted value does not encode", "", "");
  }
  vh_val_t w;
  rc = vh_json_decode(js1, n1, &w, err, sizeof err);
  if (rc == VH_ENOMEM) {
    free(js1);
    return 0;
  }
  if (rc != 0) vh_fuzz_fail("the encoder's output is refused", js1, err);
  rc = vh_json_encode(w, &js2, &n2);
  vh_val_release(w);
  if (rc == 0 && (n1 != n2 || memcmp(js1, js2, n1) != 0))
    vh_fuzz_fail("decode(encode(v)) changed the value", js1, js2);
  free(js1);
  free(js2);
  return 0;
}
