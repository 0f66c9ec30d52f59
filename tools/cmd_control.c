/* cmd_control.c — `rlhf control`: PPO on a classic-control env (rlhf/control.h) with per-env
 * defaults, a progress bar, OUT/metrics.jsonl, OUT/learning_curve.png and OUT/summary.json; it prints
 * the last-100 training mean, the verdict against the env's success threshold (control.h defines
 * the score), and last the line `eval_mean_return: X`. */
#include "cli.h"
#include "dp.h"
#include "commands.h"
#include "control.h"
#include "env.h"
#include "fileio.h"
#include "plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    cli_progress prog;
    double *x, *y;
    size_t n, cap;
    double last_return;
} run_state;

static void on_update(void *ud, const control_metrics *m)
{
    run_state *r = ud;
    if (!isnan(m->episodic_return)) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 256;
            double *x = realloc(r->x, cap * sizeof *x), *y = x ? realloc(r->y, cap * sizeof *y) : NULL;
            if (x) r->x = x;
            if (!x || !y) cli_die("control", "out of memory");
            r->y = y;
            r->cap = cap;
        }
        r->x[r->n] = (double)m->global_step;
        r->y[r->n++] = m->episodic_return;
        r->last_return = m->episodic_return;
    }
    char extra[160], ret[32] = "-";
    if (!isnan(r->last_return)) snprintf(ret, sizeof ret, "%.1f", r->last_return);
    snprintf(extra, sizeof extra, " return %s  kl %.4f  clip %.3f  %.0f steps/s", ret, m->approx_kl_k3, m->clipfrac,
             m->sps);
    cli_progress_update(&r->prog, (double)m->update, (double)m->n_updates, extra);
}

/* the value after --env in argv, so the defaults (and --help) can follow the env */
static const char *find_env(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--env") == 0) return argv[i + 1];
    return NULL;
}

