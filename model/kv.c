/* kv.c — KV-cache inference and sampling for GPT-2. See kv.h. */
#include "kv.h"
#include "rng.h"

#include "fastmath.h"
#include "fileio.h"
#include "mm.h"
#include "cpu.h"
#include "ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define KV_PAD 16 /* floats that pad the MLP's hidden rows apart in decode steps (see kv_layers) */

struct gpt2_kv {
    int B, maxT, L, C, NH, V;
    float *k, *v; /* (L, B, maxT, C) */
    int *len;     /* (B) */
    int cap_rows;
    float *x, *ln, *mean, *rstd, *qkv, *atty, *tmp, *fch, *lnsel, *attbuf;
    int *pos, *sel;
    int att_threads;  /* attbuf holds maxT floats for this many threads */
    gpt2_weights w;   /* decode weights, resolved: GPT2_W_F32 or GPT2_W_BF16 */
    const mm_weight *wd; /* this step's: the model's bf16 copy (kv_dw.wd), or NULL (fp32 parameters) */
};

/* the bf16 decode weights, one copy per model and weights version (kept in gpt2_decode_copy) */
typedef struct {
    uint16_t *w16;  /* the matrices, each as the decode kernels read it */
    mm_weight *wd;  /* (L * 4 + 1): qkv, attproj, fc, fcproj per layer, then the LM head */
} kv_dw;

int gpt2_kv_create(gpt2_kv **out, const gpt2 *m, int B, int maxT, char *err, size_t errlen)
{
    const gpt2_config *c = gpt2_cfg(m);
    if (B < 1 || maxT < 1) return fio_fail(err, errlen, "kv cache: B and maxT must be positive");
    if (maxT > c->n_positions)
        return fio_fail(err, errlen, "kv cache: %d tokens exceed the model's n_positions (%d)", maxT, c->n_positions);
    gpt2_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return fio_fail(err, errlen, "kv cache: out of memory");
    kv->B = B;
    kv->maxT = maxT;
    kv->L = c->n_layer;
    kv->C = c->n_embd;
    kv->NH = c->n_head;
    kv->V = c->vocab_size;
    size_t n = (size_t)kv->L * B * maxT * kv->C;
    kv->k = malloc(n * sizeof(float));
    kv->v = malloc(n * sizeof(float));
    kv->len = calloc((size_t)B, sizeof *kv->len);
    if (!kv->k || !kv->v || !kv->len) {
        gpt2_kv_free(kv);
        return fio_fail(err, errlen, "kv cache: out of memory for %d x %d tokens", B, maxT);
    }
    *out = kv;
    return 0;
}

static void free_rows(gpt2_kv *kv)
{
    free(kv->x);
    free(kv->ln);
    free(kv->mean);
    free(kv->rstd);
    free(kv->qkv);
    free(kv->atty);
    free(kv->tmp);
    free(kv->fch);
    free(kv->lnsel);
    free(kv->attbuf);
    free(kv->pos);
    free(kv->sel);
}

void gpt2_kv_free(gpt2_kv *kv)
{
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->len);
    free_rows(kv);
    free(kv);
}

void gpt2_kv_reset(gpt2_kv *kv) { memset(kv->len, 0, (size_t)kv->B * sizeof *kv->len); }
int gpt2_kv_len(const gpt2_kv *kv, int b) { return kv->len[b]; }

