/* cmd_compare.c — `rlhf compare RUN_DIR... --prompts FILE --out DIR`: the output folders of any
 * trainers (or plain model folders) evaluated on the same held-out prompts with the same sampling
 * random numbers (rlhf/compare.h, each evaluation cached in OUT), then the demo's report
 * (tools/report.h). A run's family and seed are read from its folder (trainer_state.json, a demo
 * stage's stage.json), never from its name.
 *
 * Runs are named by their folder's last component, or NAME=DIR. When a name is given to several runs
 * (one per seed, e.g. the same method trained with --seed 1, 2, 3, or OUT/seed-*\/dpo-b0.1 of
 * `rlhf demo --seeds`), each seed is evaluated against its own reference (the --ref or sft run of the
 * same seed, or the only one) into OUT/seed-<S>/ with its own report, and OUT/report.md aggregates
 * the methods across seeds (report_seeds_build). */
#include "cli.h"
#include "commands.h"
#include "compare.h"
#include "demo.h"
#include "fileio.h"
#include "judge.h"
#include "report.h"
#include "reward.h"
#include "rl.h"
#include "rl_cli.h"
#include "rm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CMD "compare"
#define PATHN 4096

typedef struct {
    char name[128];
    char dir[PATHN];
    compare_run run;
    int is_ref;
} run_arg;

typedef struct {
    cli_progress bar;
    int open;
} ui;

static void on_event(void *ud, const stage_event *e)
{
    ui *u = ud;
    if (e->kind == STAGE_CACHED) fprintf(stderr, "%-12s cached evaluation (gold %s)\n", e->stage, e->text ? e->text : "");
    else if (e->kind == STAGE_PROGRESS) {
        if (!u->open) cli_progress_start(&u->bar, e->stage);
        u->open = 1;
        cli_progress_update(&u->bar, e->done, e->total, "");
    } else if (e->kind == STAGE_END) {
        if (!u->open) cli_progress_start(&u->bar, e->stage);
        cli_progress_done(&u->bar, e->text ? e->text : "");
        u->open = 0;
    }
}

/* NAME=DIR or DIR (named by its last component), opened */
static void open_run(const char *arg, run_arg *r)
{
    cli_name_dir(arg, r->name, sizeof r->name, r->dir, sizeof r->dir);
    char err[1024];
    if (compare_run_open(r->dir, &r->run, err, sizeof err)) cli_die(CMD, "%s", err);
}

/* the scorers: the measured reward (--reward, default the gold judge) and --rm's column */
typedef struct {
    reward_set rs;
    rm_model *rm;
    tok_tokenizer *t;
} scorers;

static void open_scorers(scorers *s, const cli_list *spec, const cli_list *w, const char *rmdir, const char *tokdir,
                         int threads, compare_opts *o)
{
    static const char *const judge_spec[] = {"judge"};
    char err[1024];
    double wv[REWARD_MAX];
    rl_cli_weights(CMD, w, wv);
    if (tok_load(tokdir, &s->t, err, sizeof err) ||
        reward_parse(&s->rs, spec->n ? spec->v : judge_spec, spec->n ? spec->n : 1, wv, w->n, err, sizeof err) ||
        rl_reward_open(&s->rs, s->t, tok_eot_id(s->t), REWARD_TIMEOUT_DEFAULT, threads, err, sizeof err))
        cli_die(CMD, "%s", err);
    /* the reward's id: its specs and weights, and the content of the files they name */
    json_t *id = json_array();
    for (int i = 0; i < s->rs.n; i++) {
        const reward_source *r = &s->rs.src[i];
        char lex[PATHN];
        json_t *files = NULL;
        if (r->kind == REWARD_RM) files = compare_folder_id(r->arg, NULL, err, sizeof err);
        else if (r->kind == REWARD_JUDGE) {
            const char *path = r->arg ? r->arg : judge_default_lexicon(lex, sizeof lex);
            const char *slash = strrchr(path, '/');
            char d[PATHN];
            snprintf(d, sizeof d, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
            const char *names[] = {slash ? slash + 1 : path, NULL};
            files = compare_folder_id(d, names, err, sizeof err);
        }
        if (r->kind != REWARD_CMD && !files) cli_die(CMD, "%s", err);
        json_array_append_new(id, json_pack("{s:s, s:f, s:o}", "source", r->name, "weight", (double)r->weight, "files",
                                            files ? files : json_null()));
    }
    o->gold = reward_scorer(&s->rs);
    o->gold_id = id;
    if (!rmdir) return;
    if (rm_load(rmdir, &s->rm, err, sizeof err) || !(o->score_id = compare_folder_id(rmdir, NULL, err, sizeof err)))
        cli_die(CMD, "%s", err);
    gpt2_set_threads(s->rm->m, threads);
    head_set_threads(s->rm->h, threads);
    o->score = rm_scorer(s->rm);
}

/* 1 when some name is given to more than one run (a method over several seeds) */
static int several_seeds(const run_arg *r, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(r[i].name, r[j].name) == 0) return 1;
    return 0;
}

