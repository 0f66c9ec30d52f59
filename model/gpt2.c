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

/* bf16 copies of the products' inputs (GPT2_PREC_BF16): forward ones kept for the backward, then
 * backward scratch; one allocation (mem16), sized with the fp32 activations */
typedef struct {
    uint16_t *ln1, *qkv, *atty, *att, *ln2, *fchg, *lnf; /* as the fp32 arrays of the same names */
    uint16_t *dout;                                      /* (N,4C): a product's upstream gradient */
    uint16_t *dS;                                        /* (B,NH,T,T) */
    float *dS32;                                         /* (B,NH,T,T) fp32 */
} acts16;

/* the bf16 weight views (of one bf16 copy of the parameter block): per layer and matrix a forward
 * (W) and a backward (W^T) view, then wte^T (LM head forward) and wte (its backward) */
enum { BW_QKV, BW_ATTPROJ, BW_FC, BW_FCPROJ, BW_MATS };
static const int bw_tensor[BW_MATS] = {GPT2_QKVW, GPT2_ATTPROJW, GPT2_FCW, GPT2_FCPROJW};

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
    /* precision (see gpt2.h) */
    gpt2_precision prec;
    char prec_note[192];
    mm_ctx *mmc;          /* the bf16 engine (bf16 only) */
    uint16_t *w16;        /* bf16 copy of the whole parameter block (bf16 only) */
    mm_bweight **bw;      /* L * BW_MATS * 2 + 2 views into w16 (index: bw_index) */
    uint64_t wver;        /* bumped by gpt2_weights_changed */
    uint64_t wver16;      /* the version w16 holds (0: never made) */
    void *mem16;          /* acts16's block */
    acts16 a16;
    uint16_t *dlog16;     /* (cap_dlog16_rows, V): bf16 dlogits */
    size_t cap_dlog16_rows;
    int grads_zero;       /* the gradient block is all zero (gpt2_zero_grad, no backward since): bf16's
                           * weight-gradient products then write it (beta 0) instead of adding to it */
    gpt2_derived decode;  /* the decoder's copy of the weights (model/kv.c) */
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
    m->wver = 1;
    m->grads_zero = 1; /* calloc'ed below */
    snprintf(m->prec_note, sizeof m->prec_note, "fp32 products (BLIS)");
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

static void free_bf16(gpt2 *m)
{
    if (m->bw)
        for (int i = 0; i < m->cfg.n_layer * BW_MATS * 2 + 2; i++) mm_bweight_free(m->bw[i]);
    free(m->bw);
    mm_ctx_free(m->mmc);
    free(m->w16);
    free(m->mem16);
    free(m->dlog16);
    m->bw = NULL;
    m->mmc = NULL;
    m->w16 = NULL;
    m->mem16 = NULL;
    m->dlog16 = NULL;
    m->cap_dlog16_rows = 0;
    m->wver16 = 0;
    memset(&m->a16, 0, sizeof m->a16);
}

void gpt2_free(gpt2 *m)
{
    if (!m) return;
    free_bf16(m);
    if (m->decode.free_fn) m->decode.free_fn(m->decode.data);
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
    gpt2_weights_changed(m);
}

/* ---- precision ------------------------------------------------------------------------------------ */

int gpt2_precision_parse(const char *name, gpt2_precision *out)
{
    if (strcmp(name, "fp32") == 0) *out = GPT2_PREC_FP32;
    else if (strcmp(name, "bf16") == 0) *out = GPT2_PREC_BF16;
    else return -1;
    return 0;
}

const char *gpt2_precision_name(gpt2_precision p) { return p == GPT2_PREC_BF16 ? "bf16" : "fp32"; }
gpt2_precision gpt2_precision_of(const gpt2 *m) { return m->prec; }
const char *gpt2_precision_note(const gpt2 *m) { return m->prec_note; }
void gpt2_weights_changed(gpt2 *m) { m->wver++; }
uint64_t gpt2_weights_version(const gpt2 *m) { return m->wver; }
gpt2_derived *gpt2_decode_copy(gpt2 *m) { return &m->decode; }