int cmd_control(int argc, char **argv)
{
    const char *env_id = find_env(argc, argv);
    control_opts o = control_defaults(env_id ? env_id : "CartPole-v1");
    const char *out = NULL;
    const cli_opt opts[] = {
        {"--env", OPT_STR, &env_id, "ID", "CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0, Pendulum-v1", 1},
        {"--total-steps", OPT_LONG, &o.total_steps, "N", "env steps in all (whole rollouts)", 0},
        {"--seed", OPT_U64, &o.seed, "S", "seed for envs, initialisation, actions and minibatches", 0},
        {"--out", OPT_STR, &out, "DIR", "metrics.jsonl, learning_curve.png, summary.json (default out/control/ENV-sS)", 0},
        {"--eval-episodes", OPT_INT, &o.eval_episodes, "K", "deterministic evaluation episodes at the end; their mean return is the score", 0},
        {"--success-threshold", OPT_DOUBLE, &o.success_threshold, "X", "the run succeeds when the score reaches this (Gymnasium's reward_threshold; nan: none)", 0},
        {"--num-envs", OPT_INT, &o.num_envs, "N", "envs stepped together", 0},
        {"--num-steps", OPT_INT, &o.num_steps, "T", "steps per env per rollout", 0},
        {"--num-minibatches", OPT_INT, &o.num_minibatches, "K", "minibatches per epoch", 0},
        {"--update-epochs", OPT_INT, &o.update_epochs, "K", "passes over each rollout", 0},
        {"--lr", OPT_FLOAT, &o.lr, "X", "Adam learning rate", 0},
        {"--anneal-lr", OPT_INT, &o.anneal_lr, "0|1", "decay the learning rate linearly to 0", 0},
        {"--gamma", OPT_FLOAT, &o.gamma, "X", "discount", 0},
        {"--gae-lambda", OPT_FLOAT, &o.gae_lambda, "X", "GAE lambda", 0},
        {"--norm-adv", OPT_INT, &o.norm_adv, "0|1", "normalise advantages per minibatch", 0},
        {"--clip-coef", OPT_FLOAT, &o.clip_coef, "X", "PPO clip range", 0},
        {"--anneal-clip", OPT_INT, &o.anneal_clip, "0|1", "decay the clip range linearly too", 0},
        {"--clip-vloss", OPT_INT, &o.clip_vloss, "0|1", "clip the value loss as well", 0},
        {"--ent-coef", OPT_FLOAT, &o.ent_coef, "X", "entropy bonus coefficient", 0},
        {"--vf-coef", OPT_FLOAT, &o.vf_coef, "X", "value loss coefficient", 0},
        {"--grad-clip", OPT_FLOAT, &o.max_grad_norm, "X", "global gradient-norm clip (CleanRL's max_grad_norm; 0: off)", 0},
        {"--target-kl", OPT_FLOAT, &o.target_kl, "X", "stop an update's epochs above this KL (0: off)", 0},
        {"--hidden", OPT_INT, &o.hidden, "N", "hidden width of actor and critic", 0},
        {"--hidden-layers", OPT_INT, &o.hidden_layers, "N", "hidden layers of actor and critic", 0},
        {"--log-std-init", OPT_FLOAT, &o.log_std_init, "X", "initial log std of continuous actions", 0},
        {"--norm-obs", OPT_INT, &o.norm_obs, "0|1", "running observation normalisation", 0},
        {"--norm-reward", OPT_INT, &o.norm_reward, "0|1", "reward scaling by the running return std", 0},
        {"--threads", OPT_INT, &o.threads, "N", "threads (1 is fastest for these small networks)", 0},
        {0}};
    cli_parse("control", "Train PPO on a classic-control environment, then evaluate it deterministically.", argc, argv,
              opts);
    if (!env_find(env_id)) {
        char shown[64];
        cli_die("control", "unknown env '%s' (see --help)", fio_show(env_id, shown, sizeof shown));
    }
    if (o.total_steps < 1 || o.eval_episodes < 0 || o.threads < 1)
        cli_die("control", "--total-steps, --eval-episodes and --threads must be positive");
    cli_threads(o.threads);
    /* under mpirun, rank 0 trains (small networks on one core: nothing to share) and writes */
    if (dp_rank(cli_dp()) > 0) return 0;
    o.env_id = env_id;
    char outbuf[512];
    if (!out) {
        snprintf(outbuf, sizeof outbuf, "out/control/%s-s%llu", env_id, (unsigned long long)o.seed);
        out = outbuf;
    }
    o.out = out;

    run_state rs = {.last_return = NAN};
    cli_progress_start(&rs.prog, env_id);
    o.on_update = on_update;
    o.ud = &rs;
    control_result res;
    char err[1024];
    if (control_run(&o, &res, err, sizeof err)) cli_die("control", "%s", err);
    char extra[256];
    snprintf(extra, sizeof extra, "%ld steps in %.1f s -> %s", res.total_steps, res.wall_seconds, out);
    cli_progress_done(&rs.prog, extra);

    char png[4096], title[256];
    snprintf(title, sizeof title, "PPO on %s (seed %llu): mean episodic return per update", env_id, (unsigned long long)o.seed);
    const plot_opts po = {title, "environment steps", "episodic return", 0, 0};
    const plot_series s = {"training episodes", rs.x, rs.y, rs.n};
    if (plot_lines(fio_join(png, sizeof png, out, "learning_curve.png"), &po, &s, 1, err, sizeof err))
        fprintf(stderr, "rlhf control: no learning curve: %s\n", err);
    free(rs.x);
    free(rs.y);
    printf("total_steps: %ld\nwall_seconds: %.2f\ntrain_last100_return: %.3f\n", res.total_steps, res.wall_seconds,
           res.train_last100_return);
    if (res.success >= 0)
        printf("success: %s (score %.1f %s threshold %g)\n", res.success ? "yes" : "no", res.eval_mean_return,
               res.success ? ">=" : "<", o.success_threshold);
    printf("eval_std_return: %.3f\neval_mean_return: %.3f\n", res.eval_std_return, res.eval_mean_return);
    return 0;
}