static int ensure_rows(gpt2_kv *kv, int R, int nthreads)
{
    if (R <= kv->cap_rows && nthreads <= kv->att_threads) return 0;
    free_rows(kv);
    size_t r = (size_t)R, C = (size_t)kv->C;
    const int nt = nthreads;
    kv->x = malloc(r * C * 4);
    kv->ln = malloc(r * C * 4);
    kv->mean = malloc(r * 4);
    kv->rstd = malloc(r * 4);
    kv->qkv = malloc(r * 3 * C * 4);
    kv->atty = malloc(r * C * 4);
    kv->tmp = malloc(r * C * 4);
    kv->fch = malloc(r * (4 * C + KV_PAD) * 4);
    kv->lnsel = malloc(r * C * 4);
    kv->attbuf = malloc((size_t)nt * (size_t)kv->maxT * 4);
    kv->pos = malloc(r * sizeof(int));
    kv->sel = malloc(r * sizeof(int));
    if (!kv->x || !kv->ln || !kv->mean || !kv->rstd || !kv->qkv || !kv->atty || !kv->tmp || !kv->fch || !kv->lnsel ||
        !kv->attbuf || !kv->pos || !kv->sel) {
        kv->cap_rows = 0;
        return -1;
    }
    kv->cap_rows = R;
    kv->att_threads = nt;
    return 0;
}

/* ---- one step ------------------------------------------------------------------------------------
 * A call of up to KV_DECODE_ROWS rows (a decode step: one row per sequence) runs as ONE parallel
 * region: each thread computes its columns of every matrix product with the decode kernels
 * (mm_decode_nn / _nt), the other ops are shared out by rows or (row, head), with a barrier
 * between ops; that saves ~170 fork/joins per step, which matter at 2 threads. Larger calls
 * (prompts) run the same sequence of ops, each op its own parallel region, the products in BLIS. */
#define KV_DECODE_ROWS 64 /* the decode kernels take rows in groups of 8 against weights in L1/L2; up to
                           * here they beat an op-by-op step (a fork/join per op, fp32 weights in BLIS),
                           * which at 2 threads was slower than 1 thread for 17-64 rows */

enum { KV_QKV, KV_ATTPROJ, KV_FC, KV_FCPROJ, KV_MATS };
static const int kv_mat_tensor[KV_MATS] = {GPT2_QKVW, GPT2_ATTPROJW, GPT2_FCW, GPT2_FCPROJW};

/* what the ops of one step share; each thread of the decode region holds its own copy (l changes) */
typedef struct {
    gpt2_kv *kv;
    const float *P;
    const gpt2_tensor *tb;
    const int *seq, *sel;
    const int32_t *tok;
    int l, decode, nt;
    float eps, scale;
} kv_step;

/* matrix w of layer l (w == KV_MATS: the LM head, wte read transposed): the bf16 copy in decode
 * steps when there is one, else the fp32 parameters */
static mm_weight kv_weight(const kv_step *s, int w)
{
    const gpt2_kv *kv = s->kv;
    if (s->decode && kv->wd) return kv->wd[w == KV_MATS ? kv->L * KV_MATS : s->l * KV_MATS + w];
    if (w == KV_MATS) return (mm_weight){s->P + s->tb[GPT2_WTE].offset, NULL, kv->C};
    const int t = kv_mat_tensor[w];
    return (mm_weight){s->P + gpt2_off(s->tb, t, s->l), NULL, s->tb[t].shape[1]};
}

/* a buffer the decode steps stream through: 2 MiB pages where the kernel gives them (fewer TLB
 * misses and page faults than 4 KiB pages over ~250 MB) */
static void *alloc_big(size_t bytes)
{
    const size_t huge = (size_t)2 << 20;
    void *p = NULL;
    if (posix_memalign(&p, huge, (bytes + huge - 1) / huge * huge)) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, (bytes + huge - 1) / huge * huge, MADV_HUGEPAGE);
#endif
    return p;
}

int gpt2_weights_parse(const char *name, gpt2_weights *out)
{
    for (int w = 0; gpt2_weights_names[w]; w++)
        if (strcmp(name, gpt2_weights_names[w]) == 0) {
            *out = (gpt2_weights)w;
            return 0;
        }
    return -1;
}

const char *const gpt2_weights_names[] = {[GPT2_W_F32] = "fp32", [GPT2_W_BF16] = "bf16", [GPT2_W_AUTO] = "auto", NULL};

