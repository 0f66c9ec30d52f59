/* kv.c — KV-cache inference and sampling for GPT-2. See kv.h. */
#include "kv.h"
#include "rng.h"

#include "fastmath.h"
#include "fileio.h"
#include "mm.h"
#include "ops.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

struct gpt2_kv {
    int B, maxT, L, C, NH, V;
    float *k, *v; /* (L, B, maxT, C) */
    int *len;     /* (B) */
    int cap_rows;
    float *x, *ln, *mean, *rstd, *qkv, *atty, *tmp, *fch, *lnsel, *attbuf;
    int *pos;
    int att_threads;  /* attbuf holds maxT floats for this many threads */
    uint16_t *w16;    /* bf16 copy of the matrices for decode steps, or NULL (fp32) */
    mm_weight *wd;    /* (L * 4 + 1): qkv, attproj, fc, fcproj per layer, then the LM head; NULL: fp32 */
};

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
}

void gpt2_kv_free(gpt2_kv *kv)
{
    if (!kv) return;
    free(kv->w16);
    free(kv->wd);
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
    int nt = omp_get_max_threads() > nthreads ? omp_get_max_threads() : nthreads;
    kv->x = malloc(r * C * 4);
    kv->ln = malloc(r * C * 4);
    kv->mean = malloc(r * 4);
    kv->rstd = malloc(r * 4);
    kv->qkv = malloc(r * 3 * C * 4);
    kv->atty = malloc(r * C * 4);
    kv->tmp = malloc(r * C * 4);
    kv->fch = malloc(r * 4 * C * 4);
    kv->lnsel = malloc(r * C * 4);
    kv->attbuf = malloc((size_t)nt * (size_t)kv->maxT * 4);
    kv->pos = malloc(r * sizeof(int));
    if (!kv->x || !kv->ln || !kv->mean || !kv->rstd || !kv->qkv || !kv->atty || !kv->tmp || !kv->fch || !kv->lnsel ||
        !kv->attbuf || !kv->pos) {
        kv->cap_rows = 0;
        return -1;
    }
    kv->cap_rows = R;
    kv->att_threads = nt;
    return 0;
}