/* the distinct seeds of the runs (not the references), in the order first seen */
static int seeds_of(const run_arg *r, int n, uint64_t *seeds)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (r[i].is_ref) continue;
        int j = 0;
        while (j < k && seeds[j] != r[i].run.seed) j++;
        if (j == k) seeds[k++] = r[i].run.seed;
    }
    return k;
}

/* evaluate and report one replicate: the reference for `seed` and the runs of that seed (all: every
 * run) into dir; runs/names for the report */
static void one_replicate(compare_opts o, const run_arg *r, int n, int all, uint64_t seed, const char *dir, report_run *rr,
                          int *nrr)
{
    compare_model *m = calloc((size_t)n + 1, sizeof *m);
    if (!m) cli_die(CMD, "out of memory");
    int nm = 0, nref = 0, ref = -1;
    for (int i = 0; i < n; i++) nref += r[i].is_ref;
    for (int i = 0; i < n && ref < 0; i++)
        if (r[i].is_ref && (nref == 1 || (r[i].run.has_seed && r[i].run.seed == seed))) ref = i;
    if (ref < 0) cli_die(CMD, "no reference for seed %llu: give --ref DIR for it (or a run of family sft with that seed)",
                         (unsigned long long)seed);
    m[nm++] = (compare_model){r[ref].name, r[ref].run.family, r[ref].run.model};
    rr[0] = (report_run){r[ref].name, r[ref].dir};
    for (int i = 0; i < n; i++) {
        if (r[i].is_ref || (!all && r[i].run.seed != seed)) continue;
        for (int j = 1; j < nm; j++)
            if (strcmp(m[j].name, r[i].name) == 0)
                cli_die(CMD, "two runs named '%s' for seed %llu: name them NAME=DIR", r[i].name, (unsigned long long)seed);
        rr[nm] = (report_run){r[i].name, r[i].dir};
        m[nm++] = (compare_model){r[i].name, r[i].run.family, r[i].run.model};
    }
    char ev[PATHN], err[1024], perr[512];
    snprintf(ev, sizeof ev, "%s/eval", dir);
    o.out = ev;
    o.models = m;
    o.n_models = nm;
    if (compare_evaluate(&o, err, sizeof err)) cli_die(CMD, "%s", err);
    report_input in = {dir, ev, NULL, rr, nm};
    if (report_build(&in, perr, sizeof perr, err, sizeof err)) cli_die(CMD, "report: %s", err);
    if (perr[0]) fprintf(stderr, "rlhf compare: some figures were not drawn: %s\n", perr);
    *nrr = nm;
    free(m);
}

