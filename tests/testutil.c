/* testutil.c — see testutil.h. */
#include "testutil.h"

#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char pathbuf[8][4096];
static int pathi;

static char *next_buf(void)
{
    pathi = (pathi + 1) % 8;
    return pathbuf[pathi];
}

const char *tu_data(const char *rel)
{
    char *b = next_buf();
    snprintf(b, 4096, "%s/%s", RLHF_TEST_DATA, rel);
    return b;
}

const char *tu_gpt2(const char *layout)
{
    char *b = next_buf();
    const char *c = getenv("RLHF_CACHE");
    if (c && *c)
        snprintf(b, 4096, "%s/gpt2/%s", c, layout);
    else
        snprintf(b, 4096, "%s/.cache/rlhf.c/gpt2/%s", getenv("HOME") ? getenv("HOME") : "/root", layout);
    char f[4200];
    snprintf(f, sizeof f, "%s/%s", b, strcmp(layout, "openai") == 0 ? "encoder.json" : "vocab.json");
    cr_assert(fio_exists(f), "GPT-2 vocabulary missing at %s: run tools/get_gpt2_vocab.sh first", b);
    return b;
}

const char *tu_tmpdir(const char *tag)
{
    char *b = next_buf();
    static int counter;
    snprintf(b, 4096, "%s/tmp/%s-%d-%d", RLHF_BUILD_DIR, tag, (int)getpid(), counter++);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", b, b);
    cr_assert(system(cmd) == 0, "cannot make %s", b);
    return b;
}

void tu_write(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert(f, "cannot write %s", path);
    cr_assert(fwrite(data, 1, len, f) == len);
    fclose(f);
}

char *tu_read(const char *dir, const char *name, size_t *len)
{
    char p[8500], e[512];
    size_t n;
    if (name) fio_join(p, sizeof p, dir, name);
    else snprintf(p, sizeof p, "%s", dir);
    char *s = fio_read_all(p, &n, e, sizeof e);
    cr_assert(s, "%s", e);
    if (len) *len = n;
    return s;
}

int tu_run(const char *args, const char *in_path, char **out, char **err)
{
    const char *d = tu_tmpdir("run");
    char o[4200], e[4200], cmd[16384];
    snprintf(o, sizeof o, "%s/out", d);
    snprintf(e, sizeof e, "%s/err", d);
    snprintf(cmd, sizeof cmd, "'%s' %s < '%s' > '%s' 2> '%s'", RLHF_BIN, args, in_path ? in_path : "/dev/null", o, e);
    int st = system(cmd);
    *out = tu_read(o, NULL, NULL);
    *err = tu_read(e, NULL, NULL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

size_t tu_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

void tu_tiny_bpe(const char *text, size_t n, const char *tok_dir)
{
    tok_train_opts o = tok_train_defaults();
    o.vocab_size = 300;
    const char *texts[] = {text};
    size_t lens[] = {n};
    tok_tokenizer *t;
    char err[512];
    cr_assert(tok_train(texts, lens, 1, &o, &t, err, sizeof err) == 0, "%s", err);
    cr_assert(tok_save(t, tok_dir, err, sizeof err) == 0, "%s", err);
    tok_free(t);
}

void tu_tiny_bpe_and_model(const char *text, size_t n, const char *tok_dir, const char *model_dir)
{
    tu_tiny_bpe(text, n, tok_dir);
    char err[512];
    gpt2_config c = {2, 2, 32, 300, 32, 1e-5f};
    gpt2 *m;
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, 5);
    cr_assert(hf_save_gpt2(m, model_dir, err, sizeof err) == 0, "%s", err);
    gpt2_free(m);
}

void tu_nan_model(const char *src, const char *dst)
{
    char err[512];
    gpt2 *m;
    cr_assert(hf_load_gpt2(src, &m, err, sizeof err) == 0, "%s", err);
    gpt2_params(m)[gpt2_param_table(m)[GPT2_LNFB].offset] = NAN;
    cr_assert(hf_save_gpt2(m, dst, err, sizeof err) == 0, "%s", err);
    gpt2_free(m);
}

void tu_fixture_make(tu_fixture *f, const char *tag, const char *train, size_t ntrain, const char *eval, size_t neval)
{
    snprintf(f->dir, sizeof f->dir, "%s", tu_tmpdir(tag));
    fio_join(f->tok, sizeof f->tok, f->dir, "tok");
    fio_join(f->model, sizeof f->model, f->dir, "model");
    fio_join(f->train, sizeof f->train, f->dir, "train.jsonl");
    fio_join(f->eval, sizeof f->eval, f->dir, "eval.jsonl");
    tu_write(f->train, train, ntrain);
    tu_write(f->eval, eval, neval);
    tu_tiny_bpe_and_model(train, ntrain, f->tok, f->model);
}

void tu_same_file(const char *a, const char *b, const char *name)
{
    size_t na, nb;
    char *x = tu_read(a, name, &na), *y = tu_read(b, name, &nb);
    cr_assert(na == nb && memcmp(x, y, na) == 0, "%s differs between %s and %s", name, a, b);
    free(x);
    free(y);
}
