/* test_pretrain.c — pretraining (rlhf/pretrain.h) on a tiny model: the loss goes down, metrics carry
 * the pretraining names (tokens_per_s, num_tokens) with eval_loss when due, old checkpoints are
 * pruned, the exported folder loads, and a bad config or sequence length is refused with one line.
 * Resume, kill -9, NaN and bad data: the trainer_contract suite (test_trainer_contract.c). */
#include "checkpoint.h"
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "pretrain.h"
#include "testutil.h"
#include "tok.h"
#include "tu_float.h"

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
    o.run.precision = TRAINER_PREC_FP32; /* the algorithm in fp32 (bf16: test_gpt2_bf16) */
    return o;
}

Test(pretrain, learns_logs_and_keeps_the_last_checkpoints, .timeout = 120)
{
    fixtures();
    char err[1024];
    const char *a = tu_tmpdir("pt-a");
    pretrain_opts oa = opts(a);
    long from = -1;
    cr_assert(pretrain_run(&oa, &from, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(from, 0);
    /* metrics: one line per step with the pretraining names, eval_loss every eval_every steps */
    char *ma = tu_read(a, "metrics.jsonl", NULL);
    cr_assert_eq(tu_lines(ma), 12);
    const char *la = ma;
    for (int i = 1; i <= 12; i++) {
        json_t *x = json_loads(la, JSON_DISABLE_EOF_CHECK, NULL);
        cr_assert(x, "metrics line %d is not JSON", i);
        cr_assert_eq(json_integer_value(json_object_get(x, "step")), i);
        static const char *keys[] = {"loss", "tokens_per_s", "learning_rate", "grad_norm", "num_tokens", "epoch"};
        for (int k = 0; k < 6; k++) cr_assert(json_is_number(json_object_get(x, keys[k])), "line %d lacks %s", i, keys[k]);
        cr_assert_eq(json_object_get(x, "eval_loss") != NULL, i % 4 == 0, "line %d: eval_loss", i);
        /* 4 sequences x 2 micro-batches x 16 tokens per step */
        CLOSE(json_number_value(json_object_get(x, "num_tokens")), 128.0 * i, 0);
        json_decref(x);
        la = strchr(la, '\n') + 1;
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
    /* the export loads */
    gpt2 *m;
    snprintf(p, sizeof p, "%s/model", a);
    cr_assert(hf_load_gpt2(p, &m, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(gpt2_cfg(m)->n_layer, 2);
    gpt2_free(m);
    free(ma);
}

/* the pretraining options (bad data, NaN, resume: trainer_contract) */
Test(pretrain, refuses_a_bad_config_or_sequence_length, .timeout = 60)
{
    fixtures();
    char err[1024], p[4300];
    const char *out = tu_tmpdir("pt-bad");
    pretrain_opts o = opts(out);
    o.config = "huge-imaginary";
    cr_assert(pretrain_run(&o, NULL, err, sizeof err) != 0);
    cr_assert(strstr(err, "huge-imaginary") && !strchr(err, '\n'), "%s", err);
    o = opts(out);
    o.seq = 64; /* longer than n_positions 32 */
    cr_assert(pretrain_run(&o, NULL, err, sizeof err) != 0);
    cr_assert(strstr(err, "n_positions") && !strchr(err, '\n'), "%s", err);
    snprintf(p, sizeof p, "%s/latest", out);
    cr_assert(!fio_exists(p), "a failed run left a checkpoint");
    snprintf(p, sizeof p, "%s/metrics.jsonl", out);
    cr_assert(!fio_exists(p), "a failed run left metrics");
}
