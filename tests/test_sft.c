/* test_sft.c — rlhf/sft.h and `rlhf sft` on a tiny random GPT-2: the completion loss goes down on a
 * small prompt/completion set; prompt tokens are never trained on (changing the targets at prompt
 * and padding positions leaves the gradient bit for bit unchanged, changing one completion target
 * does not); held-out data of another kind is refused; text data trains through the CLI. Resume,
 * kill -9, NaN and bad training data: the trainer_contract suite (test_trainer_contract.c). */
#include "dataset.h"
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "sft.h"
#include "testutil.h"
#include "tok.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char tok_dir[4200], model_dir[4200], train_path[4200], text_path[4200];

/* animal -> sound: a mapping a 2-layer model memorises in a few dozen steps */
static const char *const pairs[][2] = {{"cat says", " meow"}, {"dog says", " woof"}, {"cow says", " moo"},
                                       {"owl says", " hoot"}, {"the cat says", " meow"}, {"a dog says", " woof"}};

static void fixtures(void)
{
    const char *d = tu_tmpdir("sft-fix");
    snprintf(tok_dir, sizeof tok_dir, "%s/tok", d);
    snprintf(model_dir, sizeof model_dir, "%s/model", d);
    snprintf(train_path, sizeof train_path, "%s/train.jsonl", d);
    snprintf(text_path, sizeof text_path, "%s/text.jsonl", d);
    char buf[4096], text[4096];
    size_t n = 0, nt = 0, np = sizeof pairs / sizeof *pairs;
    for (size_t i = 0; i < np; i++) {
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"prompt\": \"%s\", \"completion\": \"%s\"}\n", pairs[i][0],
                              pairs[i][1]);
        nt += (size_t)snprintf(text + nt, sizeof text - nt, "{\"text\": \"%s%s\"}\n", pairs[i][0], pairs[i][1]);
    }
    tu_write(train_path, buf, n);
    tu_write(text_path, text, nt);
    tu_tiny_bpe_and_model(text, nt, tok_dir, model_dir); /* a BPE trained on the data's words */
}

static sft_opts opts(const char *out)
{
    sft_opts o = sft_defaults();
    o.model = model_dir;
    o.tokenizer = tok_dir;
    o.data = train_path;
    o.eval_data = train_path;
    o.run.out = out;
    o.run.batch = 3;
    o.run.accum = 2;
    o.run.steps = 40;
    o.optim.warmup = 2;
    o.optim.lr = 1e-2f;
    o.optim.min_lr = 1e-3f;
    o.run.eval_every = 10;
    o.run.ckpt_every = 3;
    o.run.threads = 1;
    o.run.precision = TRAINER_PREC_FP32; /* the algorithm in fp32 (bf16: test_gpt2_bf16) */
    return o;
}

static void load_data(ds_dataset *d, tok_tokenizer **t, const char *path)
{
    char err[1024];
    cr_assert(tok_load(tok_dir, t, err, sizeof err) == 0, "%s", err);
    cr_assert(ds_load(d, *t, path, NULL, err, sizeof err) == 0, "%s", err);
}

static double eval_loss_of(const char *dir)
{
    char err[1024];
    gpt2 *m;
    cr_assert(hf_load_gpt2(dir, &m, err, sizeof err) == 0, "%s", err);
    tok_tokenizer *t;
    ds_dataset d;
    load_data(&d, &t, train_path);
    ds_batch b;
    cr_assert(ds_batch_create(&b, 4, d.max_row, err, sizeof err) == 0, "%s", err);
    double loss, acc;
    cr_assert(sft_evaluate(m, &d, &b, &loss, &acc, err, sizeof err) == 0, "%s", err);
    ds_batch_free(&b);
    ds_free(&d);
    tok_free(t);
    gpt2_free(m);
    return loss;
}

