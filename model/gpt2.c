/* gpt2.c — the GPT-2 model: parameter table, activations, forward and backward. See gpt2.h. */
#include "gpt2.h"

#include "fileio.h"
#include "rng.h"

#include "mm.h"
#include "ops.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* activations for one forward at N = B*T rows */
typedef struct {
    float *encoded;                 /* (N,C) */
    float *ln1, *ln1_mean, *ln1_rstd; /* (L,N,C) (L,N) (L,N) */
    float *qkv;                     /* (L,N,3C) */
    float *atty;                    /* (L,N,C) */
    float *att;                     /* (L,B,NH,T,T) */
    float *res2;                    /* (L,N,C) residual after attention */
    float *ln2, *ln2_mean, *ln2_rstd;
    float *fch, *fch_gelu;          /* (L,N,4C) */
    float *res3;                    /* (L,N,C) residual after the MLP = layer output */
    float *lnf, *lnf_mean, *lnf_rstd; /* (N,C) (N) (N) */
    float *logits;                  /* (N,V): its own allocation (logits_mem), made only when needed */
    float *lse, *logp;              /* (N) */
    /* backward scratch */
    float *dres, *dbuf, *dqkv, *dfch, *dfch_gelu, *attscratch, *dlogp;
} acts;

struct gpt2 {
    gpt2_config cfg;
    gpt2_tensor table[GPT2_NUM_TENSORS];
    size_t nparams;
    float *params, *grads;
    int nthreads;
    /* activations */
    int B, T;            /* of the last forward */
    size_t cap_rows;     /* N the activations are sized for */
    int cap_T;
    float *actmem;
    float *logits_mem;   /* (cap_logit_rows, V): allocated on the first forward that needs logits */
    size_t cap_logit_rows;
    float inv_temp;      /* 1/temperature of the last forward's logits (1 for gpt2_forward) */
    acts a;
    const int32_t *tokens, *targets; /* of the last forward (caller-owned) */
    const float *mask;
    int32_t *tok_copy, *tgt_copy;
    float *mask_copy;
};

int gpt2_config_named(const char *name, int vocab_size, gpt2_config *out)
{
    static const struct {
        const char *name;
        int L, H, C, P;
    } known[] = {
        {"tiny", 4, 4, 128, 256},        {"small", 6, 6, 384, 256},      {"gpt2-small", 12, 12, 768, 1024},
        {"gpt2", 12, 12, 768, 1024},     {"gpt2-medium", 24, 16, 1024, 1024}, {"gpt2-large", 36, 20, 1280, 1024},
    };
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(name, known[i].name) == 0) {
            out->n_layer = known[i].L;
            out->n_head = known[i].H;
            out->n_embd = known[i].C;
            out->n_positions = known[i].P;
            out->vocab_size = vocab_size > 0 ? vocab_size : 50257;
            out->ln_eps = 1e-5f;
            return 0;
        }
    return -1;
}

static void build_table(gpt2 *m)
{
    const gpt2_config *c = &m->cfg;
    size_t L = (size_t)c->n_layer, C = (size_t)c->n_embd, V = (size_t)c->vocab_size, P = (size_t)c->n_positions;
    struct {
        const char *name;
        int per_layer, ndim, s0, s1, decay;
    } d[GPT2_NUM_TENSORS] = {
        {"wte", 0, 2, (int)V, (int)C, 1},      {"wpe", 0, 2, (int)P, (int)C, 1},
        {"ln1w", 1, 1, (int)C, 0, 0},          {"ln1b", 1, 1, (int)C, 0, 0},
        {"qkvw", 1, 2, (int)C, 3 * (int)C, 1}, {"qkvb", 1, 1, 3 * (int)C, 0, 0},
        {"attprojw", 1, 2, (int)C, (int)C, 1}, {"attprojb", 1, 1, (int)C, 0, 0},
        {"ln2w", 1, 1, (int)C, 0, 0},          {"ln2b", 1, 1, (int)C, 0, 0},
        {"fcw", 1, 2, (int)C, 4 * (int)C, 1},  {"fcb", 1, 1, 4 * (int)C, 0, 0},
        {"fcprojw", 1, 2, 4 * (int)C, (int)C, 1}, {"fcprojb", 1, 1, (int)C, 0, 0},
        {"lnfw", 0, 1, (int)C, 0, 0},          {"lnfb", 0, 1, (int)C, 0, 0},
    };
    size_t off = 0;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        gpt2_tensor *t = &m->table[i];
        t->name = d[i].name;
        t->per_layer = d[i].per_layer;
        t->ndim = d[i].ndim;
        t->shape[0] = d[i].s0;
        t->shape[1] = d[i].ndim == 2 ? d[i].s1 : 1;
        t->decay = d[i].decay;
        t->offset = off;
        t->numel = (size_t)t->shape[0] * (size_t)t->shape[1] * (t->per_layer ? L : 1);
        off += t->numel;
    }
    m->nparams = off;
}

