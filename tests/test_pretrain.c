/* test_pretrain.c — the training loop end to end on a tiny model: loss goes down, checkpoints are
 * written whole, an interrupted run resumed from its checkpoint ends bit for bit where an
 * uninterrupted run ends, the exported folder loads, bad inputs are refused with one line and
 * leave no checkpoint, and a NaN stops training with the step named. */
#include "checkpoint.h"
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "pretrain.h"
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char corpus_path[4200], tok_dir[4200], cfg_path[4200];

/* a small repetitive corpus (so a tiny model can learn it), a 300-id tokenizer, a 2-layer config */
static void fixtures(void)
{
    const char *d = tu_tmpdir("pretrain-fix");
    snprintf(corpus_path, sizeof corpus_path, "%s/corpus.txt", d);
    snprintf(tok_dir, sizeof tok_dir, "%s/tok", d);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", d);
    static const char *lines[] = {"the cat sat on the mat.\n", "a dog ran in the park.\n", "we like green tea.\n",
                                  "it rains in spring.\n"};
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap);
    for (int i = 0; n + 64 < cap; i++) {
        const char *l = lines[(i * 7 + i / 3) % 4];
        memcpy(text + n, l, strlen(l));
        n += strlen(l);
    }
    tu_write(corpus_path, text, n);
    tu_tiny_bpe(text, n, tok_dir);
    free(text);
    const char *cfg = "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 32, \"vocab_size\": 300, "
                      "\"n_positions\": 32}";
    tu_write(cfg_path, cfg, strlen(cfg));
}

static pretrain_opts opts(const char *out)
{
    pretrain_opts o = pretrain_defaults();
    static const char *files[1];
    files[0] = corpus_path;
    o.corpus = files;
    o.ncorpus = 1;
    o.tokenizer = tok_dir;
    o.config = cfg_path;
    o.run.out = out;
    o.run.batch = 4;
    o.seq = 16;
    o.run.accum = 2;
    o.run.steps = 12;
    o.optim.warmup = 3;
    o.optim.lr = 1e-2f;
    o.run.eval_every = 4;
    o.eval_batches = 2;
    o.run.ckpt_every = 4;
    o.run.threads = 1;
    return o;
}

static float *final_params(const char *out, size_t *n)
{
    char p[4300], err[512];
    snprintf(p, sizeof p, "%s/model", out);
    gpt2 *m;
    cr_assert(hf_load_gpt2(p, &m, err, sizeof err) == 0, "%s", err);
    *n = gpt2_num_params(m);
    float *v = malloc(*n * sizeof *v);
    memcpy(v, gpt2_params(m), *n * sizeof *v);
    gpt2_free(m);
    return v;
}

