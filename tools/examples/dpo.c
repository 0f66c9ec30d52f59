/* dpo.c — example: a few steps of Direct Preference Optimization from C through the installed
 * library (what `rlhf dpo` does, without the CLI): defaults first, then overrides, one call.
 *
 *     cc -std=c11 dpo.c $(pkg-config --cflags --libs rlhf) -o dpo
 *     ./dpo MODEL PREFS.jsonl OUT [STEPS]
 *
 * MODEL: the starting policy (normally an SFT model: a model folder with its tokenizer, a run's
 * output folder or its latest pointer); it is the reference too. PREFS.jsonl: one
 * {"prompt", "chosen", "rejected"} per line. Writes OUT/model, OUT/metrics.jsonl and checkpoints. */
#include <rlhf/rlhf.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s MODEL PREFS.jsonl OUT [STEPS]\n", argv[0]);
        return 2;
    }
    char err[1024], dir[4096];
    if (ckpt_resolve(argv[1], dir, sizeof dir, err, sizeof err)) {
        fprintf(stderr, "dpo: %s\n", err);
        return 1;
    }
    dpo_opts o = dpo_defaults(); /* TRL's DPOConfig: sigmoid loss, beta 0.1, lr 1e-6 */
    o.model = dir;
    o.tokenizer = dir; /* the tokenizer travels with the model */
    o.data = argv[2];
    o.run.out = argv[3];
    o.run.steps = argc > 4 ? atol(argv[4]) : 3;
    o.run.batch = 2;
    o.run.threads = 1;
    o.run.precision = TRAINER_PREC_FP32;
    o.optim.lr = 1e-4f; /* a visible change in a few steps */

    dpo_result r;
    if (dpo_run(&o, &r, err, sizeof err)) {
        fprintf(stderr, "dpo: %s\n", err);
        return 1;
    }
    printf("%ld steps on %zu pairs: loss %.4f, margin %.4f, accuracy %.2f -> %s/model\n", r.steps, r.n_train,
           r.train.loss, r.train.rewards_margins, r.train.rewards_accuracies, o.run.out);
    return 0;
}
