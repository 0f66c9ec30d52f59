/* test_control.c — classic-control PPO end to end: a short CartPole run must clearly beat a random
 * policy (mean return ~22), the same seed must give the same run, the success verdict follows the
 * score and the threshold, bad options are refused with one line, and `rlhf control` writes its
 * metrics, summary and plot with the last line the eval. The many-seed success rates are a
 * benchmark (tools/control_seeds.sh), not a test. */
#include "control.h"
#include "env.h"
#include "testutil.h"
#include "tu_float.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* tiny networks: the optimizer's and the bias kernels' OpenMP loops follow the process-wide thread
 * count, and extra threads would only wait on each other (on a busy machine, for seconds) */
static void one_thread(void) { omp_set_num_threads(1); }

TestSuite(control, .init = one_thread);

Test(control, cartpole_learns)
{
    cr_assert(env_find("CartPole-v1"), "CartPole-v1 is not registered");
    control_opts o = control_defaults("CartPole-v1");
    o.total_steps = 20480;
    o.eval_episodes = 10;
    o.seed = 3;
    control_result r;
    char err[256];
    cr_assert(control_run(&o, &r, err, sizeof err) == 0, "%s", err);
    cr_expect(r.total_steps == 20480);
    cr_expect(r.eval_mean_return >= 100, "eval mean return %.1f after %ld steps (a random policy gets ~22)",
              r.eval_mean_return, r.total_steps);
}

typedef struct {
    double sum;
    long updates;
} trace;

static void on_update(void *ud, const control_metrics *m)
{
    trace *t = ud;
    t->sum += m->policy_loss + m->value_loss + m->entropy + m->approx_kl;
    t->updates++;
}

Test(control, same_seed_same_run)
{
    trace a = {0}, b = {0};
    control_result ra, rb;
    char err[256];
    control_opts o = control_defaults("CartPole-v1");
    o.total_steps = 2048;
    o.eval_episodes = 3;
    o.on_update = on_update;
    o.ud = &a;
    cr_assert(control_run(&o, &ra, err, sizeof err) == 0, "%s", err);
    o.ud = &b;
    cr_assert(control_run(&o, &rb, err, sizeof err) == 0, "%s", err);
    cr_expect(a.updates == 8 && b.updates == 8);
    cr_expect(a.sum == b.sum && ra.eval_mean_return == rb.eval_mean_return);
    o.seed = 2;
    o.ud = &b;
    b.sum = 0;
    cr_assert(control_run(&o, &rb, err, sizeof err) == 0, "%s", err);
    cr_expect(a.sum != b.sum, "another seed gave the same losses");
}

/* the score is the evaluation's mean return; the verdict compares it with the threshold */
Test(control, success_verdict)
{
    control_opts o = control_defaults("CartPole-v1");
    cr_expect(o.success_threshold == 475 && o.eval_episodes == 100, "CartPole-v1: threshold %g, %d episodes",
              o.success_threshold, o.eval_episodes);
    cr_expect(isnan(control_defaults("Pendulum-v1").success_threshold), "Pendulum-v1 has no reward threshold");
    o.total_steps = 2048;
    o.eval_episodes = 5;
    control_result r;
    char err[256];
    cr_assert(control_run(&o, &r, err, sizeof err) == 0, "%s", err);
    /* after 2048 steps: short episodes, far below 475, a score of at least 8 (CartPole's shortest) */
    cr_expect(r.success == 0 && r.eval_mean_return >= 8 && r.eval_mean_return < 475, "score %.1f, success %d",
              r.eval_mean_return, r.success);
    cr_expect(r.train_last100_return >= 8 && r.train_last100_return < 475, "last-100 %.1f", r.train_last100_return);
    const double score = r.eval_mean_return;
    o.success_threshold = score; /* reached exactly: a success (the same seed gives the same score) */
    cr_assert(control_run(&o, &r, err, sizeof err) == 0, "%s", err);
    cr_expect(r.eval_mean_return == score && r.success == 1, "score %.3f vs %.3f, success %d", r.eval_mean_return,
              score, r.success);
    o.success_threshold = NAN;
    cr_assert(control_run(&o, &r, err, sizeof err) == 0, "%s", err);
    cr_expect(r.success == -1);
}

