/* cmd_demo.c — `rlhf demo`: the main job (rlhf/demo.h) with a progress bar per stage, then the
 * report (tools/report.h). A rerun in the same folder skips the stages that are complete. */
#include "cli.h"
#include "commands.h"
#include "demo.h"
#include "kv.h"
#include "trainer.h"
#include "report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cli_progress bar;
    char label[64];
    int open;                    /* a bar is on screen */
} demo_ui;

static void fmt_secs(char *b, size_t n, double s)
{
    if (s < 60) snprintf(b, n, "%.1f s", s);
    else snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)s % 60);
}

static void on_event(void *ud, const stage_event *e)
{
    demo_ui *u = ud;
    char t[32], extra[640];
    switch (e->kind) {
    case STAGE_BEGIN:
    case STAGE_PROGRESS:
        /* the evaluation relabels its stage per model: a new label starts a new bar */
        if (!u->open || strcmp(u->label, e->stage) != 0) {
            if (u->open && e->kind == STAGE_PROGRESS) cli_progress_done(&u->bar, "");
            snprintf(u->label, sizeof u->label, "%s", e->stage);
            cli_progress_start(&u->bar, u->label);
            u->open = 1;
        }
        if (e->kind == STAGE_PROGRESS) {
            snprintf(extra, sizeof extra, " %s", e->text ? e->text : "");
            cli_progress_update(&u->bar, e->done, e->total, extra);
        }
        break;
    case STAGE_END:
        if (!u->open) {
            snprintf(u->label, sizeof u->label, "%s", e->stage);
            cli_progress_start(&u->bar, u->label);
        }
        snprintf(extra, sizeof extra, " %s", e->text ? e->text : "");
        cli_progress_done(&u->bar, extra);
        u->open = 0;
        break;
    case STAGE_CACHED:
        fmt_secs(t, sizeof t, e->seconds);
        fprintf(stderr, "%-10s cached (took %s) %s\n", e->stage, t, e->text ? e->text : "");
        break;
    }
}

/* --seeds S1,S2,...: the demo once per seed in out/seed-<S> (the seedless stages in out), each with
 * its report, then the report across seeds in out (tools/report.h) */
static void run_seeds(demo_opts *o, const char *out, const char *list)
{
    enum { MAX_SEEDS = 32 };
    unsigned long long seed[MAX_SEEDS];
    int n = 0;
    for (const char *s = list; *s;) {
        char *end;
        if (n == MAX_SEEDS || *s == '-') cli_die("demo", "--seeds '%s': at most %d seeds, separated by commas", list, MAX_SEEDS);
        seed[n] = strtoull(s, &end, 10);
        if (end == s || (*end && *end != ',')) cli_die("demo", "--seeds '%s': expected seeds separated by commas", list);
        for (int i = 0; i < n; i++)
            if (seed[i] == seed[n]) cli_die("demo", "--seeds '%s': seed %llu twice", list, seed[n]);
        n++;
        s = *end ? end + 1 : end;
    }
    if (n == 0) cli_die("demo", "--seeds: no seeds");
    char dirs[MAX_SEEDS][4096], links[MAX_SEEDS][64], evs[MAX_SEEDS][4200], err[1024], perr[512];
    report_runs runs[MAX_SEEDS];
    report_replicate rep[MAX_SEEDS];
    o->shared = out;
    for (int i = 0; i < n; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/seed-%llu", out, seed[i]);
        snprintf(links[i], sizeof links[i], "seed-%llu/report.md", seed[i]);
        snprintf(evs[i], sizeof evs[i], "%s/eval", dirs[i]);
        fprintf(stderr, "== seed %llu (%d of %d) -> %s\n", seed[i], i + 1, n, dirs[i]);
        o->seed = seed[i];
        o->out = dirs[i];
        if (demo_run(o, err, sizeof err)) cli_die("demo", "seed %llu: %s", seed[i], err);
        if (dp_rank(o->dp) != 0) continue; /* rank 0 writes the reports */
        if (report_write(dirs[i], perr, sizeof perr, err, sizeof err) || report_demo_runs(dirs[i], &runs[i], err, sizeof err))
            cli_die("demo", "seed %llu: report: %s", seed[i], err);
        rep[i] = (report_replicate){seed[i], evs[i], runs[i].v, runs[i].n, links[i]};
    }
    if (dp_rank(o->dp) != 0) return;
    if (report_seeds_build(out, rep, n, perr, sizeof perr, err, sizeof err)) cli_die("demo", "report across seeds: %s", err);
    if (perr[0]) fprintf(stderr, "rlhf demo: some figures were not drawn: %s\n", perr);
    for (int i = 0; i < n; i++) report_runs_free(&runs[i]);
}

