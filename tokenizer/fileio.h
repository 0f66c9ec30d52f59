/* fileio.h — whole-file reads and atomic whole-file writes, shared by every module.
 *
 * Why here: the tokenizer is the bottom layer (it stands alone), so the few file helpers every
 * layer needs live beside it rather than being written again in model/ and data/. Writes go to a
 * temporary name in the target's folder and are renamed over the target, so a reader (or a crash)
 * never sees a half-written file.
 */
#ifndef RLHF_FILEIO_H
#define RLHF_FILEIO_H

#include <stddef.h>

/* Read a whole file into a fresh NUL-terminated buffer (*len excludes the NUL). "-" is stdin.
 * On failure returns NULL and writes "path: reason" into err. */
char *fio_read_all(const char *path, size_t *len, char *err, size_t errlen);

/* Atomically replace path with the given bytes. */
int fio_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);

/* The same for several pieces written back to back (no copy into one buffer). */
typedef struct {
    const void *data;
    size_t len;
} fio_chunk;
int fio_write_atomic_v(const char *path, const fio_chunk *chunks, size_t n, char *err, size_t errlen);

/* Create a directory and its parents (like mkdir -p). */
int fio_mkdirs(const char *path, char *err, size_t errlen);
/* rm -r: remove a file or a folder and everything under it (symlinks are removed, not followed);
 * a missing path is fine. */
int fio_remove_tree(const char *path, char *err, size_t errlen);

/* Join a folder and a file name into buf; returns buf. */
char *fio_join(char *buf, size_t buflen, const char *dir, const char *name);

int fio_exists(const char *path);

/* The library's error convention in one place: format one line into err and return -1. Control
 * characters (which could come from a file's bytes, e.g. quoted by a JSON parser) become '?', so a
 * message is always a single printable line. err may be NULL. */
int fio_fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A string taken from a file (a key, a tensor name), made fit to quote in a one-line message:
 * control characters, quotes and backslashes escaped as \u00XX, long strings cut with "..." (never
 * inside a UTF-8 sequence). Writes into buf and returns it. */
const char *fio_show(const char *s, char *buf, size_t n);

#endif