int gpt2_create(gpt2 **out, const gpt2_config *cfg, char *err, size_t errlen)
{
    if (cfg->n_layer < 1 || cfg->n_head < 1 || cfg->n_embd < 1 || cfg->vocab_size < 1 || cfg->n_positions < 1)
        return fio_fail(err, errlen, "invalid configuration: every size must be positive");
    if (cfg->n_embd % cfg->n_head != 0)
        return fio_fail(err, errlen, "invalid configuration: n_embd %d is not a multiple of n_head %d", cfg->n_embd,
                     cfg->n_head);
    gpt2 *m = calloc(1, sizeof *m);
    if (!m) return fio_fail(err, errlen, "out of memory");
    m->cfg = *cfg;
    if (!(m->cfg.ln_eps > 0)) m->cfg.ln_eps = 1e-5f;
    m->nthreads = omp_get_max_threads();
    build_table(m);
    m->params = calloc(m->nparams, sizeof(float));
    m->grads = calloc(m->nparams, sizeof(float));
    if (!m->params || !m->grads) {
        gpt2_free(m);
        return fio_fail(err, errlen, "out of memory for %zu parameters", m->nparams);
    }
    /* LayerNorm weights start at one */
    int ones[] = {GPT2_LN1W, GPT2_LN2W, GPT2_LNFW};
    for (int k = 0; k < 3; k++) {
        gpt2_tensor *t = &m->table[ones[k]];
        for (size_t i = 0; i < t->numel; i++) m->params[t->offset + i] = 1.0f;
    }
    *out = m;
    return 0;
}

void gpt2_free(gpt2 *m)
{
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->actmem);
    free(m->logits_mem);
    free(m->tok_copy);
    free(m->tgt_copy);
    free(m->mask_copy);
    free(m);
}

const gpt2_config *gpt2_cfg(const gpt2 *m) { return &m->cfg; }
size_t gpt2_num_params(const gpt2 *m) { return m->nparams; }
float *gpt2_params(gpt2 *m) { return m->params; }
const float *gpt2_params_const(const gpt2 *m) { return m->params; }
float *gpt2_grads(gpt2 *m) { return m->grads; }
const gpt2_tensor *gpt2_param_table(const gpt2 *m) { return m->table; }
void gpt2_set_threads(gpt2 *m, int n) { m->nthreads = n > 0 ? n : omp_get_max_threads(); }
int gpt2_threads(const gpt2 *m) { return m->nthreads; }
const float *gpt2_hidden(const gpt2 *m) { return m->a.lnf; }
const float *gpt2_logits(const gpt2 *m) { return m->a.logits; }
const float *gpt2_logp(const gpt2 *m) { return m->a.logp; }

void gpt2_init_random(gpt2 *m, uint64_t seed)
{
    uint64_t s = seed;
    const int L = m->cfg.n_layer;
    for (int i = 0; i < GPT2_NUM_TENSORS; i++) {
        gpt2_tensor *t = &m->table[i];
        float *p = m->params + t->offset;
        if (t->ndim == 1) {
            float v = (i == GPT2_LN1W || i == GPT2_LN2W || i == GPT2_LNFW) ? 1.0f : 0.0f;
            for (size_t k = 0; k < t->numel; k++) p[k] = v;
            continue;
        }
        double std = 0.02;
        if (i == GPT2_ATTPROJW || i == GPT2_FCPROJW) std = 0.02 / sqrt(2.0 * L);
        for (size_t k = 0; k < t->numel; k += 2) {
            double u1 = rng_unit_open(&s), u2 = rng_unit_open(&s), r = sqrt(-2.0 * log(u1));
            p[k] = (float)(std * r * cos(2 * M_PI * u2));
            if (k + 1 < t->numel) p[k + 1] = (float)(std * r * sin(2 * M_PI * u2));
        }
    }
}

