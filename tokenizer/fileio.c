/* fileio.c — whole-file reads and atomic (temp + rename) whole-file writes. See fileio.h. */
#include "fileio.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *fio_read_all(const char *path, size_t *len, char *err, size_t errlen)
{
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    if (!is_stdin) {
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "%s: is a directory, not a file", path);
            fclose(f);
            return NULL;
        }
        if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size + 1 > cap)
            cap = (size_t)st.st_size + 1;
    }
    char *buf = malloc(cap);
    if (!buf) {
        snprintf(err, errlen, "%s: out of memory", path);
        if (!is_stdin) fclose(f);
        return NULL;
    }
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap * 2;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                free(buf);
                if (!is_stdin) fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    if (!is_stdin) fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

int fio_write_atomic_v(const char *path, const fio_chunk *chunks, size_t n, char *err, size_t errlen)
{
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!tmp) return fio_fail(err, errlen, "%s: out of memory", path);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp.XXXXXX", 12);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fio_fail(err, errlen, "%s: cannot create temporary file: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    for (size_t c = 0; c < n; c++) {
        const char *p = chunks[c].data;
        size_t left = chunks[c].len;
        while (left > 0) {
            ssize_t w = write(fd, p, left > (1u << 30) ? (1u << 30) : left);
            if (w < 0) {
                if (errno == EINTR) continue;
                fio_fail(err, errlen, "%s: write failed: %s", path, strerror(errno));
                close(fd);
                unlink(tmp);
                free(tmp);
                return -1;
            }
            p += w;
            left -= (size_t)w;
        }
    }
    if (fsync(fd) != 0 || fchmod(fd, 0644) != 0) {
        fio_fail(err, errlen, "%s: cannot finish writing: %s", path, strerror(errno));
        close(fd);
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (close(fd) != 0) {
        fio_fail(err, errlen, "%s: cannot finish writing: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (rename(tmp, path) != 0) {
        fio_fail(err, errlen, "%s: cannot rename temporary file into place: %s", path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

int fio_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen)
{
    fio_chunk c = {data, len};
    return fio_write_atomic_v(path, &c, 1, err, errlen);
}

int fio_mkdirs(const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    char *p = malloc(n + 1);
    if (!p) {
        snprintf(err, errlen, "%s: out of memory", path);
        return -1;
    }
    memcpy(p, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "%s: cannot create directory: %s", p, strerror(errno));
                free(p);
                return -1;
            }
            p[i] = c;
        }
    }
    struct stat st;
    int ok = stat(path, &st) == 0 && S_ISDIR(st.st_mode);
    if (!ok) snprintf(err, errlen, "%s: not a directory", path);
    free(p);
    return ok ? 0 : -1;
}

char *fio_join(char *buf, size_t buflen, const char *dir, const char *name)
{
    size_t dl = strlen(dir);
    if (dl > 0 && dir[dl - 1] == '/')
        snprintf(buf, buflen, "%s%s", dir, name);
    else
        snprintf(buf, buflen, "%s/%s", dir, name);
    return buf;
}

int fio_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int fio_fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F) *p = '?';
    return -1;
}

const char *fio_show(const char *s, char *buf, size_t n)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < n; p++) {
        if (o > 80 && (*p & 0xC0) != 0x80) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (*p < 0x20 || *p == 0x7F || *p == '"' || *p == '\\')
            o += (size_t)snprintf(buf + o, n - o, "\\u%04x", *p);
        else
            buf[o++] = (char)*p;
    }
    buf[o] = 0;
    return buf;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int fio_remove_tree(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (lstat(path, &st) != 0) return 0;
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
        return fio_fail(err, errlen, "%s: cannot remove: %s", path, strerror(errno));
    return 0;
}
