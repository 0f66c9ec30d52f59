/* trainer_dp.c — the training loop's optimizer step across data-parallel ranks: the gradient sum
 * (one all-reduce per block and optimizer step) or ZeRO-1 (reduce-scatter the gradients, AdamW on
 * this rank's share of the parameters with only that share of the moments, all-gather the
 * parameters), and the gathering of sharded moments for checkpoints. See trainer.h.
 *
 * Why one all-reduce per block and no buckets overlapped with the backward pass: measured by
 * tools/bench_dp.sh, the all-reduce is a small share of a step at the sizes this project trains on
 * one machine, and the backward (model/gpt2.c) runs each layer with every thread, so there is no
 * idle core to overlap on; see the README's section on running across machines. */
#include "trainer.h"

#include "fileio.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* one block's share under ZeRO-1 */
typedef struct {
    size_t lo, hi;           /* this rank's parameters [lo, hi) */
    adamw opt;               /* the moments of those only */
    adamw_range r[GPT2_NUM_TENSORS];
    size_t nr;               /* the block's ranges cut to [lo, hi), offsets from lo */
} zero_block;

struct trainer_zero {
    zero_block b[TRAINER_MAX_BLOCKS];
};

/* the block's decay ranges within [lo, hi), shifted to start at lo */
static void cut_ranges(const trainer_block *b, zero_block *z)
{
    z->nr = 0;
    for (size_t i = 0; i < b->nr; i++) {
        const size_t a = b->r[i].offset, e = a + b->r[i].numel;
        const size_t x = a > z->lo ? a : z->lo, y = e < z->hi ? e : z->hi;
        if (x < y) z->r[z->nr++] = (adamw_range){x - z->lo, y - x, b->r[i].decay};
    }
}

int trainer_dp_begin(trainer *t, char *err, size_t errlen)
{
    if (t->nranks > 1 && t->run->batch % t->nranks)
        return fio_fail(err, errlen, "--batch %d cannot be shared equally by %d ranks: give a multiple of %d", t->run->batch,
                        t->nranks, t->nranks);
    if (!t->run->zero || t->nranks == 1) return 0;
    struct trainer_zero *zs = t->zero = calloc(1, sizeof *zs);
    if (!zs) return fio_fail(err, errlen, "out of memory");
    for (size_t k = 0; k < t->nblocks; k++) {
        trainer_block *b = &t->blocks[k];
        zero_block *z = &zs->b[k];
        dp_share(b->n, t->rank, t->nranks, &z->lo, &z->hi);
        if (adamw_create(&z->opt, z->hi - z->lo)) return fio_fail(err, errlen, "out of memory for the optimizer");
        /* the moments as loaded (zero, or the checkpoint's): keep my share, free the rest */
        memcpy(z->opt.m, b->opt->m + z->lo, (z->hi - z->lo) * sizeof *z->opt.m);
        memcpy(z->opt.v, b->opt->v + z->lo, (z->hi - z->lo) * sizeof *z->opt.v);
        z->opt.t = b->opt->t;
        cut_ranges(b, z);
    }
    trainer_dp_drop_moments(t);
    return 0;
}

void trainer_dp_drop_moments(trainer *t)
{
    for (size_t k = 0; t->zero && k < t->nblocks; k++) {
        adamw *o = t->blocks[k].opt;
        free(o->m);
        free(o->v);
        o->m = o->v = NULL;
    }
}

int trainer_dp_gather_moments(trainer *t, char *err, size_t errlen)
{
    for (size_t k = 0; t->zero && k < t->nblocks; k++) {
        adamw *o = t->blocks[k].opt;
        const zero_block *z = &t->zero->b[k];
        if (!o->m && !(o->m = malloc(o->n * sizeof *o->m))) return fio_fail(err, errlen, "out of memory");
        if (!o->v && !(o->v = malloc(o->n * sizeof *o->v))) return fio_fail(err, errlen, "out of memory");
        memcpy(o->m + z->lo, z->opt.m, (z->hi - z->lo) * sizeof *o->m);
        memcpy(o->v + z->lo, z->opt.v, (z->hi - z->lo) * sizeof *o->v);
        o->t = z->opt.t;
        if (dp_allgather(t->run->dp, o->m, o->n, sizeof *o->m, err, errlen) ||
            dp_allgather(t->run->dp, o->v, o->n, sizeof *o->v, err, errlen))
            return -1;
    }
    return 0;
}

void trainer_dp_free(trainer *t)
{
    if (!t->zero) return;
    for (size_t k = 0; k < TRAINER_MAX_BLOCKS; k++) adamw_free(&t->zero->b[k].opt);
    free(t->zero);
    t->zero = NULL;
}

/* ZeRO-1: each block's gradient sums reduce-scattered, one global norm from the shares, AdamW on
 * this rank's share, the parameters all-gathered */
static int zero_update(trainer *t, char *err, size_t errlen)
{
    double ss = 0;
    for (size_t k = 0; k < t->nblocks; k++) {
        const trainer_block *b = &t->blocks[k];
        const zero_block *z = &t->zero->b[k];
        if (dp_reduce_scatter_f32(t->run->dp, b->grads, b->n, err, errlen)) return -1;
        float *g = b->grads + z->lo;
        const long n = (long)(z->hi - z->lo);
        if (t->grad_scale != 1.0f) {
#pragma omp parallel for
            for (long i = 0; i < n; i++) g[i] *= t->grad_scale;
        }
        const double x = grad_norm(g, (size_t)n, z->opt.partial);
        ss += x * x;
    }
    if (dp_allreduce_f64(t->run->dp, &ss, 1, DP_SUM, err, errlen)) return -1;
    const double gn = sqrt(ss);
    t->grad_norm = gn;
    if (trainer_check_finite(t->st.step + 1, "gradient norm", gn, err, errlen)) return -1;
    const trainer_optim *o = t->optim;
    const float lr = lr_schedule(t->update, o->warmup, t->total_updates, o->lr, o->min_lr), sc = clip_scale(gn, o->grad_clip);
    t->lr = lr;
    const adamw_hparams h = {lr, o->beta1, o->beta2, o->eps, o->weight_decay};
    for (size_t k = 0; k < t->nblocks; k++) {
        const trainer_block *b = &t->blocks[k];
        zero_block *z = &t->zero->b[k];
        adamw_step_scaled(&z->opt, b->params + z->lo, b->grads + z->lo, sc, z->r, z->nr, &h, lr);
        b->opt->t = z->opt.t;
        if (dp_allgather(t->run->dp, b->params, b->n, sizeof *b->params, err, errlen)) return -1;
    }
    return 0;
}

int trainer_dp_update(trainer *t, char *err, size_t errlen)
{
    /* the ranks meet first: the collectives' time is then their own, not waiting for the slowest */
    if (t->nranks > 1 && dp_sync(t->run->dp, err, errlen)) return -1;
    if (t->zero) return zero_update(t, err, errlen);
    for (size_t k = 0; t->nranks > 1 && k < t->nblocks; k++)
        if (dp_allreduce_f32(t->run->dp, t->blocks[k].grads, t->blocks[k].n, err, errlen)) return -1;
    return trainer_update_blocks(t->optim, t->update, t->total_updates, t->blocks, t->nblocks, t->grad_scale, t->st.step + 1,
                                 &t->grad_norm, &t->lr, err, errlen);
}