void gpt2_zero_grad(gpt2 *m) { memset(m->grads, 0, m->nparams * sizeof(float)); }

void gpt2_adamw_ranges(const gpt2 *m, adamw_range out[GPT2_NUM_TENSORS])
{
    for (int i = 0; i < GPT2_NUM_TENSORS; i++)
        out[i] = (adamw_range){m->table[i].offset, m->table[i].numel, m->table[i].decay};
}

double gpt2_flops_forward(const gpt2_config *c, int B, int T)
{
    const double N = (double)B * T, C = c->n_embd, L = c->n_layer, V = c->vocab_size;
    double mm = 2.0 * N * (C * 3 * C + C * C + C * 4 * C + 4 * C * C) * L + 2.0 * N * C * V;
    double att = 2.0 * 2.0 * B * (double)T * (T + 1) / 2.0 * C * L; /* QK^T and AV over the causal half */
    return mm + att;
}

static int ensure_acts(gpt2 *m, int B, int T)
{
    size_t N = (size_t)B * (size_t)T;
    if (N <= m->cap_rows && T <= m->cap_T && (size_t)B * T * T <= m->cap_rows * (size_t)m->cap_T) return 0;
    const size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd, NH = (size_t)m->cfg.n_head;
    size_t capT = (size_t)T;
    size_t att = (size_t)B * NH * capT * capT;
    int nt = omp_get_max_threads();
    if (m->nthreads > nt) nt = m->nthreads;
    struct {
        float **p;
        size_t n;
    } parts[] = {
        {&m->a.encoded, N * C},     {&m->a.ln1, L * N * C},      {&m->a.ln1_mean, L * N},
        {&m->a.ln1_rstd, L * N},    {&m->a.qkv, L * N * 3 * C},  {&m->a.atty, L * N * C},
        {&m->a.att, L * att},       {&m->a.res2, L * N * C},     {&m->a.ln2, L * N * C},
        {&m->a.ln2_mean, L * N},    {&m->a.ln2_rstd, L * N},     {&m->a.fch, L * N * 4 * C},
        {&m->a.fch_gelu, L * N * 4 * C}, {&m->a.res3, L * N * C}, {&m->a.lnf, N * C},
        {&m->a.lnf_mean, N},        {&m->a.lnf_rstd, N},
        {&m->a.lse, N},             {&m->a.logp, N},             {&m->a.dres, N * C},
        {&m->a.dbuf, N * C},        {&m->a.dqkv, N * 3 * C},     {&m->a.dfch, N * 4 * C},
        {&m->a.dfch_gelu, N * 4 * C}, {&m->a.attscratch, (size_t)nt * capT * capT}, {&m->a.dlogp, N},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) total += (parts[i].n + 15) & ~(size_t)15;
    free(m->actmem);
    free(m->tok_copy);
    free(m->tgt_copy);
    free(m->mask_copy);
    m->actmem = aligned_alloc(64, total * sizeof(float));
    m->tok_copy = malloc(N * sizeof(int32_t));
    m->tgt_copy = malloc(N * sizeof(int32_t));
    m->mask_copy = malloc(N * sizeof(float));
    if (!m->actmem || !m->tok_copy || !m->tgt_copy || !m->mask_copy) {
        m->cap_rows = 0;
        return -1;
    }
    float *p = m->actmem;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        *parts[i].p = p;
        p += (parts[i].n + 15) & ~(size_t)15;
    }
    m->cap_rows = N;
    m->cap_T = T;
    return 0;
}

/* the (N,V) logits buffer, kept apart from the other activations so a hidden-only forward (scalar
 * heads) never pays for it */