int cmd_demo(int argc, char **argv)
{
    demo_opts o = demo_defaults();
    const char *out = "out/demo", *seeds = NULL;
    /* the sweeps' lists (demo_config_set names), each bound to an option below */
    static const char *const lists[][2] = {{"--ppo-kl", "ppo_kl"},     {"--ppo-target-kl", "ppo_target_kl"},
                                           {"--dpo-beta", "dpo_beta"}, {"--grpo-beta", "grpo_beta"},
                                           {"--rloo-beta", "rloo_beta"}};
    const char *list[5] = {0};
    int quick = 0;
    cli_enum prec = {&o.precision, trainer_precision_names}, wts = {&o.weights, gpt2_weights_names};
    cli_list set = {0};
    const cli_opt opts[] = {
        {"--out", OPT_STR, &out, "DIR", "demo folder: one subfolder per stage, report.md, report.json", 0},
        {"--seed", OPT_U64, &o.seed, "S", "seed of every random draw (same seed and threads: same report.json)", 0},
        {"--seeds", OPT_STR, &seeds, "S1,S2,...", "several seeds: each in DIR/seed-<S> (corpus and tokenizer shared), then a report across seeds", 0},
        {"--quick", OPT_FLAG, &quick, NULL, "a very small run (seconds): smoke tests", 0},
        {"--precision", OPT_ENUM, &prec, NULL, "the trainers' products: auto (bf16 where the CPU has it), fp32 or bf16", 0},
        {"--weights", OPT_ENUM, &wts, NULL, "decoding weights of the rollouts, pairs and evaluation: auto (bf16 where the CPU has it), fp32 or bf16", 0},
        {"--threads", OPT_INT, &o.threads, "N", "threads of the training stages (the decoding ones use one); part of each stage's settings", 0},
        {"--fortunes", OPT_STR, &o.fortunes, "DIR", "fortune files (default /usr/share/games/fortunes)", 0},
        {"--lexicon", OPT_STR, &o.lexicon, "FILE", "AFINN-165 as term<TAB>valence (default: tools/get_afinn.sh's)", 0},
        {"--model", OPT_STR, &o.model, "DIR", "your Hugging Face GPT-2 folder with its tokenizer (skips pretraining)", 0},
        {"--sft-data", OPT_STR, &o.sft_data, "FILE", "your SFT JSONL ({\"prompt\",\"completion\"} or {\"text\"})", 0},
        {"--prompts", OPT_STR, &o.prompts, "FILE", "your training prompts ({\"prompt\"} JSONL)", 0},
        {"--eval-prompts", OPT_STR, &o.eval_prompts, "FILE", "your held-out prompts ({\"prompt\"} JSONL)", 0},
        {"--prefs", OPT_STR, &o.prefs, "FILE", "your preference pairs ({\"prompt\",\"chosen\",\"rejected\"} JSONL)", 0},
        {"--eval-prefs", OPT_STR, &o.eval_prefs, "FILE", "your held-out preference pairs (default: --prefs)", 0},
        {"--ppo-kl", OPT_STR, &list[0], "B1,B2,...", "PPO fixed KL coefficients, one run each, or none (default: the preset's)", 0},
        {"--ppo-target-kl", OPT_STR, &list[1], "K1,K2,...", "PPO target KLs of the adaptive KL controller, one run each, or none", 0},
        {"--dpo-beta", OPT_STR, &list[2], "B1,B2,...", "DPO betas, one run each, or none", 0},
        {"--grpo-beta", OPT_STR, &list[3], "B1,B2,...", "GRPO betas (k3 KL in the loss), one run each, or none", 0},
        {"--rloo-beta", OPT_STR, &list[4], "B1,B2,...", "RLOO betas (KL in the reward), one run each, or none", 0},
        {"--set", OPT_MULTI, &set, "KEY=VALUE", "any field of demo_config in rlhf/demo.h, e.g. pt_steps=800 ppo_lr=1e-4", 0},
        {0}};
    cli_parse("demo",
              "The main job: pretrain a tiny GPT-2 on fortunes, SFT, preference pairs labelled by the AFINN-165 gold "
              "judge, a reward model, PPO, DPO, GRPO and RLOO sweeps, held-out evaluation and a report. Finished stages are "
              "reused when the command is run again.",
              argc, argv, opts);
    cli_model_path("demo", "--model", &o.model);
    if (quick) o.cfg = demo_config_quick();
    o.out = out;
    cli_threads(o.threads);
    char err[1024], perr[512];
    for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
        if (list[i] && demo_config_set(&o.cfg, lists[i][1], list[i], err, sizeof err)) cli_die("demo", "%s: %s", lists[i][0], err);
    for (size_t i = 0; i < set.n; i++) {
        char key[64];
        const char *eq = strchr(set.v[i], '=');
        if (!eq || eq == set.v[i] || (size_t)(eq - set.v[i]) >= sizeof key)
            cli_die("demo", "--set '%s': expected KEY=VALUE", set.v[i]);
        snprintf(key, sizeof key, "%.*s", (int)(eq - set.v[i]), set.v[i]);
        if (demo_config_set(&o.cfg, key, eq + 1, err, sizeof err)) cli_die("demo", "--set: %s", err);
    }
    free(set.v);
    demo_ui ui = {0};
    o.on_event = on_event;
    o.ud = &ui;
    o.dp = cli_dp();
    const double t0 = clk_now();
    if (seeds) run_seeds(&o, out, seeds);
    else if (demo_run(&o, err, sizeof err)) cli_die("demo", "%s", err);
    if (dp_rank(o.dp) != 0) return 0; /* rank 0 writes the reports */
    if (!seeds) {
        if (report_write(out, perr, sizeof perr, err, sizeof err)) cli_die("demo", "report: %s", err);
        if (perr[0]) fprintf(stderr, "rlhf demo: some figures were not drawn: %s\n", perr);
    }
    char t[32];
    fmt_secs(t, sizeof t, clk_now() - t0);
    fprintf(stderr, "demo done in %s -> %s/report.md (report.json, samples.jsonl, figures/)\n", t, out);
    return 0;
}
