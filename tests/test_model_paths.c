/* test_model_paths.c — model paths as users give them (ckpt_resolve, model/checkpoint.h): a model
 * folder, a checkpoint folder, a training run's output folder (its final model/, else the
 * checkpoint its latest names) and the latest pointer itself all load the intended weights, in the
 * library (hf_load_gpt2) and in the CLI (`rlhf sample`, which says which folder it used); paths
 * that name no model are one error line naming what is missing. */
#include "checkpoint.h"
#include "fileio.h"
#include "gpt2.h"
#include "hf.h"
#include "testutil.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ERRN 4200

/* A run folder as the trainers leave it: checkpoints step-1 and step-2 (different weights, each with
 * the tokenizer), latest naming step-2, and (with_model) the final model/ with a third set of
 * weights. The seeds tell the weights apart: step-1 seed 1, step-2 seed 2, model/ seed 3. */
typedef struct {
    char root[4096], tok[4200], out[4200], step1[4300], step2[4300];
} run_fixture;

static gpt2 *tiny(uint64_t seed)
{
    const gpt2_config c = {.n_layer = 1, .n_head = 2, .n_embd = 8, .vocab_size = 300, .n_positions = 16, .ln_eps = 1e-5f};
    gpt2 *m;
    char err[GPT2_ERR_LEN];
    cr_assert_eq(gpt2_create(&m, &c, err, sizeof err), 0, "%s", err);
    gpt2_init_random(m, seed);
    return m;
}

static void make_run(run_fixture *f, const char *tag, int with_model)
{
    snprintf(f->root, sizeof f->root, "%s", tu_tmpdir(tag));
    fio_join(f->tok, sizeof f->tok, f->root, "tok");
    fio_join(f->out, sizeof f->out, f->root, "out");
    static const char text[] = "the cat sat on the mat and the dog sat on the log; the end.";
    tu_tiny_bpe(text, sizeof text - 1, f->tok);
    size_t nv, nm;
    char *v = tu_read(f->tok, "vocab.json", &nv), *mg = tu_read(f->tok, "merges.txt", &nm);
    const ckpt_file extra[] = {{"vocab.json", v, nv}, {"merges.txt", mg, nm}};
    char err[ERRN], dst[4300];
    for (long step = 1; step <= 2; step++) {
        gpt2 *m = tiny((uint64_t)step);
        cr_assert_eq(ckpt_save(f->out, step, m, NULL, "{\"step\": 0, \"cursor\": 0}", extra, 2, 5, err, sizeof err), 0,
                     "%s", err);
        gpt2_free(m);
    }
    snprintf(f->step1, sizeof f->step1, "%s/step-%08d", f->out, 1);
    snprintf(f->step2, sizeof f->step2, "%s/step-%08d", f->out, 2);
    cr_assert(fio_exists(f->step1) && fio_exists(f->step2), "ckpt_save names its folders otherwise: %s", f->step2);
    if (with_model) {
        gpt2 *m = tiny(3);
        cr_assert_eq(ckpt_export(m, fio_join(dst, sizeof dst, f->out, "model"), extra, 2, err, sizeof err), 0, "%s", err);
        gpt2_free(m);
    }
    free(v);
    free(mg);
}

/* the seed (1, 2 or 3) whose weights path loads */
static int loaded_seed(const char *path)
{
    gpt2 *m;
    char err[ERRN];
    cr_assert_eq(hf_load_gpt2(path, &m, err, sizeof err), 0, "%s: %s", path, err);
    int found = 0;
    for (int s = 1; s <= 3 && !found; s++) {
        gpt2 *w = tiny((uint64_t)s);
        if (memcmp(gpt2_params(m), gpt2_params(w), gpt2_num_params(m) * sizeof(float)) == 0) found = s;
        gpt2_free(w);
    }
    gpt2_free(m);
    return found;
}

static void expect_resolve(const char *path, const char *want)
{
    char dir[4096], err[ERRN];
    cr_assert_eq(ckpt_resolve(path, dir, sizeof dir, err, sizeof err), 0, "%s: %s", path, err);
    cr_assert_str_eq(dir, want, "%s resolved to %s, expected %s", path, dir, want);
}

static void expect_refused(const char *path, const char *what)
{
    char dir[4096], err[ERRN];
    cr_assert_eq(ckpt_resolve(path, dir, sizeof dir, err, sizeof err), -1, "%s resolved to %s", path, dir);
    cr_assert(strstr(err, path) && strstr(err, what), "%s: error '%s' lacks '%s'", path, err, what);
    cr_assert(!strchr(err, '\n'), "more than one line: %s", err);
    gpt2 *m = (gpt2 *)err;
    cr_assert_eq(hf_load_gpt2(path, &m, err, sizeof err), -1);
    cr_assert_null(m);
}