Test(pretrain, learns_checkpoints_and_resumes_bit_exactly, .timeout = 120)
{
    fixtures();
    char err[1024];
    /* A: straight through */
    const char *a = tu_tmpdir("pt-a");
    pretrain_opts oa = opts(a);
    long from = -1;
    cr_assert(pretrain_run(&oa, &from, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(from, 0);
    /* B: interrupted after step 6 (last checkpoint at 4), then resumed */
    const char *b = tu_tmpdir("pt-b");
    pretrain_opts ob = opts(b);
    ob.run.stop_at = 6;
    cr_assert(pretrain_run(&ob, &from, err, sizeof err) == 0, "%s", err);
    char *latest = tu_read(b, "latest", NULL);
    cr_assert(strncmp(latest, "step-00000004", 13) == 0, "latest is %s", latest);
    free(latest);
    /* without --resume an existing run is refused */
    ob.run.stop_at = 0;
    cr_assert(pretrain_run(&ob, &from, err, sizeof err) != 0);
    cr_assert(strstr(err, "--resume"), "%s", err);
    ob.run.resume = 1;
    cr_assert(pretrain_run(&ob, &from, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(from, 4);
    size_t na, nb;
    float *pa = final_params(a, &na), *pb = final_params(b, &nb);
    cr_assert_eq(na, nb);
    cr_assert(memcmp(pa, pb, na * sizeof *pa) == 0, "resumed run differs from the uninterrupted one");
    /* metrics: one line per step, the same losses in both runs (B's lines past step 4 were redone) */
    char *ma = tu_read(a, "metrics.jsonl", NULL), *mb = tu_read(b, "metrics.jsonl", NULL);
    cr_assert_eq(tu_lines(ma), 12);
    cr_assert_eq(tu_lines(mb), 12);
    const char *la = ma, *lb = mb;
    for (int i = 1; i <= 12; i++) {
        json_t *x = json_loads(la, JSON_DISABLE_EOF_CHECK, NULL), *y = json_loads(lb, JSON_DISABLE_EOF_CHECK, NULL);
        cr_assert(x && y, "metrics line %d is not JSON", i);
        cr_assert_eq(json_integer_value(json_object_get(x, "step")), i);
        static const char *keys[] = {"step", "loss", "learning_rate", "grad_norm", "eval_loss"};
        for (int k = 0; k < 5; k++)
            cr_assert(json_equal(json_object_get(x, keys[k]), json_object_get(y, keys[k])) ||
                          (!json_object_get(x, keys[k]) && !json_object_get(y, keys[k])),
                      "metrics line %d: %s differs after resuming", i, keys[k]);
        json_decref(x);
        json_decref(y);
        la = strchr(la, '\n') + 1;
        lb = strchr(lb, '\n') + 1;
    }
    /* the loss went down: first vs last line */
    json_t *j1 = json_loads(ma, JSON_DISABLE_EOF_CHECK, NULL);
    const char *last = ma + strlen(ma) - 2;
    while (last > ma && *last != '\n') last--;
    json_t *j2 = json_loads(last + 1, 0, NULL);
    cr_assert(j1 && j2);
    double l1 = json_real_value(json_object_get(j1, "loss")), l2 = json_real_value(json_object_get(j2, "loss"));
    cr_assert(l2 < 0.6 * l1, "loss %.3f -> %.3f: not learning", l1, l2);
    cr_assert(json_is_real(json_object_get(j2, "eval_loss")), "the last step has no eval_loss");
    json_decref(j1);
    json_decref(j2);
    /* only keep_last checkpoints remain */
    char p[4300];
    snprintf(p, sizeof p, "%s/step-00000004", a);
    cr_assert(!fio_exists(p), "old checkpoint not pruned");
    snprintf(p, sizeof p, "%s/step-00000012/optimizer.safetensors", a);
    cr_assert(fio_exists(p));
    free(ma);
    free(mb);
    free(pa);
    free(pb);
}

Test(pretrain, refuses_bad_input_and_stops_on_nan, .timeout = 60)
{
    fixtures();
    char err[1024];
    const char *out = tu_tmpdir("pt-bad");
    pretrain_opts o = opts(out);
    static const char *missing[] = {"/nonexistent/corpus.txt"};
    o.corpus = missing;
    cr_assert(pretrain_run(&o, NULL, err, sizeof err) != 0);
    cr_assert(strstr(err, "/nonexistent/corpus.txt") && !strchr(err, '\n'), "%s", err);
    o = opts(out);
    o.config = "huge-imaginary";
    cr_assert(pretrain_run(&o, NULL, err, sizeof err) != 0);
    cr_assert(strstr(err, "huge-imaginary"), "%s", err);
    o = opts(out);
    o.seq = 64; /* longer than n_positions 32 */
    cr_assert(pretrain_run(&o, NULL, err, sizeof err) != 0);
    cr_assert(strstr(err, "n_positions"), "%s", err);
    char p[4300];
    snprintf(p, sizeof p, "%s/latest", out);
    cr_assert(!fio_exists(p), "a failed run left a checkpoint");
    /* NaN: an absurd learning rate blows the model up; the step is named, no checkpoint is written */
    o = opts(out);
    o.optim.lr = 1e30f;
    o.optim.warmup = 0;
    o.optim.grad_clip = 0;
    o.run.ckpt_every = 1000;
    cr_assert(pretrain_run(&o, NULL, err, sizeof err) != 0, "training with lr 1e30 did not fail");
    cr_assert(strstr(err, "step ") && (strstr(err, "nan") || strstr(err, "inf")), "%s", err);
    cr_assert(!fio_exists(p), "a NaN run left a checkpoint");
}