const char *gpt2_weights_name(gpt2_weights w)
{
    return w == GPT2_W_BF16 || w == GPT2_W_AUTO ? gpt2_weights_names[w] : "fp32";
}

gpt2_weights gpt2_weights_resolve(gpt2_weights w)
{
    if (w != GPT2_W_AUTO) return w;
    const cpu_info *c = cpu_features();
    return c->avx512_bf16 || c->amx_usable ? GPT2_W_BF16 : GPT2_W_F32;
}

static void dw_free(void *p)
{
    kv_dw *d = p;
    if (!d) return;
    free(d->w16);
    free(d->wd);
    free(d);
}

/* the bf16 copy of m's matrices: the blocks' four, then the LM head (wte, read transposed) */
static kv_dw *dw_make(const gpt2 *m)
{
    const gpt2_config *c = gpt2_cfg(m);
    const int L = c->n_layer, C = c->n_embd, V = c->vocab_size, nt = gpt2_threads(m) > 0 ? gpt2_threads(m) : 1;
    const float *P = gpt2_params_const(m);
    const gpt2_tensor *tb = gpt2_param_table(m);
    size_t total = mm_bf16_size(C, V);
    for (int l = 0; l < L; l++)
        for (int q = 0; q < KV_MATS; q++) total += mm_bf16_size(tb[kv_mat_tensor[q]].shape[0], tb[kv_mat_tensor[q]].shape[1]);
    kv_dw *d = calloc(1, sizeof *d);
    if (d) d->w16 = alloc_big(total * sizeof *d->w16);
    if (d) d->wd = malloc(((size_t)L * KV_MATS + 1) * sizeof *d->wd);
    if (!d || !d->w16 || !d->wd) {
        dw_free(d);
        return NULL;
    }
    size_t at = 0;
    for (int l = 0; l < L; l++)
        for (int q = 0; q < KV_MATS; q++) {
            const gpt2_tensor *t = &tb[kv_mat_tensor[q]];
            d->wd[l * KV_MATS + q] = mm_bf16_pack_nn(d->w16 + at, P + gpt2_off(tb, kv_mat_tensor[q], l), t->shape[1],
                                                     t->shape[0], t->shape[1], nt);
            at += mm_bf16_size(t->shape[0], t->shape[1]);
        }
    d->wd[L * KV_MATS] = mm_bf16_pack_nt(d->w16 + at, P + tb[GPT2_WTE].offset, C, V, C, nt);
    return d;
}

int gpt2_decode_weights_ready(gpt2 *m, char *err, size_t errlen)
{
    gpt2_derived *slot = gpt2_decode_copy(m);
    if (slot->data && slot->version == gpt2_weights_version(m)) return 0;
    if (slot->data) dw_free(slot->data); /* before the new one: never two copies at once */
    slot->data = NULL;
    slot->free_fn = dw_free;
    if (!(slot->data = dw_make(m)))
        return fio_fail(err, errlen, "decode weights: out of memory for the bf16 copy (%zu MB)",
                        gpt2_num_params(m) * 2 >> 20);
    slot->version = gpt2_weights_version(m);
    return 0;
}

int gpt2_kv_set_weights(gpt2_kv *kv, const gpt2 *m, gpt2_weights w, char *err, size_t errlen)
{
    if (w != GPT2_W_F32 && w != GPT2_W_BF16 && w != GPT2_W_AUTO)
        return fio_fail(err, errlen, "kv cache: unknown weight type %d", (int)w);
    const gpt2_config *c = gpt2_cfg(m);
    if (c->n_layer != kv->L || c->n_embd != kv->C || c->vocab_size != kv->V)
        return fio_fail(err, errlen, "kv cache: the cache was made for another model shape");
    kv->w = gpt2_weights_resolve(w);
    return 0;
}