static int make_views(gpt2 *m);

gpt2_precision gpt2_set_precision(gpt2 *m, gpt2_precision p)
{
    if (p == m->prec) return m->prec;
    free_bf16(m);
    m->prec = GPT2_PREC_FP32;
    snprintf(m->prec_note, sizeof m->prec_note, "fp32 products (BLIS)");
    if (p != GPT2_PREC_BF16) return m->prec;
    char err[160];
    const size_t nbw = (size_t)m->cfg.n_layer * BW_MATS * 2 + 2;
    if (mm_ctx_create(&m->mmc, err, sizeof err)) {
        snprintf(m->prec_note, sizeof m->prec_note, "bf16 requested, running fp32: %s", err);
        return m->prec;
    }
    m->bw = calloc(nbw, sizeof *m->bw);
    m->w16 = aligned_alloc(64, (m->nparams * 2 + 63) & ~(size_t)63);
    if (!m->bw || !m->w16 || make_views(m)) {
        snprintf(m->prec_note, sizeof m->prec_note, "bf16 requested, running fp32: %s",
                 m->bw && m->w16 ? mm_ctx_error(m->mmc) : "out of memory");
        free_bf16(m);
        return m->prec;
    }
    m->prec = GPT2_PREC_BF16;
    m->cap_rows = 0; /* the activations are re-sized with their bf16 copies on the next forward */
    snprintf(m->prec_note, sizeof m->prec_note, "bf16 products, fp32 accumulation (%s)", mm_ctx_engine(m->mmc));
    return m->prec;
}

/* view i: layer l's matrix j forward (W) / backward (W^T), then the LM head's two */
static int bw_index(int L, int l, int j, int bwd) { return l < L ? (l * BW_MATS + j) * 2 + bwd : L * BW_MATS * 2 + bwd; }

/* the views into w16: each matrix is stored (R,S) row-major — layers' W (IN,OUT), wte (V,C); the
 * forward reads W and wte^T, the backward W^T and wte (tw 1: the view is of the transpose) */
static int make_views(gpt2 *m)
{
    const int L = m->cfg.n_layer, C = m->cfg.n_embd, V = m->cfg.vocab_size;
    const gpt2_tensor *tb = m->table;
    for (int l = 0; l <= L; l++)
        for (int j = 0; j < (l < L ? BW_MATS : 1); j++)
            for (int bwd = 0; bwd < 2; bwd++) {
                const int R = l < L ? tb[bw_tensor[j]].shape[0] : V, S = l < L ? tb[bw_tensor[j]].shape[1] : C;
                const int tw = l < L ? bwd : !bwd;
                const uint16_t *W = m->w16 + (l < L ? gpt2_off(tb, bw_tensor[j], l) : tb[GPT2_WTE].offset);
                if (mm_bweight_view(m->mmc, &m->bw[bw_index(L, l, j, bwd)], tw, tw ? S : R, tw ? R : S, W, S))
                    return -1;
            }
    return 0;
}

/* the bf16 copy of the weights, rebuilt when they changed (gpt2_weights_changed) */
static void refresh_bf16(gpt2 *m)
{
    if (m->wver16 == m->wver) return;
#pragma omp parallel num_threads(m->nthreads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const size_t i0 = m->nparams * (size_t)t / (size_t)nt, i1 = m->nparams * (size_t)(t + 1) / (size_t)nt;
#pragma omp simd
        for (size_t i = i0; i < i1; i++) m->w16[i] = mm_bf16(m->params[i]);
    }
    m->wver16 = m->wver;
}

void gpt2_zero_grad(gpt2 *m)
{
    memset(m->grads, 0, m->nparams * sizeof(float));
    m->grads_zero = 1;
}

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