static int ensure_logits(gpt2 *m, size_t N)
{
    if (N <= m->cap_logit_rows) return 0;
    free(m->logits_mem);
    m->logits_mem = aligned_alloc(64, ((N * (size_t)m->cfg.vocab_size + 15) & ~(size_t)15) * sizeof(float));
    m->cap_logit_rows = m->logits_mem ? N : 0;
    return m->logits_mem ? 0 : -1;
}

/* gpt2_forward, gpt2_forward_temp and gpt2_forward_hidden: lm_head 0 stops after the final
 * LayerNorm; inv_temp scales the logits (exactly 1 for plain forward: same numerics). */
static int forward_impl(gpt2 *m, const int32_t *tokens, const int32_t *targets, const float *mask, int B, int T,
                        float inv_temp, int lm_head, float *loss, char *err, size_t errlen)
{
    const gpt2_config *c = &m->cfg;
    if (B < 1 || T < 1) return fio_fail(err, errlen, "forward: empty batch (B=%d, T=%d)", B, T);
    if (T > c->n_positions) return fio_fail(err, errlen, "forward: T=%d is longer than n_positions=%d", T, c->n_positions);
    const int N = B * T, C = c->n_embd, V = c->vocab_size, NH = c->n_head, L = c->n_layer, nt = m->nthreads;
    for (int i = 0; i < N; i++) {
        if (tokens[i] < 0 || tokens[i] >= V)
            return fio_fail(err, errlen, "forward: token %d at position %d is outside the vocabulary (0..%d)", tokens[i], i,
                         V - 1);
        if (targets && (targets[i] < 0 || targets[i] >= V))
            return fio_fail(err, errlen, "forward: target %d at position %d is outside the vocabulary (0..%d)",
                         targets[i], i, V - 1);
    }
    if (ensure_acts(m, B, T) || (lm_head && ensure_logits(m, (size_t)N)))
        return fio_fail(err, errlen, "forward: out of memory for activations (B=%d, T=%d)", B, T);
    m->a.logits = lm_head ? m->logits_mem : NULL;
    m->inv_temp = inv_temp;
    m->B = B;
    m->T = T;
    memcpy(m->tok_copy, tokens, (size_t)N * sizeof *tokens);
    if (targets) memcpy(m->tgt_copy, targets, (size_t)N * sizeof *targets);
    if (mask) memcpy(m->mask_copy, mask, (size_t)N * sizeof *mask);
    else
        for (int i = 0; i < N; i++) m->mask_copy[i] = 1.0f;
    m->targets = targets ? m->tgt_copy : NULL;

    const gpt2_tensor *tb = m->table;
    float *P = m->params;
    acts *a = &m->a;
    const size_t att_sz = (size_t)B * NH * T * T;
    op_encoder_fwd(a->encoded, m->tok_copy, P + tb[GPT2_WTE].offset, P + tb[GPT2_WPE].offset, B, T, C);
    const float *x = a->encoded;
    for (int l = 0; l < L; l++) {
        size_t nc = (size_t)l * N * C;
        float *ln1 = a->ln1 + nc, *qkv = a->qkv + 3 * nc, *atty = a->atty + nc, *att = a->att + (size_t)l * att_sz;
        float *res2 = a->res2 + nc, *ln2 = a->ln2 + nc, *fch = a->fch + 4 * nc, *fchg = a->fch_gelu + 4 * nc;
        float *res3 = a->res3 + nc;
        op_layernorm_fwd(ln1, a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, x,
                         P + gpt2_off(tb, GPT2_LN1W, l), P + gpt2_off(tb, GPT2_LN1B, l), N, C,
                         c->ln_eps);
        op_matmul_fwd(qkv, ln1, P + gpt2_off(tb, GPT2_QKVW, l),
                      P + gpt2_off(tb, GPT2_QKVB, l), N, C, 3 * C, nt);
        op_attention_fwd(atty, att, qkv, B, T, C, NH);
        /* res2 = x + atty @ Wproj + b: the projection lands in res2, then x is added */
        op_matmul_fwd(res2, atty, P + gpt2_off(tb, GPT2_ATTPROJW, l),
                      P + gpt2_off(tb, GPT2_ATTPROJB, l), N, C, C, nt);
        op_residual_fwd(res2, res2, x, (long)N * C);
        op_layernorm_fwd(ln2, a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, res2,
                         P + gpt2_off(tb, GPT2_LN2W, l), P + gpt2_off(tb, GPT2_LN2B, l), N, C,
                         c->ln_eps);
        op_matmul_fwd(fch, ln2, P + gpt2_off(tb, GPT2_FCW, l),
                      P + gpt2_off(tb, GPT2_FCB, l), N, C, 4 * C, nt);
        op_gelu_fwd(fchg, fch, (long)N * 4 * C);
        op_matmul_fwd(res3, fchg, P + gpt2_off(tb, GPT2_FCPROJW, l),
                      P + gpt2_off(tb, GPT2_FCPROJB, l), N, 4 * C, C, nt);
        op_residual_fwd(res3, res3, res2, (long)N * C);
        x = res3;
    }
    op_layernorm_fwd(a->lnf, a->lnf_mean, a->lnf_rstd, x, P + tb[GPT2_LNFW].offset, P + tb[GPT2_LNFB].offset, N, C,
                     c->ln_eps);
    if (!lm_head) {
        if (loss) *loss = 0;
        return 0;
    }
    /* tied LM head: logits (N,V) = lnf (N,C) @ wte^T (times 1/temperature) */
    mm_sgemm(0, 1, N, V, C, inv_temp, a->lnf, C, P + tb[GPT2_WTE].offset, C, 0.0f, a->logits, V, nt);
    op_logprob_fwd(targets ? a->logp : NULL, a->lse, a->logits, m->targets, N, V);
    float l = 0;
    if (targets) {
        double s = 0, w = 0;
        for (int i = 0; i < N; i++) {
            s += -(double)a->logp[i] * m->mask_copy[i];
            w += m->mask_copy[i];
        }
        l = w > 0 ? (float)(s / w) : 0.0f;
    }
    if (loss) *loss = l;
    return 0;
}