/* several seeds: one replicate per seed in OUT/seed-<S>/, then the report across them */
static void across_seeds(const compare_opts *o, const run_arg *r, int n, const char *out)
{
    uint64_t *seeds = calloc((size_t)n + 1, sizeof *seeds);
    report_replicate *rep = calloc((size_t)n + 1, sizeof *rep);
    report_run *rr = calloc((size_t)(n + 1) * (size_t)(n + 1), sizeof *rr);
    char(*dirs)[PATHN] = calloc((size_t)n + 1, sizeof *dirs);
    char(*links)[64] = calloc((size_t)n + 1, sizeof *links);
    if (!seeds || !rep || !rr || !dirs || !links) cli_die(CMD, "out of memory");
    const int ns = seeds_of(r, n, seeds);
    for (int s = 0; s < ns; s++) {
        snprintf(links[s], sizeof links[s], "seed-%llu/report.md", (unsigned long long)seeds[s]);
        snprintf(dirs[s], PATHN, "%s/seed-%llu", out, (unsigned long long)seeds[s]);
        int nrr;
        one_replicate(*o, r, n, 0, seeds[s], dirs[s], rr + (size_t)s * (size_t)(n + 1), &nrr);
        rep[s] = (report_replicate){seeds[s], NULL, rr + (size_t)s * (size_t)(n + 1), nrr, links[s]};
    }
    char (*evs)[PATHN] = calloc((size_t)ns + 1, sizeof *evs), err[1024], perr[512];
    if (!evs) cli_die(CMD, "out of memory");
    for (int s = 0; s < ns; s++) rep[s].eval = fio_join(evs[s], PATHN, dirs[s], "eval");
    if (report_seeds_build(out, rep, ns, perr, sizeof perr, err, sizeof err)) cli_die(CMD, "report: %s", err);
    if (perr[0]) fprintf(stderr, "rlhf compare: some figures were not drawn: %s\n", perr);
    free(evs);
    free(seeds);
    free(rep);
    free(rr);
    free(dirs);
    free(links);
}