/* the bf16 copies for N rows and att = B*NH*T*T attention entries per layer (with the fp32 ones) */
static int ensure_acts16(gpt2 *m, size_t N, size_t att)
{
    const size_t L = (size_t)m->cfg.n_layer, C = (size_t)m->cfg.n_embd;
    struct {
        void **p;
        size_t bytes;
    } parts[] = {
        {(void **)&m->a16.ln1, 2 * L * N * C},      {(void **)&m->a16.qkv, 2 * L * N * 3 * C},
        {(void **)&m->a16.atty, 2 * L * N * C},     {(void **)&m->a16.att, 2 * L * att},
        {(void **)&m->a16.ln2, 2 * L * N * C},      {(void **)&m->a16.fchg, 2 * L * N * 4 * C},
        {(void **)&m->a16.lnf, 2 * N * C},          {(void **)&m->a16.dout, 2 * N * 4 * C},
        {(void **)&m->a16.dS, 2 * att},             {(void **)&m->a16.dS32, 4 * att},
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) total += (parts[i].bytes + 63) & ~(size_t)63;
    free(m->mem16);
    m->mem16 = aligned_alloc(64, total);
    if (!m->mem16) {
        m->cap_rows = 0;
        return -1;
    }
    char *p = m->mem16;
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        *parts[i].p = p;
        p += (parts[i].bytes + 63) & ~(size_t)63;
    }
    return 0;
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
    return m->prec == GPT2_PREC_BF16 ? ensure_acts16(m, N, att) : 0;
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

/* the bf16 dlogits (N,V) of a bf16 backward through the LM head */
static int ensure_dlog16(gpt2 *m, size_t N)
{
    if (N <= m->cap_dlog16_rows) return 0;
    free(m->dlog16);
    m->dlog16 = aligned_alloc(64, ((N * (size_t)m->cfg.vocab_size * 2 + 63) & ~(size_t)63));
    m->cap_dlog16_rows = m->dlog16 ? N : 0;
    return m->dlog16 ? 0 : -1;
}

/* base + off for a bf16 copy that exists only in bf16 (NULL otherwise, never NULL + off) */
static uint16_t *at16(uint16_t *base, size_t off) { return base ? base + off : NULL; }

/* out (N,OUT) = inp @ W + b for layer l's matrix j, in the model's precision; in bf16 the input is
 * first rounded into inp16 (kept for the backward) */
static int linear_fwd(gpt2 *m, float *out, const float *inp, uint16_t *inp16, int j, int l, int N)
{
    const gpt2_tensor *tb = m->table;
    const int t = bw_tensor[j], IN = tb[t].shape[0], OUT = tb[t].shape[1];
    const float *W = m->params + gpt2_off(tb, t, l), *bias = m->params + gpt2_off(tb, t + 1, l); /* bias: next tensor */
    if (m->prec != GPT2_PREC_BF16) {
        op_matmul_fwd(out, inp, W, bias, N, IN, OUT, m->nthreads);
        return 0;
    }
    mm_to_bf16(inp16, inp, (long)N * IN);
    return op_matmul_fwd_bf16(m->mmc, out, inp16, m->bw[bw_index(m->cfg.n_layer, l, j, 0)], bias, N, IN, OUT,
                              m->nthreads);
}

/* its backward: dinp = dout @ W^T, dW += inp^T @ dout, db += colsum(dout) */
static int linear_bwd(gpt2 *m, float *dinp, const float *dout, const float *inp, const uint16_t *inp16, int j, int l,
                      int N)
{
    const gpt2_tensor *tb = m->table;
    const int t = bw_tensor[j], IN = tb[t].shape[0], OUT = tb[t].shape[1];
    float *dW = m->grads + gpt2_off(tb, t, l), *db = m->grads + gpt2_off(tb, t + 1, l);
    if (m->prec != GPT2_PREC_BF16) {
        op_matmul_bwd(dinp, dW, db, dout, inp, m->params + gpt2_off(tb, t, l), N, IN, OUT, m->nthreads);
        return 0;
    }
    return op_matmul_bwd_bf16(m->mmc, dinp, dW, db, dout, m->a16.dout, inp16,
                              m->bw[bw_index(m->cfg.n_layer, l, j, 1)], m->grads_zero ? 0.0f : 1.0f, N, IN, OUT,
                              m->nthreads);
}

