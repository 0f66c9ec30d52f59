/* test_trainer_contract.c — what the one training loop (rlhf/trainer.h) promises, checked for every
 * trainer through its command line (`rlhf pretrain|sft|rm|dpo|ppo`, run by tu_run), from one table:
 *
 *   - resume is bit-exact: a run left at --stop-at K (after its checkpoint at an earlier step) and
 *     continued with --resume ends with the same files as an uninterrupted run — every file of the
 *     exported model/ and of the checkpoints kept (model, optimizer moments, trainer state and each
 *     trainer's own files: the reward model's head, DPO's cached reference log-probs, PPO's value
 *     head and ppo_state.json) — and the same metrics.jsonl: the lines past the checkpoint (and a
 *     stray line {"step": 99}) are dropped on resume, so no step is logged twice;
 *   - the same after kill -9: a run killed once its first checkpoint exists, then resumed;
 *   - an existing run is refused without --resume ("already holds a checkpoint"), and left as it was;
 *   - a NaN stops the run with one error line naming the step, leaving no checkpoint and no model;
 *   - bad data (the wrong kind, malformed, empty) and bad settings are refused with exit status 1
 *     and one line "rlhf <cmd>: ..." before anything is written: --out is not even created.
 *
 * Each trainer's own algorithm (losses, gradients, synthetic optima, metric names) is tested in its
 * own file. Tiny models (2 layers, 32 wide, 300 ids), a few steps, one thread. */
#include "fileio.h"
#include "gpt2.h"
#include "head.h"
#include "rm.h"
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- the fixture: one tokenizer and model, a dataset of every kind, a reward model -------------- */

enum { D_CORPUS, D_SFT, D_PREFS, D_PROMPTS, D_BAD_JSON, D_EMPTY, D_MISSING, ND };

typedef struct {
    char dir[4096], tok[4200], model[4200], nan_model[4200], rm[4200], config[4200];
    char data[ND][4200];
} contract_fx;

static contract_fx fx;

static const char *const animals[][3] = {{"the cat says", " meow", " woof"}, {"a dog says", " woof", " moo"},
                                         {"the cow says", " moo", " hoot"},  {"an owl says", " hoot", " meow"},
                                         {"a cat says", " meow", " moo"},    {"the dog says", " woof", " hoot"}};
enum { NANIMALS = sizeof animals / sizeof *animals };