Test(model_paths, run_folder_gives_its_final_model_then_its_latest_checkpoint)
{
    run_fixture f;
    make_run(&f, "paths-run", 1);
    char p[4300], q[4300];
    expect_resolve(f.out, fio_join(p, sizeof p, f.out, "model"));
    cr_assert_eq(loaded_seed(f.out), 3, "the run folder did not load its final model");
    /* the latest pointer and the checkpoint folders themselves */
    expect_resolve(fio_join(q, sizeof q, f.out, "latest"), f.step2);
    cr_assert_eq(loaded_seed(q), 2);
    expect_resolve(f.step1, f.step1);
    cr_assert_eq(loaded_seed(f.step1), 1);
    expect_resolve(fio_join(q, sizeof q, f.out, "model"), q);

    /* a run that was stopped before its end: no model/, its latest checkpoint */
    run_fixture g;
    make_run(&g, "paths-unfinished", 0);
    expect_resolve(g.out, g.step2);
    cr_assert_eq(loaded_seed(g.out), 2);
    /* a trailing slash works as well */
    snprintf(q, sizeof q, "%s/", g.out);
    cr_assert_eq(loaded_seed(q), 2);
}

Test(model_paths, paths_that_name_no_model_are_one_line_naming_them)
{
    run_fixture f;
    make_run(&f, "paths-bad", 0);
    char p[4300], err[ERRN];
    /* a folder that is no model and no run is itself: the loader names the file it lacks */
    expect_resolve(f.tok, f.tok);
    gpt2 *m;
    cr_assert_eq(hf_load_gpt2(f.tok, &m, err, sizeof err), -1);
    cr_assert(strstr(err, "tok/config.json") && !strchr(err, '\n'), "%s", err);
    expect_refused(fio_join(p, sizeof p, f.root, "nowhere"), "No such file");
    fio_join(p, sizeof p, f.out, "latest");
    cr_assert_eq(fio_write_atomic(p, "step-9\n", 7, err, sizeof err), 0, "%s", err);
    expect_refused(p, "missing");                       /* names a checkpoint that is gone */
    expect_refused(f.out, "missing");
    cr_assert_eq(fio_write_atomic(p, "../../etc\n", 10, err, sizeof err), 0, "%s", err);
    expect_refused(p, "does not name a checkpoint folder");
}

/* `rlhf sample` from each way of naming the run: the same text as from the folder itself, and a
 * line on stderr saying which folder was used */
static char *sample(const char *model, const char *want_used)
{
    char args[9000], *out, *err;
    snprintf(args, sizeof args, "sample --model %s --prompt 'the cat' --max-new-tokens 6 --seed 7 --threads 1", model);
    cr_assert_eq(tu_run(args, NULL, &out, &err), 0, "%s: %s", args, err);
    if (want_used) {
        char line[9000];
        snprintf(line, sizeof line, "rlhf sample: --model %s: using %s\n", model, want_used);
        cr_assert_str_eq(err, line, "stderr of %s", args);
    } else {
        cr_assert_str_eq(err, "", "stderr of %s", args);
    }
    free(err);
    return out;
}

Test(model_paths, cli_loads_a_run_folder_and_its_latest_and_says_which)
{
    run_fixture f;
    make_run(&f, "paths-cli", 1);
    char model[4300], latest[4300];
    const char *step2 = f.step2;
    fio_join(model, sizeof model, f.out, "model");
    fio_join(latest, sizeof latest, f.out, "latest");
    char *a = sample(model, NULL), *b = sample(f.out, model);
    cr_assert_str_eq(b, a, "the run folder sampled another model");
    char *c = sample(step2, NULL), *d = sample(latest, step2);
    cr_assert_str_eq(d, c, "the latest pointer sampled another model");
    cr_assert_str_neq(a, c, "the fixture's models sample the same text: the test could not tell them apart");
    free(a), free(b), free(c), free(d);

    char args[9000], *out, *err;
    snprintf(args, sizeof args, "sample --model %s --threads 1", f.tok);
    cr_assert_eq(tu_run(args, NULL, &out, &err), 1);
    cr_assert(strstr(err, "rlhf sample: ") && strstr(err, "tok/config.json") && tu_lines(err) == 1, "%s", err);
    free(out), free(err);
    snprintf(args, sizeof args, "sample --model %s/nowhere --threads 1", f.root);
    cr_assert_eq(tu_run(args, NULL, &out, &err), 1);
    cr_assert(strstr(err, "rlhf sample: --model ") && strstr(err, "nowhere: No such file") && tu_lines(err) == 1, "%s", err);
    free(out), free(err);
}