/* f(s, i) for i < n: shared by the decode region's threads, or in a parallel region of its own */
typedef void (*kv_task)(const kv_step *s, int i);
static void kv_for(const kv_step *s, int n, kv_task f)
{
    if (s->decode) {
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) f(s, i);
    } else {
#pragma omp parallel for schedule(static) num_threads(s->nt)
        for (int i = 0; i < n; i++) f(s, i);
    }
}

static void task_embed(const kv_step *s, int r)
{
    const gpt2_kv *kv = s->kv;
    const int C = kv->C;
    const float *e = s->P + s->tb[GPT2_WTE].offset + (size_t)s->tok[r] * C;
    const float *p = s->P + s->tb[GPT2_WPE].offset + (size_t)kv->pos[r] * C;
    for (int i = 0; i < C; i++) kv->x[(size_t)r * C + i] = e[i] + p[i];
}

static void task_ln(const kv_step *s, int r, int w, int b)
{
    const gpt2_kv *kv = s->kv;
    op_layernorm_row(kv->ln + (size_t)r * kv->C, kv->mean + r, kv->rstd + r, kv->x + (size_t)r * kv->C,
                     s->P + gpt2_off(s->tb, w, s->l), s->P + gpt2_off(s->tb, b, s->l), kv->C, s->eps);
}
static void task_ln1(const kv_step *s, int r) { task_ln(s, r, GPT2_LN1W, GPT2_LN1B); }
static void task_ln2(const kv_step *s, int r) { task_ln(s, r, GPT2_LN2W, GPT2_LN2B); }

/* the final LayerNorm of the rows whose logits are wanted (sel) */
static void task_lnf(const kv_step *s, int q)
{
    const gpt2_kv *kv = s->kv;
    op_layernorm_row(kv->lnsel + (size_t)q * kv->C, kv->mean + q, kv->rstd + q, kv->x + (size_t)s->sel[q] * kv->C,
                     s->P + s->tb[GPT2_LNFW].offset, s->P + s->tb[GPT2_LNFB].offset, kv->C, s->eps);
}

static float *kv_cache(const kv_step *s, int which) /* layer l's keys (0) or values (1): (B, maxT, C) */
{
    const gpt2_kv *kv = s->kv;
    return (which ? kv->v : kv->k) + (size_t)s->l * kv->B * kv->maxT * kv->C;
}

static void task_store_kv(const kv_step *s, int r)
{
    const gpt2_kv *kv = s->kv;
    const int C = kv->C;
    size_t at = ((size_t)s->seq[r] * kv->maxT + kv->pos[r]) * C;
    memcpy(kv_cache(s, 0) + at, kv->qkv + (size_t)r * 3 * C + C, (size_t)C * 4);
    memcpy(kv_cache(s, 1) + at, kv->qkv + (size_t)r * 3 * C + 2 * C, (size_t)C * 4);
}

/* attention of row r, head h (i = r * NH + h) over its sequence's positions 0..pos[r] */
static void task_attend(const kv_step *s, int i)
{
    const gpt2_kv *kv = s->kv;
    const int C = kv->C, NH = kv->NH, hs = C / NH, maxT = kv->maxT, r = i / NH, h = i % NH;
    float *a = kv->attbuf + (size_t)omp_get_thread_num() * maxT;
    const float *q = kv->qkv + (size_t)r * 3 * C + h * hs;
    const float *kb = kv_cache(s, 0) + (size_t)s->seq[r] * maxT * C + h * hs;
    const float *vb = kv_cache(s, 1) + (size_t)s->seq[r] * maxT * C + h * hs;
    const int p = kv->pos[r];
    float mx = -INFINITY;
    for (int t = 0; t <= p; t++) {
        float d = 0;
        for (int c = 0; c < hs; c++) d += q[c] * kb[(size_t)t * C + c];
        d *= s->scale;
        a[t] = d;
        mx = d > mx ? d : mx;
    }
    float sum = 0;
    for (int t = 0; t <= p; t++) sum += (a[t] = fm_expf(a[t] - mx));
    float inv = 1.0f / sum;
    float *o = kv->atty + (size_t)r * C + h * hs;
    for (int c = 0; c < hs; c++) o[c] = 0;
    for (int t = 0; t <= p; t++) {
        float w = a[t] * inv;
        for (int c = 0; c < hs; c++) o[c] += w * vb[(size_t)t * C + c];
    }
}