static void fixture(void)
{
    snprintf(fx.dir, sizeof fx.dir, "%s", tu_tmpdir("contract-fix"));
    static char text[8192], sft[4096], prefs[4096], prompts[1024];
    size_t nt = 0, ns = 0, np = 0, nq = 0;
    for (int i = 0; nt + 64 < sizeof text; i++) { /* a repetitive corpus a tiny model can learn */
        const char *const *a = animals[(i * 5 + i / 3) % NANIMALS];
        nt += (size_t)snprintf(text + nt, sizeof text - nt, "%s%s.\n", a[0], a[1]);
    }
    for (int i = 0; i < NANIMALS; i++) {
        const char *const *a = animals[i];
        ns += (size_t)snprintf(sft + ns, sizeof sft - ns, "{\"prompt\": \"%s\", \"completion\": \"%s\"}\n", a[0], a[1]);
        np += (size_t)snprintf(prefs + np, sizeof prefs - np, "{\"prompt\": \"%s\", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n",
                               a[0], a[1], a[2]);
        if (i < 4) nq += (size_t)snprintf(prompts + nq, sizeof prompts - nq, "{\"prompt\": \"%s\"}\n", a[0]);
    }
    static const char *const names[ND] = {"corpus.txt", "sft.jsonl",   "prefs.jsonl",  "prompts.jsonl",
                                          "bad.jsonl",  "empty.jsonl", "missing.jsonl"};
    for (int k = 0; k < ND; k++) fio_join(fx.data[k], sizeof fx.data[k], fx.dir, names[k]);
    tu_write(fx.data[D_CORPUS], text, nt);
    tu_write(fx.data[D_SFT], sft, ns);
    tu_write(fx.data[D_PREFS], prefs, np);
    tu_write(fx.data[D_PROMPTS], prompts, nq);
    static const char bad[] = "{\"prompt\": \"the cat says\", \"completion\"\n"; /* not JSON */
    tu_write(fx.data[D_BAD_JSON], bad, sizeof bad - 1);
    tu_write(fx.data[D_EMPTY], "", 0);
    fio_join(fx.tok, sizeof fx.tok, fx.dir, "tok");
    fio_join(fx.model, sizeof fx.model, fx.dir, "model");
    fio_join(fx.nan_model, sizeof fx.nan_model, fx.dir, "nan-model");
    fio_join(fx.rm, sizeof fx.rm, fx.dir, "rm");
    fio_join(fx.config, sizeof fx.config, fx.dir, "config.json");
    tu_tiny_bpe_and_model(text, nt, fx.tok, fx.model);
    tu_nan_model(fx.model, fx.nan_model);
    static const char cfg[] = "{\"model_type\": \"gpt2\", \"n_layer\": 2, \"n_head\": 2, \"n_embd\": 32, "
                              "\"vocab_size\": 300, \"n_positions\": 32}";
    tu_write(fx.config, cfg, sizeof cfg - 1);
    /* PPO's reward model: another random trunk with a scalar head, padding at <|endoftext|> */
    char err[512];
    tok_tokenizer *t;
    cr_assert(tok_load(fx.tok, &t, err, sizeof err) == 0, "%s", err);
    const int32_t eos = tok_eot_id(t);
    tok_free(t);
    gpt2_config c = {2, 2, 32, 300, 32, 1e-5f};
    gpt2 *m;
    head *h;
    rm_model *r;
    cr_assert(gpt2_create(&m, &c, err, sizeof err) == 0, "%s", err);
    gpt2_init_random(m, 6);
    cr_assert(head_create(&h, 32, err, sizeof err) == 0, "%s", err);
    head_init(h, 0.5, 7);
    cr_assert(rm_create(&r, m, h, eos, err, sizeof err) == 0, "%s", err);
    cr_assert(rm_save(r, fx.rm, NULL, 0, err, sizeof err) == 0, "%s", err);
    rm_free(r);
}

/* ---- the trainers ---------------------------------------------------------------------------------- */

typedef struct {
    int data;                /* D_* */
    const char *want;        /* in the one error line */
} bad_case;

typedef struct {
    const char *cmd;         /* the subcommand; its errors start "rlhf <cmd>: " */
    const char *model_opt;   /* the option naming the starting model (pretrain: its config) */
    const char *data_opt;    /* the option naming its data */
    int data;                /* D_*: its data */
    const char *opts;        /* its settings for a tiny run (besides --out, --steps, --ckpt-every) */
    const char *rm_opts[2];  /* options given the fixture's reward model */
    const char *own[3];      /* its own files every checkpoint must hold (compared like all the rest) */
    const char *nan;         /* how to get a NaN: NULL starts from fx.nan_model, else these options */
    const char *nan_want;    /* in the error line of that run */
    bad_case bad[4];         /* data refused before anything is written */
} trainer_case;

#define NAN_STOP "loss is nan; stopping without a checkpoint"
#define MALFORMED {D_BAD_JSON, "bad.jsonl:1:39: invalid JSON"}
#define EMPTY {D_EMPTY, "empty.jsonl: empty file (no records)"}
#define MISSING {D_MISSING, "missing.jsonl: cannot open"}

static const trainer_case PRETRAIN = {
    .cmd = "pretrain", .model_opt = "--config", .data_opt = "--corpus", .data = D_CORPUS,
    .opts = "--batch 4 --seq 16 --accum 2 --lr 1e-2 --warmup 2 --eval-every 2 --eval-batches 2",
    /* no starting model to put a NaN in: a learning rate that blows the weights up after step 1 */
    .nan = "--lr 1e30 --warmup 0 --grad-clip 0", .nan_want = "step 2: the " NAN_STOP,
    .bad = {{D_EMPTY, "the corpus has 0 tokens; sequences of 16 need at least"}, MISSING}};