int gpt2_kv_forward(gpt2 *m, gpt2_kv *kv, int R, const int *seq, const int32_t *tok, const uint8_t *want,
                    float *logits, char *err, size_t errlen)
{
    if (R < 1) return 0;
    if (ensure_rows(kv, R)) return fio_fail(err, errlen, "kv forward: out of memory for %d rows", R);
    const int C = kv->C, NH = kv->NH, hs = C / NH, V = kv->V, L = kv->L, maxT = kv->maxT, nt = gpt2_threads(m);
    const float eps = gpt2_cfg(m)->ln_eps;
    const float *P = gpt2_params_const(m);
    const gpt2_tensor *tb = gpt2_param_table(m);
    /* positions: each row goes after what its sequence holds, rows of a sequence in order */
    for (int r = 0; r < R; r++) {
        if (seq[r] < 0 || seq[r] >= kv->B) return fio_fail(err, errlen, "kv forward: row %d: sequence %d out of range", r, seq[r]);
        if (tok[r] < 0 || tok[r] >= V) return fio_fail(err, errlen, "kv forward: row %d: token %d outside the vocabulary", r, tok[r]);
    }
    for (int r = 0; r < R; r++) {
        kv->pos[r] = kv->len[seq[r]]++;
        if (kv->pos[r] >= maxT) {
            for (int q = 0; q <= r; q++) kv->len[seq[q]]--;
            return fio_fail(err, errlen, "kv forward: sequence %d is full (%d tokens)", seq[r], maxT);
        }
    }
    const float *wte = P + tb[GPT2_WTE].offset, *wpe = P + tb[GPT2_WPE].offset;
#pragma omp parallel for
    for (int r = 0; r < R; r++)
        for (int i = 0; i < C; i++) kv->x[(size_t)r * C + i] = wte[(size_t)tok[r] * C + i] + wpe[(size_t)kv->pos[r] * C + i];
    const float scale = 1.0f / sqrtf((float)hs);
    for (int l = 0; l < L; l++) {
        float *kc = kv->k + (size_t)l * kv->B * maxT * C, *vc = kv->v + (size_t)l * kv->B * maxT * C;
        op_layernorm_fwd(kv->ln, kv->mean, kv->rstd, kv->x, P + gpt2_off(tb, GPT2_LN1W, l),
                         P + gpt2_off(tb, GPT2_LN1B, l), R, C, eps);
        op_matmul_fwd(kv->qkv, kv->ln, P + gpt2_off(tb, GPT2_QKVW, l),
                      P + gpt2_off(tb, GPT2_QKVB, l), R, C, 3 * C, nt);
        for (int r = 0; r < R; r++) {
            size_t at = ((size_t)seq[r] * maxT + kv->pos[r]) * C;
            memcpy(kc + at, kv->qkv + (size_t)r * 3 * C + C, (size_t)C * 4);
            memcpy(vc + at, kv->qkv + (size_t)r * 3 * C + 2 * C, (size_t)C * 4);
        }
#pragma omp parallel for collapse(2)
        for (int r = 0; r < R; r++)
            for (int h = 0; h < NH; h++) {
                float *a = kv->attbuf + (size_t)omp_get_thread_num() * maxT;
                const float *q = kv->qkv + (size_t)r * 3 * C + h * hs;
                const float *kb = kc + (size_t)seq[r] * maxT * C + h * hs, *vb = vc + (size_t)seq[r] * maxT * C + h * hs;
                const int p = kv->pos[r];
                float mx = -INFINITY;
                for (int t = 0; t <= p; t++) {
                    float s = 0;
                    for (int i = 0; i < hs; i++) s += q[i] * kb[(size_t)t * C + i];
                    s *= scale;
                    a[t] = s;
                    mx = s > mx ? s : mx;
                }
                float sum = 0;
                for (int t = 0; t <= p; t++) sum += (a[t] = fm_expf(a[t] - mx));
                float inv = 1.0f / sum;
                float *o = kv->atty + (size_t)r * C + h * hs;
                for (int i = 0; i < hs; i++) o[i] = 0;
                for (int t = 0; t <= p; t++) {
                    float w = a[t] * inv;
                    for (int i = 0; i < hs; i++) o[i] += w * vb[(size_t)t * C + i];
                }
            }
        op_matmul_fwd(kv->tmp, kv->atty, P + gpt2_off(tb, GPT2_ATTPROJW, l),
                      P + gpt2_off(tb, GPT2_ATTPROJB, l), R, C, C, nt);
        op_residual_fwd(kv->x, kv->x, kv->tmp, (long)R * C);
        op_layernorm_fwd(kv->ln, kv->mean, kv->rstd, kv->x, P + gpt2_off(tb, GPT2_LN2W, l),
                         P + gpt2_off(tb, GPT2_LN2B, l), R, C, eps);
        op_matmul_fwd(kv->fch, kv->ln, P + gpt2_off(tb, GPT2_FCW, l),
                      P + gpt2_off(tb, GPT2_FCB, l), R, C, 4 * C, nt);
        op_gelu_fwd(kv->fch, kv->fch, (long)R * 4 * C);
        op_matmul_fwd(kv->tmp, kv->fch, P + gpt2_off(tb, GPT2_FCPROJW, l),
                      P + gpt2_off(tb, GPT2_FCPROJB, l), R, 4 * C, C, nt);
        op_residual_fwd(kv->x, kv->x, kv->tmp, (long)R * C);
    }
    /* final LayerNorm and the LM head, only for the rows asked for */
    int S = 0;
    for (int r = 0; r < R; r++)
        if (!want || want[r]) memcpy(kv->tmp + (size_t)S++ * C, kv->x + (size_t)r * C, (size_t)C * 4);
    if (S == 0) return 0;
    op_layernorm_fwd(kv->lnsel, kv->mean, kv->rstd, kv->tmp, P + tb[GPT2_LNFW].offset, P + tb[GPT2_LNFB].offset, S, C,
                     eps);
    mm_sgemm(0, 1, S, V, C, 1.0f, kv->lnsel, C, wte, C, 0.0f, logits, V, nt);
    return 0;
}

/* ---- sampling ---------------------------------------------------------------------------------- */

gpt2_sample_opts gpt2_sample_defaults(void)
{
    gpt2_sample_opts o = {1.0f, 0, 1.0f, 64, -1, 1234};
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
 * probability under softmax(lg / T), before top-k/top-p. */
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
    if (logp) *logp = (float)log((double)p[pick] / z);
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
        rng[b] = o->seed * 0x9E3779B97F4A7C15ull + (uint64_t)b * 0xD1B54A32D192ED03ull + 1;
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
