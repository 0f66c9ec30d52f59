/* checkpoint.c — atomic training checkpoints. See checkpoint.h. */
#include "checkpoint.h"

#include "fileio.h"
#include "hf.h"
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* write model + optimizer + state + extras into a fresh temporary folder under root */
static int write_folder(const char *tmp, const gpt2 *m, const adamw *opt, const char *state_json,
                        const ckpt_file *extra, size_t nextra, char *err, size_t errlen)
{
    char p[4096];
    if (hf_save_gpt2(m, tmp, err, errlen)) return -1;
    if (opt) {
        char step[32];
        snprintf(step, sizeof step, "%lld", (long long)opt->t);
        st_out t[2] = {{"exp_avg", ST_F32, 1, {(int64_t)opt->n}, opt->m},
                       {"exp_avg_sq", ST_F32, 1, {(int64_t)opt->n}, opt->v}};
        st_meta meta[] = {{"format", "rlhf.c-adamw"}, {"step", step}};
        if (st_write(fio_join(p, sizeof p, tmp, "optimizer.safetensors"), t, 2, meta, 2, err, errlen)) return -1;
    }
    if (state_json && fio_write_atomic(fio_join(p, sizeof p, tmp, "trainer_state.json"), state_json,
                                       strlen(state_json), err, errlen))
        return -1;
    for (size_t i = 0; i < nextra; i++)
        if (fio_write_atomic(fio_join(p, sizeof p, tmp, extra[i].name), extra[i].data, extra[i].len, err, errlen))
            return -1;
    return 0;
}