/* one transformer block of the forward: x (N,C) -> layer l's res3 */
static int layer_fwd(gpt2 *m, int l, const float *x, int B, int T)
{
    const gpt2_config *c = &m->cfg;
    const int N = B * T, C = c->n_embd, NH = c->n_head;
    const gpt2_tensor *tb = m->table;
    const float *P = m->params;
    acts *a = &m->a;
    acts16 *h = &m->a16;
    const size_t nc = (size_t)l * N * C, att_off = (size_t)l * B * NH * T * T;
    float *ln1 = a->ln1 + nc, *qkv = a->qkv + 3 * nc, *atty = a->atty + nc, *att = a->att + att_off;
    float *res2 = a->res2 + nc, *ln2 = a->ln2 + nc, *fch = a->fch + 4 * nc, *fchg = a->fch_gelu + 4 * nc;
    float *res3 = a->res3 + nc;
    op_layernorm_fwd(ln1, a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, x, P + gpt2_off(tb, GPT2_LN1W, l),
                     P + gpt2_off(tb, GPT2_LN1B, l), N, C, c->ln_eps);
    if (linear_fwd(m, qkv, ln1, at16(h->ln1, nc), BW_QKV, l, N)) return -1;
    if (m->prec == GPT2_PREC_BF16) {
        mm_to_bf16(h->qkv + 3 * nc, qkv, (long)N * 3 * C);
        if (op_attention_fwd_bf16(m->mmc, atty, att, h->att + att_off, h->qkv + 3 * nc, B, T, C, NH, m->nthreads))
            return -1;
    } else
        op_attention_fwd(atty, att, qkv, B, T, C, NH);
    /* res2 = x + atty @ Wproj + b: the projection lands in res2, then x is added */
    if (linear_fwd(m, res2, atty, at16(h->atty, nc), BW_ATTPROJ, l, N)) return -1;
    op_residual_fwd(res2, res2, x, (long)N * C);
    op_layernorm_fwd(ln2, a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, res2,
                     P + gpt2_off(tb, GPT2_LN2W, l), P + gpt2_off(tb, GPT2_LN2B, l), N, C, c->ln_eps);
    if (linear_fwd(m, fch, ln2, at16(h->ln2, nc), BW_FC, l, N)) return -1;
    op_gelu_fwd(fchg, fch, (long)N * 4 * C);
    if (linear_fwd(m, res3, fchg, at16(h->fchg, 4 * nc), BW_FCPROJ, l, N)) return -1;
    op_residual_fwd(res3, res3, res2, (long)N * C);
    return 0;
}

/* gpt2_forward, gpt2_forward_temp and gpt2_forward_hidden: lm_head 0 stops after the final
 * LayerNorm; inv_temp scales the logits (exactly 1 for plain forward: same numerics). */