/* out (R, n) = inp (R, k) @ matrix w + its bias; then GELU (KV_GELU), or added into the residual
 * stream out (KV_RESID). Decoding: this thread's columns (the GELU too), then a barrier; row strides
 * ldo / ldi (otherwise n and k: BLIS's ops take contiguous rows). */
enum { KV_PLAIN, KV_GELU, KV_RESID };
static void kv_linear(const kv_step *s, int R, int w, float *out, int ldo, const float *inp, int ldi, int k, int n,
                      int mode)
{
    const mm_weight W = kv_weight(s, w);
    const float *bias = s->P + gpt2_off(s->tb, kv_mat_tensor[w] + 1, s->l); /* each weight's bias follows it */
    if (s->decode) {
        int j0, j1;
        mm_cols(n, omp_get_thread_num(), omp_get_num_threads(), &j0, &j1);
        mm_decode_nn(R, k, j0, j1, 1.0f, inp, ldi, W, mode == KV_RESID ? 1.0f : 0.0f, bias, out, ldo);
        if (mode == KV_GELU)
            for (int r = 0; r < R; r++)
                for (int j = j0; j < j1; j++) out[(size_t)r * ldo + j] = fm_gelu(out[(size_t)r * ldo + j]);
#pragma omp barrier
        return;
    }
    float *dst = mode == KV_RESID ? s->kv->tmp : out;
    op_matmul_fwd(dst, inp, W.f32, bias, R, k, n, s->nt);
    if (mode == KV_PLAIN) return;
#pragma omp parallel for schedule(static) num_threads(s->nt)
    for (int r = 0; r < R; r++) { /* the step's thread count, not OpenMP's global one */
        float *o = out + (size_t)r * n;
        const float *d = dst + (size_t)r * n;
        if (mode == KV_GELU)
            for (int j = 0; j < n; j++) o[j] = fm_gelu(o[j]);
        else
            for (int j = 0; j < n; j++) o[j] += d[j];
    }
}

/* the rows' way through the blocks and the LM head; run by every thread of the step's region */
static void kv_layers(kv_step *s, int R, int S, float *logits)
{
    gpt2_kv *kv = s->kv;
    const int C = kv->C, V = kv->V;
    /* the MLP's hidden rows (4C floats, 12 KiB at GPT-2's C) padded apart when decoding: see mm.c */
    const int ldf = s->decode ? 4 * C + KV_PAD : 4 * C;
    kv_for(s, R, task_embed);
    for (int l = 0; l < kv->L; l++) {
        s->l = l;
        kv_for(s, R, task_ln1);
        kv_linear(s, R, KV_QKV, kv->qkv, 3 * C, kv->ln, C, C, 3 * C, KV_PLAIN);
        kv_for(s, R, task_store_kv);
        kv_for(s, R * kv->NH, task_attend);
        kv_linear(s, R, KV_ATTPROJ, kv->x, C, kv->atty, C, C, C, KV_RESID);
        kv_for(s, R, task_ln2);
        kv_linear(s, R, KV_FC, kv->fch, ldf, kv->ln, C, C, 4 * C, KV_GELU);
        kv_linear(s, R, KV_FCPROJ, kv->x, C, kv->fch, ldf, 4 * C, C, KV_RESID);
    }
    if (S == 0) return;
    kv_for(s, S, task_lnf);
    const mm_weight W = kv_weight(s, KV_MATS);
    if (s->decode) {
        int j0, j1;
        mm_cols(V, omp_get_thread_num(), omp_get_num_threads(), &j0, &j1);
        mm_decode_nt(S, C, j0, j1, 1.0f, kv->lnsel, C, W, 0.0f, NULL, logits, V);
    } else {
        mm_sgemm(0, 1, S, V, C, 1.0f, kv->lnsel, C, W.f32, C, 0.0f, logits, V, s->nt);
    }
}