static const trainer_case SFT = {
    .cmd = "sft", .model_opt = "--model", .data_opt = "--data", .data = D_SFT,
    .opts = "--batch 2 --accum 2 --lr 1e-2 --warmup 2 --eval-every 2",
    .nan_want = "step 1: the " NAN_STOP,
    .bad = {{D_PREFS, "SFT needs a text or prompt-completion dataset; this one is preference"}, MALFORMED, EMPTY,
            MISSING}};

static const trainer_case RM = {
    .cmd = "rm", .model_opt = "--model", .data_opt = "--data", .data = D_PREFS,
    .opts = "--batch 2 --accum 2 --lr 3e-3 --warmup 2 --eval-every 2",
    .nan_want = "step 1: the " NAN_STOP,
    .bad = {{D_SFT, "sft.jsonl:1:1: this is a prompt-completion dataset"}, MALFORMED, EMPTY, MISSING}};

static const trainer_case DPO = {
    .cmd = "dpo", .model_opt = "--model", .data_opt = "--data", .data = D_PREFS,
    .opts = "--batch 2 --accum 2 --lr 3e-3 --warmup 2 --eval-every 2",
    .own = {"ref_logps.safetensors"},
    .nan_want = "step 1: the " NAN_STOP,
    .bad = {{D_SFT, "sft.jsonl:1:1: this is a prompt-completion dataset"}, MALFORMED, EMPTY, MISSING}};

/* the adaptive β and the EOS penalty in play, so that their state must survive a resume */
static const trainer_case PPO = {
    .cmd = "ppo", .model_opt = "--policy", .data_opt = "--prompts", .data = D_PROMPTS,
    .opts = "--batch 4 --minibatch 2 --accum 2 --ppo-epochs 2 --max-new-tokens 6 --temperature 1 --lr 1e-3 "
            "--target-kl 0.5 --kl-horizon 50 --missing-eos-penalty 1",
    .rm_opts = {"--rm"}, .own = {"value_head.safetensors", "value_head_optimizer.safetensors", "ppo_state.json"},
    .nan_want = "step 1: the policy " NAN_STOP,
    .bad = {{D_PREFS, "prefs.jsonl:1:1: this is a preference dataset"}, MALFORMED, EMPTY, MISSING}};

/* PPO with a separate value model (started from the reward model) in place of the value head */
static const trainer_case PPO_VALUE_MODEL = {
    .cmd = "ppo", .model_opt = "--policy", .data_opt = "--prompts", .data = D_PROMPTS,
    .opts = "--batch 4 --minibatch 2 --accum 2 --ppo-epochs 2 --max-new-tokens 6 --temperature 1 --lr 1e-3",
    .rm_opts = {"--rm", "--value-model"},
    .own = {"value_model.safetensors", "value_head_optimizer.safetensors", "ppo_state.json"}};

/* the command line of a run of tc into out: its data and starting model may be replaced (NULL: the
 * fixture's), extra options appended */
static void cmdline(const trainer_case *tc, const char *out, long steps, const char *data, const char *model,
                    const char *extra, char *buf, size_t n)
{
    size_t o = (size_t)snprintf(buf, n, "%s --tokenizer '%s' %s '%s' %s '%s' --out '%s' --steps %ld --ckpt-every 2 --threads 1 %s",
                                tc->cmd, fx.tok, tc->model_opt,
                                model ? model : strcmp(tc->model_opt, "--config") == 0 ? fx.config : fx.model,
                                tc->data_opt, data ? data : fx.data[tc->data], out, steps, tc->opts);
    for (size_t i = 0; i < 2 && tc->rm_opts[i]; i++) o += (size_t)snprintf(buf + o, n - o, " %s '%s'", tc->rm_opts[i], fx.rm);
    cr_assert(o + 2 < n);
    snprintf(buf + o, n - o, " %s", extra ? extra : "");
}