static int forward_impl(gpt2 *m, const int32_t *tokens, const int32_t *targets, const float *mask, int B, int T,
                        float inv_temp, int lm_head, float *loss, char *err, size_t errlen)
{
    const gpt2_config *c = &m->cfg;
    if (B < 1 || T < 1) return fio_fail(err, errlen, "forward: empty batch (B=%d, T=%d)", B, T);
    if (T > c->n_positions) return fio_fail(err, errlen, "forward: T=%d is longer than n_positions=%d", T, c->n_positions);
    const int N = B * T, C = c->n_embd, V = c->vocab_size, L = c->n_layer, nt = m->nthreads;
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
    if (m->prec == GPT2_PREC_BF16) refresh_bf16(m);
    op_encoder_fwd(a->encoded, m->tok_copy, P + tb[GPT2_WTE].offset, P + tb[GPT2_WPE].offset, B, T, C);
    const float *x = a->encoded;
    for (int l = 0; l < L; l++) {
        if (layer_fwd(m, l, x, B, T)) return fio_fail(err, errlen, "forward: %s", mm_ctx_error(m->mmc));
        x = a->res3 + (size_t)l * N * C;
    }
    op_layernorm_fwd(a->lnf, a->lnf_mean, a->lnf_rstd, x, P + tb[GPT2_LNFW].offset, P + tb[GPT2_LNFB].offset, N, C,
                     c->ln_eps);
    if (!lm_head) {
        if (loss) *loss = 0;
        return 0;
    }
    /* tied LM head: logits (N,V) = lnf (N,C) @ wte^T (times 1/temperature) */
    if (m->prec == GPT2_PREC_BF16) {
        mm_to_bf16(m->a16.lnf, a->lnf, (long)N * C);
        if (mm_bgemm_w(m->mmc, N, inv_temp, m->a16.lnf, C, m->bw[bw_index(L, L, 0, 0)], NULL, 0.0f, a->logits, V, nt))
            return fio_fail(err, errlen, "forward: %s", mm_ctx_error(m->mmc));
    } else
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

/* one transformer block of the backward: dres holds d(layer l's res3) and becomes d(its input x) */
static int layer_bwd(gpt2 *m, int l, int B, int T)
{
    const gpt2_config *c = &m->cfg;
    const int N = B * T, C = c->n_embd, NH = c->n_head;
    const gpt2_tensor *tb = m->table;
    float *P = m->params, *G = m->grads;
    acts *a = &m->a;
    acts16 *h = &m->a16;
    const size_t nc = (size_t)l * N * C, att_off = (size_t)l * B * NH * T * T;
    const float *x = l == 0 ? a->encoded : a->res3 + (size_t)(l - 1) * N * C;
    float *ln1 = a->ln1 + nc, *qkv = a->qkv + 3 * nc, *atty = a->atty + nc, *att = a->att + att_off;
    float *res2 = a->res2 + nc, *ln2 = a->ln2 + nc, *fch = a->fch + 4 * nc, *fchg = a->fch_gelu + 4 * nc;
    /* MLP: res3 = res2 + fcproj(gelu(fc(ln2(res2)))) ; dres is d res3 */
    if (linear_bwd(m, a->dfch_gelu, a->dres, fchg, at16(h->fchg, 4 * nc), BW_FCPROJ, l, N)) return -1;
    op_gelu_bwd(a->dfch, fch, a->dfch_gelu, (long)N * 4 * C);
    if (linear_bwd(m, a->dbuf, a->dfch, ln2, at16(h->ln2, nc), BW_FC, l, N)) return -1;
    op_layernorm_bwd(a->dres, G + gpt2_off(tb, GPT2_LN2W, l), G + gpt2_off(tb, GPT2_LN2B, l), a->dbuf, res2,
                     P + gpt2_off(tb, GPT2_LN2W, l), a->ln2_mean + (size_t)l * N, a->ln2_rstd + (size_t)l * N, N, C);
    /* attention: res2 = x + attproj(attention(qkv(ln1(x)))) ; dres is now d res2 */
    if (linear_bwd(m, a->dbuf, a->dres, atty, at16(h->atty, nc), BW_ATTPROJ, l, N)) return -1;
    if (m->prec == GPT2_PREC_BF16) {
        if (op_attention_bwd_bf16(m->mmc, a->dqkv, a->dbuf, h->dout, h->qkv + 3 * nc, att, h->att + att_off,
                                  h->dS32, h->dS, B, T, C, NH, m->nthreads))
            return -1;
    } else
        op_attention_bwd(a->dqkv, a->dbuf, qkv, att, B, T, C, NH, a->attscratch);
    if (linear_bwd(m, a->dbuf, a->dqkv, ln1, at16(h->ln1, nc), BW_QKV, l, N)) return -1;
    op_layernorm_bwd(a->dres, G + gpt2_off(tb, GPT2_LN1W, l), G + gpt2_off(tb, GPT2_LN1B, l), a->dbuf, x,
                     P + gpt2_off(tb, GPT2_LN1W, l), a->ln1_mean + (size_t)l * N, a->ln1_rstd + (size_t)l * N, N, C);
    return 0;
}

/* the tied LM head's backward: logits hold dlogits; dbuf = d lnf, dwte += ... (both scaled by
 * inv_temp, the factor of the forward's product) */
static int lm_head_bwd(gpt2 *m, int N)
{
    const int C = m->cfg.n_embd, V = m->cfg.vocab_size, L = m->cfg.n_layer, nt = m->nthreads;
    const gpt2_tensor *tb = m->table;
    acts *a = &m->a;
    float *dwte = m->grads + tb[GPT2_WTE].offset;
    if (m->prec != GPT2_PREC_BF16) {
        mm_sgemm(0, 0, N, C, V, m->inv_temp, a->logits, V, m->params + tb[GPT2_WTE].offset, C, 0.0f, a->dbuf, C, nt);
        mm_sgemm(1, 0, V, C, N, m->inv_temp, a->logits, V, a->lnf, C, 1.0f, dwte, C, nt);
        return 0;
    }
    if (ensure_dlog16(m, (size_t)N)) return -1;
    mm_to_bf16(m->dlog16, a->logits, (long)N * V);
    const mm_bshape s = {1, 0, V, C, N, V, C, C, 0, 0, 0, 0, 0, 0, 0, 0};
    if (mm_bgemm_w(m->mmc, N, m->inv_temp, m->dlog16, V, m->bw[bw_index(L, L, 0, 1)], NULL, 0.0f, a->dbuf, C, nt) ||
        mm_bgemm(m->mmc, &s, m->inv_temp, m->dlog16, m->a16.lnf, m->grads_zero ? 0.0f : 1.0f, dwte, nt))
        return -1;
    return 0;
}

static int backward_impl(gpt2 *m, const float *dlogp, const float *dhidden, char *err, size_t errlen)
{
    if (!m->B) return fio_fail(err, errlen, "backward: no forward pass to go back through");
    const gpt2_config *c = &m->cfg;
    const int B = m->B, T = m->T, N = B * T, C = c->n_embd, V = c->vocab_size, L = c->n_layer;
    const gpt2_tensor *tb = m->table;
    float *P = m->params, *G = m->grads;
    acts *a = &m->a;
    if (m->prec == GPT2_PREC_BF16) refresh_bf16(m); /* a no-op unless the weights changed since the forward */
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
        if (lm_head_bwd(m, N)) return fio_fail(err, errlen, "backward: %s", m->mmc ? mm_ctx_error(m->mmc) : "out of memory");
    }
    if (dhidden) op_residual_fwd(a->dbuf, a->dbuf, dhidden, (long)N * C);
    /* final LayerNorm: d(last residual) */
    const float *xL = L > 0 ? a->res3 + (size_t)(L - 1) * N * C : a->encoded;
    memset(a->dres, 0, (size_t)N * C * sizeof(float));
    op_layernorm_bwd(a->dres, G + tb[GPT2_LNFW].offset, G + tb[GPT2_LNFB].offset, a->dbuf, xL,
                     P + tb[GPT2_LNFW].offset, a->lnf_mean, a->lnf_rstd, N, C);
    for (int l = L - 1; l >= 0; l--)
        if (layer_bwd(m, l, B, T)) return fio_fail(err, errlen, "backward: %s", mm_ctx_error(m->mmc));
    op_encoder_bwd(G + tb[GPT2_WTE].offset, G + tb[GPT2_WPE].offset, a->dres, m->tok_copy, B, T, C);
    return 0;
}

int gpt2_backward(gpt2 *m, const float *dlogp, const float *dhidden, char *err, size_t errlen)
{
    const int rc = backward_impl(m, dlogp, dhidden, err, errlen);
    m->grads_zero = 0; /* written (or partly, on failure): the next backward adds */
    return rc;
}