int gpt2_kv_forward(gpt2 *m, gpt2_kv *kv, int R, const int *seq, const int32_t *tok, const uint8_t *want,
                    float *logits, char *err, size_t errlen)
{
    if (R < 1) return 0;
    const int nt = gpt2_threads(m) > 0 ? gpt2_threads(m) : 1;
    if (ensure_rows(kv, R, nt)) return fio_fail(err, errlen, "kv forward: out of memory for %d rows", R);
    const gpt2_config *c = gpt2_cfg(m);
    if (c->n_layer != kv->L || c->n_embd != kv->C || c->n_head != kv->NH || c->vocab_size != kv->V)
        return fio_fail(err, errlen, "kv forward: the cache was made for another model shape");
    /* positions: each row goes after what its sequence holds, rows of a sequence in order */
    for (int r = 0; r < R; r++) {
        if (seq[r] < 0 || seq[r] >= kv->B) return fio_fail(err, errlen, "kv forward: row %d: sequence %d out of range", r, seq[r]);
        if (tok[r] < 0 || tok[r] >= kv->V) return fio_fail(err, errlen, "kv forward: row %d: token %d outside the vocabulary", r, tok[r]);
    }
    for (int r = 0; r < R; r++) {
        kv->pos[r] = kv->len[seq[r]]++;
        if (kv->pos[r] >= kv->maxT) {
            for (int q = 0; q <= r; q++) kv->len[seq[q]]--;
            return fio_fail(err, errlen, "kv forward: sequence %d is full (%d tokens)", seq[r], kv->maxT);
        }
    }
    kv->wd = NULL;
    if (kv->w == GPT2_W_BF16 && R <= KV_DECODE_ROWS) {
        if (gpt2_decode_weights_ready(m, err, errlen)) return -1;
        kv->wd = ((const kv_dw *)gpt2_decode_copy(m)->data)->wd;
    }
    /* the rows whose logits are wanted, in row order (kv->sel: R ints) */
    int S = 0;
    for (int r = 0; r < R; r++)
        if (!want || want[r]) kv->sel[S++] = r;
    const kv_step base = {kv, gpt2_params_const(m), gpt2_param_table(m), seq, kv->sel, tok, 0, R <= KV_DECODE_ROWS,
                          nt, c->ln_eps, 1.0f / sqrtf((float)(kv->C / kv->NH))};
    /* decoding: one region, all threads; otherwise a region of one thread whose ops open their own */
#pragma omp parallel num_threads(base.decode ? nt : 1)
    {
        kv_step s = base;
        kv_layers(&s, R, S, logits);
    }
    return 0;
}

/* ---- sampling ---------------------------------------------------------------------------------- */

gpt2_sample_opts gpt2_sample_defaults(void)
{
    gpt2_sample_opts o = {1.0f, 0, 1.0f, 64, -1, 1234, GPT2_W_F32, 0};
    return o;
}

/* scratch for drawing: unnormalised probabilities, candidate indices and sort pairs, V each */
typedef struct {
    float *prob;
    int32_t *idx;
    void *pairs;
} draw_buf;