/* run it; exit status, standard error in *se (caller frees; NULL: dropped) */
static int run(const trainer_case *tc, const char *out, long steps, const char *extra, char **se)
{
    static char args[65536];
    char *so, *e;
    cmdline(tc, out, steps, NULL, NULL, extra, args, sizeof args);
    const int st = tu_run(args, NULL, &so, &e);
    free(so);
    if (se) *se = e;
    else free(e);
    return st;
}

/* one successful run */
static void run_ok(const trainer_case *tc, const char *out, long steps, const char *extra)
{
    char *e;
    const int st = run(tc, out, steps, extra, &e);
    cr_assert(st == 0, "rlhf %s %s: exit %d: %s", tc->cmd, extra ? extra : "", st, e);
    free(e);
}

/* an error: status 1 and one line "rlhf <cmd>: ...want..." on standard error; after_progress: the
 * run had begun, so that line may follow the progress lines of the steps done (its last line) */
static void one_error_line(const trainer_case *tc, int st, const char *se, const char *want, const char *what,
                           int after_progress)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "rlhf %s: ", tc->cmd);
    cr_assert(st == 1, "%s, %s: exit status %d, not 1: %s", tc->cmd, what, st, se);
    const char *line = se;
    for (const char *nl; after_progress && (nl = strchr(line, '\n')) && nl[1]; line = nl + 1)
        cr_assert(strncmp(line, tc->cmd, strlen(tc->cmd)) == 0 && line[strlen(tc->cmd)] == ' ',
                  "%s, %s: a line before the error is not the progress bar's: %s", tc->cmd, what, se);
    cr_assert(tu_lines(line) == 1 && strncmp(line, prefix, strlen(prefix)) == 0,
              "%s, %s: the error is not one line starting \"%s\"%s: %s", tc->cmd, what, prefix,
              after_progress ? " after the progress lines" : "", se);
    cr_assert(strstr(line, want), "%s, %s: the error does not say \"%s\": %s", tc->cmd, what, want, se);
}

/* ---- comparing two runs -------------------------------------------------------------------------- */