static int make_tmp(const char *root, const char *stem, char *tmp, size_t n, char *err, size_t errlen)
{
    if ((size_t)snprintf(tmp, n, "%s/.%s.tmp-XXXXXX", root, stem) >= n)
        return fio_fail(err, errlen, "%s: path too long", root);
    if (!mkdtemp(tmp)) return fio_fail(err, errlen, "%s: cannot create a temporary folder: %s", root, strerror(errno));
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* remove step-* folders older than the newest keep_last */
static void prune(const char *root, int keep_last)
{
    DIR *d = opendir(root);
    if (!d) return;
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "step-", 5) != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str); /* zero-padded steps sort in order */
    for (size_t i = 0; i + (size_t)keep_last < n; i++) {
        char p[4096];
        fio_remove_tree(fio_join(p, sizeof p, root, names[i]), NULL, 0);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

int ckpt_save(const char *root, long step, const gpt2 *m, const adamw *opt, const char *state_json,
              const ckpt_file *extra, size_t nextra, int keep_last, char *err, size_t errlen)
{
    if (fio_mkdirs(root, err, errlen)) return -1;
    char name[64], tmp[4096], dst[4096], p[4096];
    snprintf(name, sizeof name, "step-%08ld", step);
    if (make_tmp(root, name, tmp, sizeof tmp, err, errlen)) return -1;
    if (write_folder(tmp, m, opt, state_json, extra, nextra, err, errlen)) {
        fio_remove_tree(tmp, NULL, 0);
        return -1;
    }
    fio_join(dst, sizeof dst, root, name);
    fio_remove_tree(dst, NULL, 0); /* a half-finished earlier attempt at the same step (never named by latest) */
    if (rename(tmp, dst) != 0) {
        fio_fail(err, errlen, "%s: cannot rename checkpoint into place: %s", dst, strerror(errno));
        fio_remove_tree(tmp, NULL, 0);
        return -1;
    }
    char line[80];
    snprintf(line, sizeof line, "%s\n", name);
    if (fio_write_atomic(fio_join(p, sizeof p, root, "latest"), line, strlen(line), err, errlen)) return -1;
    if (keep_last > 0) prune(root, keep_last);
    return 0;
}

int ckpt_clean(const char *root, char *err, size_t errlen)
{
    DIR *d = opendir(root);
    if (!d) return 0; /* nothing written yet */
    struct dirent *e;
    char p[4096];
    int rc = 0;
    while (rc == 0 && (e = readdir(d)))
        if ((strncmp(e->d_name, ".step-", 6) == 0 || strncmp(e->d_name, ".export.tmp-", 12) == 0) &&
            strstr(e->d_name, ".tmp-"))
            rc = fio_remove_tree(fio_join(p, sizeof p, root, e->d_name), err, errlen);
    closedir(d);
    return rc;
}

/* the checkpoint folder named by the pointer file `file` (a one-line "step-N"), which sits in root */
static int read_pointer(const char *file, const char *root, char *dir, size_t dirlen, char *err, size_t errlen)
{
    size_t n;
    char *s = fio_read_all(file, &n, err, errlen);
    if (!s) return -1;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ')) s[--n] = 0;
    if (n == 0 || strlen(s) != n || strchr(s, '/') || strncmp(s, "step-", 5) != 0) {
        fio_fail(err, errlen, "%s: does not name a checkpoint folder", file);
        free(s);
        return -1;
    }
    fio_join(dir, dirlen, root, s);
    free(s);
    if (!fio_exists(dir)) return fio_fail(err, errlen, "%s: named by %s but missing", dir, file);
    return 0;
}

int ckpt_latest(const char *root, char *dir, size_t dirlen, char *err, size_t errlen)
{
    char p[4096];
    return read_pointer(fio_join(p, sizeof p, root, "latest"), root, dir, dirlen, err, errlen);
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* copy src into dir, or fail when it does not fit */
static int set_path(char *dir, size_t dirlen, const char *src, char *err, size_t errlen)
{
    if ((size_t)snprintf(dir, dirlen, "%s", src) >= dirlen) return fio_fail(err, errlen, "%s: path too long", src);
    return 0;
}

int ckpt_resolve(const char *path, char *dir, size_t dirlen, char *err, size_t errlen)
{
    char p[4096], root[4096];
    struct stat st;
    if (stat(path, &st) != 0) return fio_fail(err, errlen, "%s: %s", path, strerror(errno));
    if (S_ISREG(st.st_mode)) { /* a pointer file such as OUT/latest: the folder it names, beside it */
        if (set_path(root, sizeof root, path, err, errlen)) return -1;
        char *slash = strrchr(root, '/');
        if (slash) slash[slash == root] = 0; /* "/latest" -> "/" */
        else snprintf(root, sizeof root, ".");
        return read_pointer(path, root, dir, dirlen, err, errlen);
    }
    if (!S_ISDIR(st.st_mode)) return fio_fail(err, errlen, "%s: neither a folder nor a pointer file", path);
    if (fio_exists(fio_join(p, sizeof p, path, "config.json"))) return set_path(dir, dirlen, path, err, errlen);
    if (is_dir(fio_join(p, sizeof p, path, "model")) && fio_exists(fio_join(root, sizeof root, p, "config.json")))
        return set_path(dir, dirlen, p, err, errlen);
    if (fio_exists(fio_join(p, sizeof p, path, "latest"))) return ckpt_latest(path, dir, dirlen, err, errlen);
    return set_path(dir, dirlen, path, err, errlen); /* no model here: the loader names what it lacks */
}

int ckpt_load(const char *dir, gpt2 **mout, adamw *opt, char **state_json, char *err, size_t errlen)
{
    char p[4096];
    gpt2 *m;
    if (hf_load_gpt2(dir, &m, err, errlen)) return -1;
    if (opt) {
        st_file *f;
        if (st_open(fio_join(p, sizeof p, dir, "optimizer.safetensors"), &f, err, errlen)) goto fail_m;
        const st_tensor *a = st_find(f, "exp_avg"), *b = st_find(f, "exp_avg_sq");
        const char *step = st_metadata(f, "step");
        size_t np = gpt2_num_params(m);
        if (!a || !b || !step || a->numel != np || b->numel != np) {
            fio_fail(err, errlen, "%s: expected exp_avg and exp_avg_sq of %zu values and a step", p, np);
            st_close(f);
            goto fail_m;
        }
        if (!opt->m && adamw_create(opt, np)) {
            fio_fail(err, errlen, "%s: out of memory", p);
            st_close(f);
            goto fail_m;
        }
        if (opt->n != np) {
            fio_fail(err, errlen, "%s: optimizer holds %zu values, the model %zu", p, opt->n, np);
            st_close(f);
            goto fail_m;
        }
        char *end;
        long long t = strtoll(step, &end, 10);
        if (*end || t < 0 || st_read_f32(f, a, opt->m, np, err, errlen) || st_read_f32(f, b, opt->v, np, err, errlen)) {
            if (*end || t < 0) fio_fail(err, errlen, "%s: bad step '%s'", p, step);
            st_close(f);
            goto fail_m;
        }
        opt->t = t;
        st_close(f);
    }
    if (state_json) {
        size_t n;
        *state_json = fio_read_all(fio_join(p, sizeof p, dir, "trainer_state.json"), &n, err, errlen);
        if (!*state_json) goto fail_m;
    }
    *mout = m;
    return 0;
fail_m:
    gpt2_free(m);
    return -1;
}

int ckpt_export(const gpt2 *m, const char *dst, const ckpt_file *extra, size_t nextra, char *err, size_t errlen)
{
    char parent[4096], tmp[4096], old[4200];
    if ((size_t)snprintf(parent, sizeof parent, "%s", dst) >= sizeof parent) return fio_fail(err, errlen, "%s: path too long", dst);
    char *slash = strrchr(parent, '/');
    if (slash) *slash = 0;
    else snprintf(parent, sizeof parent, ".");
    if (fio_mkdirs(parent, err, errlen)) return -1;
    if (make_tmp(parent, "export", tmp, sizeof tmp, err, errlen)) return -1;
    if (write_folder(tmp, m, NULL, NULL, extra, nextra, err, errlen)) {
        fio_remove_tree(tmp, NULL, 0);
        return -1;
    }
    /* replace dst whole: move the old one aside, put the new one in place, drop the old */
    if ((size_t)snprintf(old, sizeof old, "%s.old", tmp) >= sizeof old) return fio_fail(err, errlen, "%s: path too long", dst);
    int had = fio_exists(dst) && rename(dst, old) == 0;
    if (rename(tmp, dst) != 0) {
        fio_fail(err, errlen, "%s: cannot rename into place: %s", dst, strerror(errno));
        if (had) rename(old, dst);
        fio_remove_tree(tmp, NULL, 0);
        return -1;
    }
    if (had) fio_remove_tree(old, NULL, 0);
    return 0;
}