/* quickselect: move the k largest prob[idx[.]] to idx[0..k) (in no order) */
static void top_k_select(const float *prob, int32_t *idx, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        float pivot = prob[idx[(lo + hi) / 2]];
        int i = lo, j = hi;
        while (i <= j) {
            while (prob[idx[i]] > pivot) i++;
            while (prob[idx[j]] < pivot) j--;
            if (i <= j) {
                int32_t t = idx[i];
                idx[i] = idx[j];
                idx[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

typedef struct {
    float p;
    int32_t i;
} prob_idx;

static int by_prob_desc(const void *a, const void *b)
{
    const prob_idx *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->i - y->i;
}

/* Draw one token from logits lg (V). Temperature 0: argmax. logp: ln of the chosen token's
 * probability under the distribution it was drawn from: softmax(lg / T) restricted to the top-k /
 * top-p support and renormalised over it (with neither, the whole softmax). */
static int32_t draw(const float *lg, int V, const gpt2_sample_opts *o, uint64_t *rng, draw_buf *d, float *logp)
{
    float mx = -INFINITY;
    int best = 0;
    for (int v = 0; v < V; v++)
        if (lg[v] > mx) {
            mx = lg[v];
            best = v;
        }
    const float T = o->temperature, inv = T > 0 ? 1.0f / T : 1.0f;
    float *p = d->prob;
    double z = 0;
    for (int v0 = 0; v0 < V; v0 += 4096) {
        int v1 = v0 + 4096 < V ? v0 + 4096 : V;
        float part = 0;
#pragma omp simd reduction(+ : part)
        for (int v = v0; v < v1; v++) {
            p[v] = fm_expf((lg[v] - mx) * inv);
            part += p[v];
        }
        z += part;
    }
    if (T <= 0) {
        if (logp) *logp = (float)-log(z);
        return best;
    }
    int n = V;
    int32_t *idx = d->idx;
    const int k = (o->top_k > 0 && o->top_k < V) ? o->top_k : V;
    double kept = z;
    if (k < V || o->top_p < 1.0f) {
        for (int v = 0; v < V; v++) idx[v] = v;
        if (k < V) {
            top_k_select(p, idx, V, k);
            n = k;
        }
        if (o->top_p < 1.0f) {
            prob_idx *pi = d->pairs;
            for (int j = 0; j < n; j++) pi[j] = (prob_idx){p[idx[j]], idx[j]};
            qsort(pi, (size_t)n, sizeof *pi, by_prob_desc);
            for (int j = 0; j < n; j++) idx[j] = pi[j].i;
            double tot = 0, acc = 0;
            for (int j = 0; j < n; j++) tot += p[idx[j]];
            for (int j = 0; j < n; j++) {
                acc += p[idx[j]];
                if (acc >= o->top_p * tot) {
                    n = j + 1;
                    break;
                }
            }
        }
        kept = 0;
        for (int j = 0; j < n; j++) kept += p[idx[j]];
    }
    double u = rng_unit(rng) * kept, acc = 0;
    int32_t pick = -1;
    if (n == V) {
        for (int v = 0; v < V; v++) {
            acc += p[v];
            if (u < acc) {
                pick = v;
                break;
            }
        }
        if (pick < 0) pick = best;
    } else {
        pick = idx[n - 1];
        for (int j = 0; j < n; j++) {
            acc += p[idx[j]];
            if (u < acc) {
                pick = idx[j];
                break;
            }
        }
    }
    if (logp) *logp = (float)log((double)p[pick] / kept); /* kept == z without top-k/top-p */
    return pick;
}

int gpt2_sample(gpt2 *m, int B, const int32_t *const *prompts, const int *plen, const gpt2_sample_opts *o,
                int32_t *out, int *olen, float *logp, char *err, size_t errlen)
{
    const int V = gpt2_cfg(m)->vocab_size, MN = o->max_new_tokens;
    int maxp = 0, R = 0;
    for (int b = 0; b < B; b++) {
        if (plen[b] < 1) return fio_fail(err, errlen, "sample: prompt %d is empty (start it with <|endoftext|>)", b);
        maxp = plen[b] > maxp ? plen[b] : maxp;
        R += plen[b];
    }
    if (maxp + MN > gpt2_cfg(m)->n_positions)
        return fio_fail(err, errlen, "sample: prompt (%d tokens) + %d new tokens exceed n_positions (%d)", maxp, MN,
                        gpt2_cfg(m)->n_positions);
    gpt2_kv *kv;
    if (gpt2_kv_create(&kv, m, B, maxp + MN, err, errlen)) return -1;
    if (gpt2_kv_set_weights(kv, m, o->weights, err, errlen)) {
        gpt2_kv_free(kv);
        return -1;
    }
    int *seq = malloc((size_t)(R > B ? R : B) * sizeof *seq);
    int32_t *tok = malloc((size_t)(R > B ? R : B) * sizeof *tok);
    uint8_t *want = malloc((size_t)(R > B ? R : B));
    float *lg = malloc((size_t)B * V * sizeof *lg);
    /* one scratch per thread: sequences draw in parallel (each from its own RNG stream, so the
     * result does not depend on the thread count) */
    const int nt = gpt2_threads(m) > 0 ? gpt2_threads(m) : 1;
    draw_buf *db = calloc((size_t)nt, sizeof *db);
    int dbok = db != NULL;
    for (int t = 0; dbok && t < nt; t++) {
        db[t].prob = malloc((size_t)V * sizeof(float));
        db[t].idx = malloc((size_t)V * sizeof(int32_t));
        db[t].pairs = malloc((size_t)V * sizeof(prob_idx));
        dbok = db[t].prob && db[t].idx && db[t].pairs;
    }
    int *order = malloc((size_t)B * sizeof *order);
    uint64_t *rng = malloc((size_t)B * sizeof *rng);
    int *active = malloc((size_t)B * sizeof *active);
    int rc = -1;
    if (!seq || !tok || !want || !lg || !dbok || !order || !rng || !active) {
        fio_fail(err, errlen, "sample: out of memory");
        goto done;
    }
    int r = 0;
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < plen[b]; i++, r++) {
            seq[r] = b;
            tok[r] = prompts[b][i];
            want[r] = i == plen[b] - 1;
        }
        rng[b] = rng_stream(o->seed, (uint64_t)(o->first_row + b)); /* row's stream: (seed, global row) only */
        olen[b] = 0;
        active[b] = MN > 0;
    }
    if (gpt2_kv_forward(m, kv, R, seq, tok, want, lg, err, errlen)) goto done;
    /* lg holds one row per sequence, in sequence order */
    for (int step = 0; step < MN; step++) {
        int na = 0;
        for (int b = 0; b < B; b++)
            if (active[b]) order[na++] = b; /* logits row q belongs to the q-th active sequence */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt) if (nt > 1 && na > 1)
        for (int q = 0; q < na; q++) {
            const int b = order[q];
            float lp;
            int32_t t = draw(lg + (size_t)q * V, V, o, &rng[b], &db[omp_get_thread_num()], &lp);
            out[(size_t)b * MN + olen[b]] = t;
            if (logp) logp[(size_t)b * MN + olen[b]] = lp;
            olen[b]++;
            if ((o->stop_token >= 0 && t == o->stop_token) || olen[b] == MN) active[b] = 0;
        }
        /* next rows: the sequences still going, in order (so lg rows stay in sequence order) */
        int q = 0;
        for (int b = 0; b < B; b++)
            if (active[b]) {
                seq[q] = b;
                tok[q] = out[(size_t)b * MN + olen[b] - 1];
                q++;
            }
        if (q == 0) break;
        if (gpt2_kv_forward(m, kv, q, seq, tok, NULL, lg, err, errlen)) goto done;
    }
    rc = 0;
done:
    free(seq);
    free(tok);
    free(want);
    free(lg);
    for (int t = 0; db && t < nt; t++) {
        free(db[t].prob);
        free(db[t].idx);
        free(db[t].pairs);
    }
    free(db);
    free(order);
    free(rng);
    free(active);
    gpt2_kv_free(kv);
    return rc;
}
