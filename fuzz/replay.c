/*
 * replay.c - a main() for the fuzz targets when they are built without
 * libFuzzer (any compiler): every argument is a file, or a directory whose
 * regular files are all run, in sorted order, through
 * LLVMFuzzerTestOneInput once. This is how ctest replays the saved corpus
 * (fuzz/corpus/<target>/) on every test run: an input that once crashed a
 * target stays a regression test. A crash or a failed check aborts with
 * the file's name printed first.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target (libFuzzer's hook): weak, so it may be absent. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static long vh_replay_count;

/* Run one file through the target. 0, or -1 if it cannot be read. */
static int vh_replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return -1;
  }
  size_t cap = 4096, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    unsigned char *nb = realloc(buf, cap * 2);
    if (!nb) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = nb;
    cap *= 2;
  }
  int bad = !buf || ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    fprintf(stderr, "replay: cannot read %s\n", path);
    return -1;
  }
  fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
  /* A copy of exactly n bytes: ASan sees a read past the input. */
  unsigned char *exact = malloc(n ? n : 1);
  if (!exact) {
    free(buf);
    return -1;
  }
  memcpy(exact, buf, n);
  free(buf);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  vh_replay_count++;
  return 0;
}

static int vh_replay_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int vh_replay_dir(const char *dir) {
  DIR *dp = opendir(dir);
  if (!dp) {
    fprintf(stderr, "replay: cannot read directory %s\n", dir);
    return -1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(dp)) != NULL) {
    if (de->d_name[0] == '.') continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, cap * sizeof *nn);
      if (!nn) {
        rc = -1;
        break;
      }
      names = nn;
    }
    size_t len = strlen(dir) + strlen(de->d_name) + 2;
    names[n] = malloc(len);
    if (!names[n]) {
      rc = -1;
      break;
    }
    snprintf(names[n], len, "%s/%s", dir, de->d_name);
    n++;
  }
  closedir(dp);
  if (rc == 0) qsort(names, n, sizeof *names, vh_replay_cmp);
  for (size_t i = 0; i < n && rc == 0; i++) {
    struct stat sb;
    if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode))
      rc = vh_replay_file(names[i]);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  return rc;
}

int main(int argc, char **argv) {
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
    return 2;
  }
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) != 0) {
      fprintf(stderr, "replay: cannot open %s\n", argv[i]);
      return 1;
    }
    int rc =
        S_ISDIR(sb.st_mode) ? vh_replay_dir(argv[i]) : vh_replay_file(argv[i]);
    if (rc != 0) return 1;
  }
  if (vh_replay_count == 0) {
    fprintf(stderr, "replay: no inputs found\n");
    return 1;
  }
  printf("replayed %ld inputs\n", vh_replay_count);
  return 0;
}