Test(control, bad_options)
{
    control_result r;
    char err[256];
    control_opts o = control_defaults("CartPole-v1");
    o.total_steps = 100; /* less than one rollout of 8 x 32 */
    cr_expect(control_run(&o, &r, err, sizeof err) == -1);
    cr_expect(strstr(err, "rollout") != NULL, "%s", err);
    o = control_defaults("NoSuchEnv-v0");
    cr_expect(control_run(&o, &r, err, sizeof err) == -1);
    cr_expect(strstr(err, "NoSuchEnv-v0") != NULL, "%s", err);
    o = control_defaults("CartPole-v1");
    o.num_minibatches = 0;
    cr_expect(control_run(&o, &r, err, sizeof err) == -1 && strchr(err, '\n') == NULL);
}

Test(control, cli_writes_metrics_summary_and_plot)
{
    const char *dir = tu_tmpdir("control_cli");
    char args[1024], path[1200];
    snprintf(args, sizeof args, "control --env CartPole-v1 --total-steps 1024 --seed 5 --eval-episodes 4 --out %s", dir);
    char *out = NULL, *err = NULL;
    int rc = tu_run(args, NULL, &out, &err);
    cr_assert(rc == 0, "exit %d: %s", rc, err);
    /* last line: eval_mean_return: X */
    size_t n = strlen(out);
    cr_assert(n > 0 && out[n - 1] == '\n');
    out[n - 1] = 0;
    const char *last = strrchr(out, '\n');
    last = last ? last + 1 : out;
    double x;
    cr_expect(sscanf(last, "eval_mean_return: %lf", &x) == 1, "last line: %s", last);

    snprintf(path, sizeof path, "%s/summary.json", dir);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    cr_assert(j, "%s: %s", path, je.text);
    cr_expect(strcmp(json_string_value(json_object_get(j, "env")), "CartPole-v1") == 0);
    cr_expect(json_integer_value(json_object_get(j, "seed")) == 5);
    cr_expect(json_integer_value(json_object_get(j, "total_steps")) == 1024);
    cr_expect(json_integer_value(json_object_get(j, "eval_episodes")) == 4);
    NEAR(json_number_value(json_object_get(j, "eval_mean_return")), x, 1e-3);
    cr_expect(json_number_value(json_object_get(j, "wall_seconds")) > 0);
    cr_expect(json_number_value(json_object_get(j, "success_threshold")) == 475);
    cr_expect(json_is_false(json_object_get(j, "success")), "4 updates cannot solve CartPole");
    cr_expect(json_is_number(json_object_get(j, "train_last100_return")));
    cr_expect(strstr(out, "\nsuccess: no (score ") != NULL, "%s", out);
    json_decref(j);

    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    cr_assert(f);
    char line[2048];
    int lines = 0;
    static const char *const keys[] = {"global_step", "episodic_return", "episodic_length", "policy_loss",
                                       "value_loss", "entropy", "approx_kl", "approx_kl_k3", "clipfrac",
                                       "explained_variance", "learning_rate", "sps"};
    while (fgets(line, sizeof line, f)) {
        json_t *m = json_loads(line, 0, &je);
        cr_assert(m, "line %d: %s", lines + 1, je.text);
        for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
            cr_expect(json_object_get(m, keys[k]) != NULL, "line %d lacks %s", lines + 1, keys[k]);
        cr_expect(json_integer_value(json_object_get(m, "global_step")) == 256 * (lines + 1));
        json_decref(m);
        lines++;
    }
    fclose(f);
    cr_expect(lines == 4);
    /* the plot, when gnuplot is installed (tools/setup_deps.sh installs it) */
    snprintf(path, sizeof path, "%s/learning_curve.png", dir);
    struct stat st;
    if (strstr(err, "gnuplot not found") == NULL) cr_expect(stat(path, &st) == 0 && st.st_size > 1000, "%s", err);
    free(out);
    free(err);
}