Test(sft, lowers_the_completion_loss, .timeout = 120)
{
    fixtures();
    char err[1024];
    const char *out = tu_tmpdir("sft-learn");
    sft_opts o = opts(out);
    o.run.ckpt_every = 0; /* the last step only */
    sft_result r;
    cr_assert(sft_run(&o, &r, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(r.kind, DS_PROMPT_COMPLETION);
    cr_assert_eq(r.n_train, 6);
    char final[4300];
    snprintf(final, sizeof final, "%s/model", out);
    double before = eval_loss_of(model_dir), after = eval_loss_of(final);
    cr_assert(after < 0.3 * before, "completion loss %.3f -> %.3f: not learning", before, after);
    cr_assert(fabs(after - r.eval_loss) < 1e-4 * before, "the run's last eval_loss %.5f is not its model's %.5f",
              r.eval_loss, after);
    /* the export carries the tokenizer; metrics use TRL's names, eval_* on eval steps only */
    snprintf(final, sizeof final, "%s/model/vocab.json", out);
    cr_assert(fio_exists(final));
    char *mt = tu_read(out, "metrics.jsonl", NULL);
    cr_assert_eq(tu_lines(mt), 40);
    const char *line = mt;
    for (int i = 1; i <= 40; i++) {
        json_t *j = json_loads(line, JSON_DISABLE_EOF_CHECK, NULL);
        cr_assert(j, "metrics line %d", i);
        static const char *keys[] = {"loss", "mean_token_accuracy", "learning_rate", "grad_norm", "num_tokens", "epoch"};
        for (int k = 0; k < 6; k++) cr_assert(json_is_number(json_object_get(j, keys[k])), "line %d lacks %s", i, keys[k]);
        int eval = i % 10 == 0;
        cr_assert_eq(json_object_get(j, "eval_loss") != NULL, eval, "line %d: eval_loss", i);
        cr_assert_eq(json_object_get(j, "eval_mean_token_accuracy") != NULL, eval, "line %d: eval accuracy", i);
        /* 6 examples per step over 6 examples: epoch = step */
        CLOSE(json_number_value(json_object_get(j, "epoch")), i, 1e-9);
        if (i == 40) cr_assert(json_number_value(json_object_get(j, "eval_mean_token_accuracy")) > 0.9);
        json_decref(j);
        line = strchr(line, '\n') + 1;
    }
    free(mt);
}

/* the gradient of one batch, into a fresh buffer */
static float *grad_of(gpt2 *m, const ds_batch *b)
{
    char err[1024];
    float *dlogp = malloc((size_t)b->B * b->T * sizeof *dlogp);
    sft_stats s;
    gpt2_zero_grad(m);
    cr_assert(sft_forward_backward(m, b, 0.1, dlogp, &s, err, sizeof err) == 0, "%s", err);
    free(dlogp);
    size_t n = gpt2_num_params(m);
    float *g = malloc(n * sizeof *g);
    memcpy(g, gpt2_grads(m), n * sizeof *g);
    return g;
}

Test(sft, never_trains_on_prompt_tokens)
{
    fixtures();
    char err[1024];
    gpt2 *m;
    cr_assert(hf_load_gpt2(model_dir, &m, err, sizeof err) == 0, "%s", err);
    gpt2_set_threads(m, 1);
    tok_tokenizer *t;
    ds_dataset d;
    load_data(&d, &t, train_path);
    ds_batch b;
    cr_assert(ds_batch_create(&b, 6, d.max_row, err, sizeof err) == 0, "%s", err);
    size_t idx[6] = {0, 1, 2, 3, 4, 5};
    cr_assert(ds_batch_fill(&d, idx, 6, &b, err, sizeof err) == 0, "%s", err);
    /* the mask: 0 on every prompt position and on padding */
    for (int r = 0; r < b.B; r++)
        for (int i = 0; i < b.T; i++)
            if (i + 1 < b.prompt_lengths[r] || i + 1 >= b.lengths[r])
                cr_assert_eq(b.loss_mask[(size_t)r * b.T + i], 0.0f, "row %d position %d is trained on", r, i);
    float *g0 = grad_of(m, &b);
    /* other targets wherever the mask is 0: the gradient must not move by one bit */
    const size_t N = (size_t)b.B * b.T, np = gpt2_num_params(m);
    int32_t *orig = malloc(N * sizeof *orig);
    memcpy(orig, b.targets, N * sizeof *orig);
    size_t changed = 0;
    for (size_t i = 0; i < N; i++)
        if (b.loss_mask[i] == 0.0f) {
            b.targets[i] = (b.targets[i] + 17) % 300;
            changed++;
        }
    cr_assert(changed > 20, "the batch has too few prompt positions to test");
    float *g1 = grad_of(m, &b);
    cr_assert(memcmp(g0, g1, np * sizeof *g0) == 0, "the gradient depends on prompt or padding targets");
    /* and one completion target does change it (the check above can fail) */
    memcpy(b.targets, orig, N * sizeof *orig);
    size_t k = 0;
    while (b.loss_mask[k] == 0.0f) k++;
    b.targets[k] = (b.targets[k] + 17) % 300;
    float *g2 = grad_of(m, &b);
    cr_assert(memcmp(g0, g2, np * sizeof *g0) != 0, "a completion target does not reach the gradient");
    free(g0);
    free(g1);
    free(g2);
    free(orig);
    ds_batch_free(&b);
    ds_free(&d);
    tok_free(t);
    gpt2_free(m);
}

/* the held-out file must be of the training data's kind (bad data, NaN, resume: trainer_contract) */
Test(sft, refuses_mismatched_eval_data, .timeout = 60)
{
    fixtures();
    char err[1024], p[4300];
    const char *out = tu_tmpdir("sft-bad");
    static const struct {
        const char *eval, *msg;
    } cases[] = {
        {"datasets/text.jsonl", "text.jsonl:1:1: this is a text dataset"},
        {"datasets/bad_empty_completion.jsonl", "bad_empty_completion.jsonl:2:1: field \"completion\" is empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sft_opts o = opts(out);
        o.eval_data = tu_data(cases[i].eval);
        cr_assert(sft_run(&o, NULL, err, sizeof err) != 0, "case %zu accepted", i);
        cr_assert(strstr(err, cases[i].msg) && !strchr(err, '\n'), "case %zu: %s", i, err);
        cr_assert(!fio_exists(fio_join(p, sizeof p, out, "latest")), "case %zu left a checkpoint", i);
        cr_assert(!fio_exists(fio_join(p, sizeof p, out, "metrics.jsonl")), "case %zu left metrics", i);
    }
}

Test(sft, cli_trains_on_text_data, .timeout = 60)
{
    fixtures();
    const char *out = tu_tmpdir("sft-cli");
    char args[16384], *so, *se;
    /* text data: the whole sequence is trained on */
    snprintf(args, sizeof args, "sft --model %s --tokenizer %s --data %s --out %s --steps 3 --batch 2 --lr 1e-3 --threads 1",
             model_dir, tok_dir, text_path, out);
    int st = tu_run(args, NULL, &so, &se);
    cr_assert_eq(st, 0, "%s", se);
    cr_assert(strstr(se, "3 steps (from the start) on 6 text examples"), "%s", se);
    char p[4300];
    snprintf(p, sizeof p, "%s/model/merges.txt", out);
    cr_assert(fio_exists(p));
    free(so);
    free(se);
}