static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the visible entries of dir, sorted (caller frees each and the array) */
static char **entries(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    cr_assert(d, "cannot list %s", dir);
    char **v = NULL;
    *n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        v = realloc(v, (*n + 1) * sizeof *v);
        v[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    if (*n) qsort(v, *n, sizeof *v, cmp_name);
    return v;
}

static int is_dir(const char *p)
{
    DIR *d = opendir(p);
    if (d) closedir(d);
    return d != NULL;
}

/* the two folders hold the same entries with the same bytes (skip: a name at the top to leave out);
 * returns how many files were compared */
static size_t same_tree(const char *a, const char *b, const char *skip, const char *who)
{
    size_t na, nb, files = 0;
    char **ea = entries(a, &na), **eb = entries(b, &nb);
    for (size_t i = 0; i < na || i < nb; i++)
        cr_assert(i < na && i < nb && !strcmp(ea[i], eb[i]), "%s: %s and %s hold different entries (%s vs %s)", who, a, b,
                  i < na ? ea[i] : "nothing", i < nb ? eb[i] : "nothing");
    for (size_t i = 0; i < na; i++) {
        if (skip && !strcmp(ea[i], skip)) continue;
        char pa[4400], pb[4400];
        fio_join(pa, sizeof pa, a, ea[i]);
        fio_join(pb, sizeof pb, b, eb[i]);
        if (is_dir(pa)) {
            files += same_tree(pa, pb, NULL, who);
            continue;
        }
        size_t la, lb;
        char *x = tu_read(pa, NULL, &la), *y = tu_read(pb, NULL, &lb);
        cr_assert(la == lb && memcmp(x, y, la) == 0, "%s: %s differs from the uninterrupted run's %s", who, pb, pa);
        free(x);
        free(y);
        files++;
    }
    for (size_t i = 0; i < na; i++) free(ea[i]);
    for (size_t i = 0; i < nb; i++) free(eb[i]);
    free(ea);
    free(eb);
    return files;
}

/* metrics that measure wall time, so differ between any two runs: time/..., ..._per_s, and PPO's
 * eps (episodes per second, TRL's name) */
static int is_timing(const char *name)
{
    const size_t n = strlen(name);
    return !strncmp(name, "time/", 5) || (n > 6 && !strcmp(name + n - 6, "_per_s")) || !strcmp(name, "eps");
}

/* b's metrics.jsonl has a's lines: the same steps 1..steps in order, the same values (timings aside) */
static void same_metrics(const char *a, const char *b, long steps, const char *who)
{
    char *ma = tu_read(a, "metrics.jsonl", NULL), *mb = tu_read(b, "metrics.jsonl", NULL);
    cr_assert(tu_lines(ma) == (size_t)steps, "%s: the uninterrupted run logged %zu lines for %ld steps", who, tu_lines(ma),
              steps);
    cr_assert(tu_lines(mb) == (size_t)steps, "%s: the resumed run logged %zu lines for %ld steps:\n%s", who, tu_lines(mb),
              steps, mb);
    const char *la = ma, *lb = mb;
    for (long s = 1; s <= steps; s++) {
        json_error_t je;
        json_t *x = json_loadb(la, (size_t)(strchr(la, '\n') - la), 0, &je);
        cr_assert(x, "%s: %s/metrics.jsonl line %ld: %s", who, a, s, je.text);
        json_t *y = json_loadb(lb, (size_t)(strchr(lb, '\n') - lb), 0, &je);
        cr_assert(y, "%s: %s/metrics.jsonl line %ld: %s", who, b, s, je.text);
        cr_assert(json_integer_value(json_object_get(y, "step")) == s, "%s: line %ld of the resumed run is step %lld", who,
                  s, (long long)json_integer_value(json_object_get(y, "step")));
        cr_assert(json_object_size(x) == json_object_size(y), "%s: step %ld logs other metrics after resuming", who, s);
        const char *k;
        json_t *v;
        json_object_foreach(x, k, v)
        {
            json_t *w = json_object_get(y, k);
            cr_assert(w, "%s: step %ld: %s missing after resuming", who, s, k);
            if (!is_timing(k))
                cr_assert(json_equal(v, w), "%s: step %ld: %s is %.17g, the uninterrupted run's %.17g", who, s, k,
                          json_number_value(w), json_number_value(v));
        }
        json_decref(x);
        json_decref(y);
        la = strchr(la, '\n') + 1;
        lb = strchr(lb, '\n') + 1;
    }
    free(ma);
    free(mb);
}

/* b ended as a did: every file of the kept checkpoints and the export, and the metrics */
static void same_run(const trainer_case *tc, const char *a, const char *b, long steps, const char *who)
{
    char p[4400];
    cr_assert(fio_exists(fio_join(p, sizeof p, a, "model/model.safetensors")), "%s: no export in %s", who, a);
    char last[64];
    snprintf(last, sizeof last, "step-%08ld", steps);
    for (size_t i = 0; i < sizeof tc->own / sizeof *tc->own && tc->own[i]; i++) {
        char f[4400];
        snprintf(f, sizeof f, "%s/%s/%s", a, last, tc->own[i]);
        cr_assert(fio_exists(f), "%s: the checkpoint lacks %s", who, f);
    }
    const size_t files = same_tree(a, b, "metrics.jsonl", who);
    cr_assert(files >= 8, "%s: only %zu files compared", who, files);
    same_metrics(a, b, steps, who);
}

/* ---- the contract ---------------------------------------------------------------------------------- */

/* checkpoints every 2 steps: stopped at 3, a run resumes from 2. A run to be killed is longer: the
 * kill must land after its first checkpoint and before its end, and ~30 checkpoints (each written
 * whole, synced) leave about a second for that on this machine. */
enum { STEPS = 6, STOP = 3, KILL_STEPS = 60 };

static void out_dirs(const char *tag, char *a, char *b, size_t n)
{
    const char *d = tu_tmpdir(tag);
    snprintf(a, n, "%s/a", d);
    snprintf(b, n, "%s/b", d);
}

/* --stop-at, a stray metrics line, a refused restart, --resume: the uninterrupted run's files */
static void stop_and_resume(const trainer_case *tc)
{
    fixture();
    char a[4300], b[4300], extra[64], *e;
    out_dirs("contract-stop", a, b, sizeof a);
    run_ok(tc, a, STEPS, NULL);
    snprintf(extra, sizeof extra, "--stop-at %d", STOP);
    run_ok(tc, b, STEPS, extra);
    char *latest = tu_read(b, "latest", NULL);
    cr_assert(!strncmp(latest, "step-00000002", 13), "%s: stopped at %d, latest is %s", tc->cmd, STOP, latest);
    free(latest);
    char p[4400];
    cr_assert(!fio_exists(fio_join(p, sizeof p, b, "model")), "%s: an interrupted run exported its model", tc->cmd);
    char *m = tu_read(b, "metrics.jsonl", NULL);
    cr_assert(tu_lines(m) == STOP, "%s: %zu metrics lines after stopping at %d", tc->cmd, tu_lines(m), STOP);
    /* a line a crashed run might have left past its checkpoint, beyond the lines of step 3 */
    static const char stray[] = "{\"step\": 99, \"loss\": 1.5}\n";
    const size_t nm = strlen(m);
    m = realloc(m, nm + sizeof stray);
    memcpy(m + nm, stray, sizeof stray);
    tu_write(fio_join(p, sizeof p, b, "metrics.jsonl"), m, strlen(m));
    /* without --resume the run is refused and left untouched */
    size_t n0, n1;
    char *before = tu_read(b, "step-00000002/trainer_state.json", &n0);
    const int st = run(tc, b, STEPS, NULL, &e);
    one_error_line(tc, st, e, "already holds a checkpoint", "a second run into the same --out", 0);
    cr_assert(strstr(e, "--resume"), "%s: the error does not point to --resume: %s", tc->cmd, e);
    free(e);
    /* nor is a resume with another data order (a seed of its own), which says what differs */
    const int st2 = run(tc, b, STEPS, "--resume --seed 12345", &e);
    one_error_line(tc, st2, e, "this run has 12345", "--resume with another --seed", 0);
    cr_assert(strstr(e, "cannot resume") && strstr(e, "seed"), "%s: %s", tc->cmd, e);
    free(e);
    char *after = tu_read(b, "metrics.jsonl", NULL), *state = tu_read(b, "step-00000002/trainer_state.json", &n1);
    cr_assert(!strcmp(after, m) && n0 == n1 && !memcmp(before, state, n0), "%s: the refused runs changed %s", tc->cmd, b);
    cr_assert(!fio_exists(fio_join(p, sizeof p, b, "model")), "%s: a refused run exported a model", tc->cmd);
    free(after);
    free(state);
    free(before);
    free(m);
    run_ok(tc, b, STEPS, "--resume");
    same_run(tc, a, b, STEPS, tc->cmd);
}

/* start tc into out in the background (stdout and stderr to log) */
static pid_t spawn(const trainer_case *tc, const char *out, long steps, const char *log)
{
    static char args[65536], cmd[70000];
    cmdline(tc, out, steps, NULL, NULL, NULL, args, sizeof args);
    snprintf(cmd, sizeof cmd, "exec '%s' %s < /dev/null > '%s' 2>&1", RLHF_BIN, args, log);
    const pid_t pid = fork();
    cr_assert(pid >= 0, "fork failed");
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* kill -9 once the first checkpoint is there, --resume: the uninterrupted run's files */
static void kill_and_resume(const trainer_case *tc)
{
    const long steps = KILL_STEPS;
    fixture();
    char a[4300], b[4300], p[4400], log[4400];
    out_dirs("contract-kill", a, b, sizeof a);
    run_ok(tc, a, steps, NULL);
    snprintf(log, sizeof log, "%s.log", b);
    const pid_t pid = spawn(tc, b, steps, log);
    fio_join(p, sizeof p, b, "latest");
    int status = 0;
    pid_t done = 0;
    for (int i = 0; i < 120000 && !fio_exists(p) && !(done = waitpid(pid, &status, WNOHANG)); i++)
        nanosleep(&(struct timespec){0, 500000}, NULL); /* 0.5 ms, a minute at most */
    cr_assert(done == 0, "%s: the run ended before its first checkpoint: %s", tc->cmd, tu_read(log, NULL, NULL));
    cr_assert(fio_exists(p), "%s: no checkpoint after a minute", tc->cmd);
    cr_assert(kill(pid, SIGKILL) == 0);
    cr_assert(waitpid(pid, &status, 0) == pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "%s: the run finished before it could be killed (make it longer): %s", tc->cmd, tu_read(log, NULL, NULL));
    cr_assert(!fio_exists(fio_join(p, sizeof p, b, "model")), "%s: a killed run has an export", tc->cmd);
    /* every step up to the checkpoint was logged (flushed) before it; a stray line past it goes */
    char *latest = tu_read(b, "latest", NULL), *m = tu_read(b, "metrics.jsonl", NULL);
    const long saved = strtol(latest + 5, NULL, 10);
    cr_assert(saved >= 2 && saved < steps && (long)tu_lines(m) >= saved, "%s: killed with %s saved and %zu metrics lines",
              tc->cmd, latest, tu_lines(m));
    static const char stray[] = "{\"step\": 999, \"loss\": 1.5}\n";
    m = realloc(m, strlen(m) + sizeof stray);
    strcat(m, stray);
    tu_write(fio_join(p, sizeof p, b, "metrics.jsonl"), m, strlen(m));
    free(m);
    free(latest);
    run_ok(tc, b, steps, "--resume");
    same_run(tc, a, b, steps, tc->cmd);
}

/* a NaN: one line naming the step, no checkpoint, no model */
static void nan_stops(const trainer_case *tc)
{
    fixture();
    char out[4300], args[65536], *so, *se;
    snprintf(out, sizeof out, "%s/run", tu_tmpdir("contract-nan"));
    cmdline(tc, out, STEPS, NULL, tc->nan ? NULL : fx.nan_model, tc->nan, args, sizeof args);
    const int st = tu_run(args, NULL, &so, &se);
    one_error_line(tc, st, se, tc->nan_want, "a NaN", 1);
    cr_assert(strstr(se, "nan") || strstr(se, "inf"), "%s: the error does not say nan: %s", tc->cmd, se);
    free(so);
    free(se);
    if (!fio_exists(out)) return;
    size_t n;
    char **v = entries(out, &n);
    for (size_t i = 0; i < n; i++) {
        cr_assert(strcmp(v[i], "latest") && strncmp(v[i], "step-", 5) && strcmp(v[i], "model"),
                  "%s: a run stopped by a NaN left %s/%s", tc->cmd, out, v[i]);
        free(v[i]);
    }
    free(v);
}

/* bad data and settings: one line, exit 1, --out never created */
static void refuses_before_writing(const trainer_case *tc)
{
    fixture();
    char out[4300], args[65536], *so, *se;
    snprintf(out, sizeof out, "%s/run", tu_tmpdir("contract-bad"));
    size_t k = 0;
    for (; k < sizeof tc->bad / sizeof *tc->bad && tc->bad[k].want; k++) {
        cmdline(tc, out, STEPS, fx.data[tc->bad[k].data], NULL, NULL, args, sizeof args);
        const int st = tu_run(args, NULL, &so, &se);
        one_error_line(tc, st, se, tc->bad[k].want, fx.data[tc->bad[k].data], 0);
        cr_assert(!fio_exists(out), "%s: refusing %s left %s behind", tc->cmd, fx.data[tc->bad[k].data], out);
        free(so);
        free(se);
    }
    cr_assert(k >= 2, "%s: fewer than two bad datasets in its table row", tc->cmd);
    static const struct {
        const char *opt, *want;
    } settings[] = {{"--batch 0", "batch"}, {"--accum 0", "accum"}, {"--lr -1", "learning rate"}};
    for (size_t i = 0; i < sizeof settings / sizeof *settings; i++) {
        cmdline(tc, out, STEPS, NULL, NULL, settings[i].opt, args, sizeof args);
        const int st = tu_run(args, NULL, &so, &se);
        one_error_line(tc, st, se, settings[i].want, settings[i].opt, 0);
        cr_assert(!fio_exists(out), "%s: refusing %s left %s behind", tc->cmd, settings[i].opt, out);
        free(so);
        free(se);
    }
}

/* every contract for every trainer: trainer_contract/<contract>_<trainer> */
#define CONTRACT(trainer, tc)                                                                    \
    Test(trainer_contract, stop_and_resume_##trainer, .timeout = 240) { stop_and_resume(&tc); } \
    Test(trainer_contract, kill_and_resume_##trainer, .timeout = 240) { kill_and_resume(&tc); } \
    Test(trainer_contract, nan_stops_##trainer, .timeout = 120) { nan_stops(&tc); }             \
    Test(trainer_contract, refuses_before_writing_##trainer, .timeout = 120) { refuses_before_writing(&tc); }

CONTRACT(pretrain, PRETRAIN)
CONTRACT(sft, SFT)
CONTRACT(rm, RM)
CONTRACT(dpo, DPO)
CONTRACT(ppo, PPO)
/* a second shape of PPO's state: what differs is what resumes */
Test(trainer_contract, stop_and_resume_ppo_value_model, .timeout = 240) { stop_and_resume(&PPO_VALUE_MODEL); }

/* ---- the loop's own refusals and clean-up ------------------------------------------------------ */

/* trainer.h: "keep below 1" is an error (trainer_run.keep: ">= 1") */
Test(trainer_contract, keep_below_one_is_refused, .timeout = 60)
{
    fixture();
    char out[4300], args[65536], *so, *se;
    snprintf(out, sizeof out, "%s/run", tu_tmpdir("contract-keep"));
    cmdline(&SFT, out, STEPS, NULL, NULL, "--keep 0", args, sizeof args);
    const int st = tu_run(args, NULL, &so, &se);
    one_error_line(&SFT, st, se, "keep", "--keep 0", 0);
    cr_assert(!fio_exists(out), "refusing --keep 0 left %s behind", out);
    free(so);
    free(se);
}

/* A run killed while it writes a checkpoint leaves that checkpoint's temporary folder
 * (OUT/.step-N.tmp-XXXXXX, a whole model and its optimizer state); resuming removes it. Made here
 * as the kill leaves it, then resumed. */
Test(trainer_contract, resume_removes_half_written_checkpoints, .timeout = 60)
{
    fixture();
    char b[4300], extra[64], p[4400];
    snprintf(b, sizeof b, "%s/b", tu_tmpdir("contract-tmp"));
    snprintf(extra, sizeof extra, "--stop-at %d", STOP);
    run_ok(&SFT, b, STEPS, extra);
    fio_join(p, sizeof p, b, ".step-00000004.tmp-Xk3q9Z");
    cr_assert(mkdir(p, 0755) == 0);
    fio_join(p, sizeof p, p, "model.safetensors");
    tu_write(p, "half", 4);
    run_ok(&SFT, b, STEPS, "--resume");
    DIR *d = opendir(b);
    cr_assert(d);
    for (struct dirent *e; (e = readdir(d));)
        cr_expect(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 || e->d_name[0] != '.',
                  "a finished run still holds %s/%s", b, e->d_name);
    closedir(d);
}