int cmd_compare(int argc, char **argv)
{
    cli_list runs = {0}, refs = {0}, rspec = {0}, rweights = {0};
    const char *out = NULL, *rmdir = NULL, *tokdir = NULL;
    compare_opts o = compare_defaults();
    o.collapse_ratio = DEMO_COLLAPSE_RATIO;
    cli_enum wts = {&o.weights, gpt2_weights_names};
    const cli_opt opts[] = {
        {"--prompts", OPT_STR, &o.prompts, "FILE", "held-out prompts ({\"prompt\"} JSONL)", 1},
        {"--out", OPT_STR, &out, "DIR", "report.md, report.json, figures/, and the evaluations (reused when rerun)", 1},
        {"--runs", OPT_MULTI, &runs, "DIR...", "more run folders (as the leading arguments): NAME=DIR names one", 0},
        {"--ref", OPT_MULTI, &refs, "DIR...", "the reference of gains and KL (default: the runs of family sft); one per seed", 0},
        {"--reward", OPT_MULTI, &rspec, "SPEC", "the measured reward: rm:DIR, judge[:LEXICON], 'cmd:PROGRAM ARGS' (default judge)", 0},
        {"--reward-weights", OPT_MULTI, &rweights, "W", "one weight per --reward source (default: all 1)", 0},
        {"--rm", OPT_STR, &rmdir, "DIR", "a reward model for the report's reward-model column", 0},
        {"--tokenizer", OPT_STR, &tokdir, "DIR", "tokenizer folder (default: the reference's folder)", 0},
        {"--n-prompts", OPT_INT, &o.n_prompts, "N", "the first N prompts of the file (0: all)", 0},
        {"--samples-per-prompt", OPT_INT, &o.samples_per_prompt, "K", "completions per prompt", 0},
        {"--max-prompt-len", OPT_INT, &o.max_prompt_len, "N", "prompt tokens kept, from the end", 0},
        {"--max-new-tokens", OPT_INT, &o.max_new_tokens, "N", "completion tokens at most", 0},
        {"--temperature", OPT_DOUBLE, &o.temperature, "T", "sampling temperature (the KL is taken at it)", 0},
        {"--batch", OPT_INT, &o.batch, "B", "sequences sampled together (it picks the random streams)", 0},
        {"--seed", OPT_U64, &o.seed, "S", "sampling seed, the same for every model (results.json's sampling_seed repeats a demo's)", 0},
        {"--hack-word", OPT_STR, &o.hack_word, "WORD", "report each model's share of completions containing WORD (a demo's: "
         "its eval/results.json's hack_word)", 0},
        {"--weights", OPT_ENUM, &wts, NULL, "decoding weights: auto (bf16 where the CPU has it), fp32 or bf16", 0},
        {"--threads", OPT_INT, &o.threads, "N", "decoding threads (the results do not depend on them)", 0},
        {0}};
    const int lead = cli_leading(argc, argv, &runs);
    cli_parse(CMD,
              "Evaluate the output folders of any trainers (sft, ppo, grpo, rloo, dpo, or model folders) on the same "
              "held-out prompts with the same sampling random numbers and write the demo's report; runs of several "
              "seeds (one NAME per method) are aggregated across seeds.",
              argc - lead, argv + lead, opts);
    if (runs.n == 0) cli_die(CMD, "no run folders (rlhf compare RUN_DIR... --prompts FILE --out DIR)");
    for (const char *c = o.hack_word; c && *c; c++)
        if (!(*c >= 'a' && *c <= 'z')) cli_die(CMD, "--hack-word '%s': lower-case letters only (a whole word)", o.hack_word);
    cli_threads(o.threads);
    const int n = (int)(runs.n + refs.n);
    run_arg *r = calloc((size_t)n, sizeof *r);
    if (!r) cli_die(CMD, "out of memory");
    for (size_t i = 0; i < refs.n; i++) open_run(refs.v[i], &r[i]), r[i].is_ref = 1;
    for (size_t i = 0; i < runs.n; i++) {
        run_arg *a = &r[refs.n + i];
        open_run(runs.v[i], a);
        a->is_ref = !refs.n && strcmp(a->run.family, "sft") == 0;
    }
    for (int i = 0; i < n; i++)
        fprintf(stderr, "%-12s %s (family %s%s, model %s)\n", r[i].name, r[i].dir, r[i].run.family,
                r[i].is_ref ? ", reference" : "", r[i].run.model);
    int nref = 0;
    for (int i = 0; i < n; i++) nref += r[i].is_ref;
    if (!nref) cli_die(CMD, "no reference: give --ref DIR (e.g. the SFT model) or a run of family sft");
    const run_arg *ref0 = NULL;
    for (int i = 0; i < n && !ref0; i++) ref0 = r[i].is_ref ? &r[i] : NULL;
    scorers sc = {0};
    open_scorers(&sc, &rspec, &rweights, rmdir, tokdir ? tokdir : ref0->run.model, o.threads, &o);
    o.tokenizer = tokdir;
    ui u = {0};
    o.on_event = on_event;
    o.ud = &u;
    if (several_seeds(r, n)) across_seeds(&o, r, n, out);
    else {
        report_run *rr = calloc((size_t)n + 1, sizeof *rr);
        int nrr;
        if (!rr) cli_die(CMD, "out of memory");
        if (nref > 1) cli_die(CMD, "%d references for runs of one seed: give one --ref (or one run of family sft)", nref);
        one_replicate(o, r, n, 1, ref0->run.seed, out, rr, &nrr);
        free(rr);
    }
    fprintf(stderr, "compare done -> %s/report.md (report.json, samples.jsonl, figures/)\n", out);
    for (int i = 0; i < n; i++) compare_run_free(&r[i].run);
    free(r);
    json_decref(o.gold_id);
    json_decref(o.score_id);
    reward_free(&sc.rs);
    rm_free(sc.rm);
    tok_free(sc.t);
    free(runs.v), free(refs.v), free(rspec.v), free(rweights.v);
    return 0;
}