int gpt2_forward(gpt2 *m, const int32_t *tokens, const int32_t *targets, const float *mask, int B, int T,
                 float *loss, char *err, size_t errlen)
{
    return forward_impl(m, tokens, targets, mask, B, T, 1.0f, 1, loss, err, errlen);
}

int gpt2_forward_temp(gpt2 *m, const int32_t *tokens, const int32_t *targets, const float *mask, int B, int T,
                      float temperature, float *loss, char *err, size_t errlen)
{
    if (!(temperature > 0) || !isfinite(temperature))
        return fio_fail(err, errlen, "forward: temperature %g must be a positive number", (double)temperature);
    return forward_impl(m, tokens, targets, mask, B, T, 1.0f / temperature, 1, loss, err, errlen);
}

int gpt2_forward_hidden(gpt2 *m, const int32_t *tokens, int B, int T, char *err, size_t errlen)
{
    return forward_impl(m, tokens, NULL, NULL, B, T, 1.0f, 0, NULL, err, errlen);
}

int gpt2_backward(gpt2 *m, const float *dlogp, const float *dhidden, char *err, size_t errlen)
{
    if (!m->B) return fio_fail(err, errlen, "backward: no forward pass to go back through");
    const gpt2_config *c = &m->cfg;
    const int B = m->B, T = m->T, N = B * T, C = c->n_embd, V = c->vocab_size, NH = c->n_head, L = c->n_layer,
              nt = m->nthreads;
    const gpt2_tensor *tb = m->table;
    float *P = m->params, *G = m->grads;
    acts *a = &m->a;
    const size_t att_sz = (size_t)B * NH * T * T;

    /* LM head */
    memset(a->dbuf, 0, (size_t)N * C * sizeof(float)); /* d lnf */
    if (m->targets && (dlogp || m->mask_copy)) {
        if (!dlogp) {
            double w = 0;
            for (int i = 0; i < N; i++) w += m->mask_copy[i];
            for (int i = 0; i < N; i++) a->dlogp[i] = w > 0 ? (float)(-m->mask_copy[i] / w) : 0.0f;
            dlogp = a->dlogp;
        }
        op_logprob_bwd(a->logits, a->lse, dlogp, m->targets, N, V); /* logits now hold dlogits */
        /* logits = inv_temp * lnf @ wte^T: the factor goes into both products (1 without temperature) */
        mm_sgemm(0, 0, N, C, V, m->inv_temp, a->logits, V, P + tb[GPT2_WTE].offset, C, 0.0f, a->dbuf, C, nt);
        mm_sgemm(1, 0, V, C, N, m->inv_temp, a->logits, V, a->lnf, C, 1.0f, G + tb[GPT2_WTE].offset, C, nt);
    }
    if (dhidden) op_residual_fwd(a->dbuf, a->dbuf, dhidden, (long)N * C);
    /* final LayerNorm: d(last residual) */
    const float *xL = L > 0 ? a->res3 + (size_t)(L - 1) * N * C : a->encoded;
    memset(a->dres, 0, (size_t)N * C * sizeof(float));
    op_layernorm_bwd(a->dres, G + tb[GPT2_LNFW].offset, G + tb[GPT2_LNFB].offset, a->dbuf, xL,
                     P + tb[GPT2_LNFW].offset, a->lnf_mean, a->lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--) {
        size_t nc = (size_t)l * N * C;
        const float *x = l == 0 ? a->encoded : a->res3 + (size_t)(l - 1) * N * C;
        float *ln1 = a->ln1 + nc, *qkv = a->qkv + 3 * nc, *atty = a->atty + nc, *att = a->att + (size_t)l * att_sz;
        float *res2 = a->res2 + nc, *ln2 = a->ln2 + nc, *fch = a->fch + 4 * nc, *fchg = a->fch_gelu + 4 * nc;
        /* MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2)))) ; dres is d res3 */
        op_matmul_bwd(a->dfch_gelu, G + gpt2_off(tb, GPT2_FCPROJW, l),
                      G + gpt2_off(tb, GPT2_FCPROJB, l), a->dres, fchg,
                      P + gpt2_off(tb, GPT2_FCPROJW, l), N, 4 * C, C, nt);
        op_gelu_bwd(a->dfch, fch, a->dfch_gelu, (long)N * 4 * C);
        op_matmul_bwd(a->dbuf, G + gpt2_off(tb, GPT2_FCW, l),
                      G + gpt2_off(tb, GPT2_FCB, l), a->dfch, ln2,
                      P + gpt2_off(tb, GPT2_FCW, l), N, C, 4 * C, nt);
        op_layernorm_bwd(a->dres, G + gpt2_off(tb, GPT2_LN2W, l), G + gpt2_off(tb, GPT2_LN2B, l),
                         a->dbuf, res2, P + gpt2_off(tb, GPT2_LN2W, l), a->ln2_mean + (size_t)l * N,
                         a->ln2_rstd + (size_t)l * N, N, C);
        /* attention: res2 = x + attproj(attention(qkv(ln1(x)))) ; dres is now d res2 */
        op_matmul_bwd(a->dbuf, G + gpt2_off(tb, GPT2_ATTPROJW, l),
                      G + gpt2_off(tb, GPT2_ATTPROJB, l), a->dres, atty,
                      P + gpt2_off(tb, GPT2_ATTPROJW, l), N, C, C, nt);
        op_attention_bwd(a->dqkv, a->dbuf, qkv, att, B, T, C, NH, a->attscratch);
        op_matmul_bwd(a->dbuf, G + gpt2_off(tb, GPT2_QKVW, l),
                      G + gpt2_off(tb, GPT2_QKVB, l), a->dqkv, ln1,
                      P + gpt2_off(tb, GPT2_QKVW, l), N, C, 3 * C, nt);
        op_layernorm_bwd(a->dres, G + gpt2_off(tb, GPT2_LN1W, l), G + gpt2_off(tb, GPT2_LN1B, l),
                         a->dbuf, x, P + gpt2_off(tb, GPT2_LN1W, l), a->ln1_mean + (size_t)l * N,
                         a->ln1_rstd + (size_t)l * N, N, C);
    }
    op_encoder_bwd(G + tb[GPT2_WTE].offset, G + tb[GPT2_WPE].offset, a->dres, m->tok_copy, B, T, C);
    return 0;
}
