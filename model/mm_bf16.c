/* mm_bf16.c — bf16 products with fp32 accumulation through oneDNN's matmul, and bf16 conversions.
 * See mm.h ("bf16 products").
 *
 * Why oneDNN: measured here (tools/bench/bf16_products.c, README) it ran GPT-2's training products
 * at 80-100% of this CPU's vdpbf16ps peak where a hand-written AVX512-BF16 kernel reached 30-90%,
 * and it has AMX kernels for the Intel machines we cannot test on here. Weights are plain bf16
 * matrices the caller owns (mm_bweight_view): oneDNN packs what it needs per product. oneDNN compiles a kernel
 * per shape: a context keeps each compiled product (keyed by its whole shape, alpha, beta and thread
 * count) with its memory objects, so after the first training step a product costs one execute
 * and no allocation. oneDNN's OpenMP build takes its thread count from omp_get_max_threads(): each
 * call sets the caller's count for its duration and restores the previous one. */
#include "cpu.h"
#include "mm.h"

#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mm_to_bf16(uint16_t *dst, const float *src, long n)
{
#pragma omp parallel for simd schedule(static)
    for (long i = 0; i < n; i++) dst[i] = mm_bf16(src[i]);
}

#ifdef RLHF_HAVE_DNNL
#include <dnnl.h>

/* a compiled product and the memory objects its calls rebind */
typedef struct {
    mm_bshape s;
    int weight; /* B is a mm_bweight (its orientation and stride: s.tb, s.ldb) */
    int bias;   /* an fp32 bias (n) is added */
    uint32_t alpha_bits;
    int beta1, nt;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, bias_mem;
} prod;

struct mm_ctx {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    prod *prods;
    int nprods, capprods;
    char engine[112]; /* "oneDNN x.y.z" (vlen chars), then the implementation of the last weight product */
    size_t vlen;
    char err[256];
};

struct mm_bweight {
    int tw, k, n, ld;
    dnnl_memory_desc_t md;
    dnnl_memory_t mem; /* over the caller's matrix */
};

static int fail(mm_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* oneDNN's OpenMP build reads omp_get_max_threads(): set the caller's count, give back the old */
static int threads_push(int nt)
{
    const int old = omp_get_max_threads();
    if (nt > 0 && nt != old) omp_set_num_threads(nt);
    return old;
}
static void threads_pop(int old)
{
    if (omp_get_max_threads() != old) omp_set_num_threads(old);
}

int mm_bf16_available(void)
{
    const cpu_info *f = cpu_features();
    return f->avx512_bf16 || f->amx_usable;
}

int mm_ctx_create(mm_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!mm_bf16_available()) {
        if (err && errlen) snprintf(err, errlen, "bf16 products: this CPU has neither AVX512-BF16 nor usable AMX");
        return -1;
    }
    mm_ctx *c = calloc(1, sizeof *c);
    if (!c || dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->strm, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        if (err && errlen) snprintf(err, errlen, "bf16 products: cannot start oneDNN's CPU engine");
        mm_ctx_free(c);
        return -1;
    }
    const dnnl_version_t *v = dnnl_version();
    snprintf(c->engine, sizeof c->engine, "oneDNN %d.%d.%d", v->major, v->minor, v->patch);
    c->vlen = strlen(c->engine);
    *out = c;
    return 0;
}

void mm_ctx_free(mm_ctx *c)
{
    if (!c) return;
    for (int i = 0; i < c->nprods; i++) {
        dnnl_primitive_destroy(c->prods[i].prim);
        dnnl_memory_destroy(c->prods[i].a);
        dnnl_memory_destroy(c->prods[i].b);
        dnnl_memory_destroy(c->prods[i].c);
        dnnl_memory_destroy(c->prods[i].bias_mem);
    }
    free(c->prods);
    if (c->strm) dnnl_stream_destroy(c->strm);
    if (c->eng) dnnl_engine_destroy(c->eng);
    free(c);
}

const char *mm_ctx_engine(const mm_ctx *c) { return c->engine; }
const char *mm_ctx_error(const mm_ctx *c) { return c->err; }

/* a (rows, cols) operand, transposed (stored (cols, rows)) or not, with row stride ld, batched as s */
static dnnl_status_t md_of(dnnl_memory_desc_t *md, const mm_bshape *s, int rows, int cols, int trans, int ld, long s0,
                           long s1, dnnl_data_type_t dt)
{
    const dnnl_dim_t rs = trans ? 1 : ld, cs = trans ? ld : 1;
    if (s->nb0 > 1 || s->nb1 > 1) {
        dnnl_dims_t d = {s->nb0 > 1 ? s->nb0 : 1, s->nb1 > 1 ? s->nb1 : 1, rows, cols};
        dnnl_dims_t st = {s0, s1, rs, cs};
        return dnnl_memory_desc_init_by_strides(md, 4, d, dt, st);
    }
    dnnl_dims_t d = {rows, cols}, st = {rs, cs};
    return dnnl_memory_desc_init_by_strides(md, 2, d, dt, st);
}

/* attributes: alpha as an output scale, beta 1 as a sum post-op */
static dnnl_status_t make_attr(dnnl_primitive_attr_t *attr, float alpha, int beta1)
{
    dnnl_status_t st = dnnl_primitive_attr_create(attr);
    if (st == dnnl_success && alpha != 1.0f) st = dnnl_primitive_attr_set_output_scales(*attr, 1, 0, &alpha);
    if (st == dnnl_success && beta1) {
        dnnl_post_ops_t po;
        st = dnnl_post_ops_create(&po);
        if (st == dnnl_success) st = dnnl_post_ops_append_sum(po, 1.0f);
        if (st == dnnl_success) st = dnnl_primitive_attr_set_post_ops(*attr, po);
        dnnl_post_ops_destroy(po);
    }
    return st;
}

/* compile the product p->s (weights in layout wmd when p->weight) into p */
static int compile(mm_ctx *c, prod *p, float alpha, const dnnl_memory_desc_t *wmd)
{
    const mm_bshape *s = &p->s;
    dnnl_memory_desc_t amd, bmd, cmd;
    if (md_of(&amd, s, s->m, s->k, s->ta, s->lda, s->sa0, s->sa1, dnnl_bf16) != dnnl_success ||
        (!wmd && md_of(&bmd, s, s->k, s->n, s->tb, s->ldb, s->sb0, s->sb1, dnnl_bf16) != dnnl_success) ||
        md_of(&cmd, s, s->m, s->n, 0, s->ldc, s->sc0, s->sc1, dnnl_f32) != dnnl_success)
        return fail(c, "bf16 product %dx%dx%d: bad strides", s->m, s->n, s->k);
    if (wmd) bmd = *wmd;
    dnnl_memory_desc_t biasmd;
    dnnl_dims_t bd = {1, s->n};
    if (p->bias && dnnl_memory_desc_init_by_tag(&biasmd, 2, bd, dnnl_f32, dnnl_ab) != dnnl_success)
        return fail(c, "bf16 product %dx%dx%d: bad bias", s->m, s->n, s->k);
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t st = dnnl_matmul_desc_init(&desc, &amd, &bmd, p->bias ? &biasmd : NULL, &cmd);
    if (st == dnnl_success) st = make_attr(&attr, alpha, p->beta1);
    if (st == dnnl_success) st = dnnl_primitive_desc_create(&pd, &desc, attr, c->eng, NULL);
    if (st == dnnl_success) st = dnnl_primitive_create(&p->prim, pd);
    if (st == dnnl_success) {
        const char *impl = "?";
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
        if (p->weight || !c->engine[c->vlen]) snprintf(c->engine + c->vlen, sizeof c->engine - c->vlen, " %s", impl);
    }
    if (st == dnnl_success) st = dnnl_memory_create(&p->a, &amd, c->eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success && !wmd) st = dnnl_memory_create(&p->b, &bmd, c->eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success) st = dnnl_memory_create(&p->c, &cmd, c->eng, DNNL_MEMORY_NONE);
    if (st == dnnl_success && p->bias) st = dnnl_memory_create(&p->bias_mem, &biasmd, c->eng, DNNL_MEMORY_NONE);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return fail(c, "bf16 product %dx%dx%d (batch %dx%d): oneDNN status %d", s->m, s->n, s->k, s->nb0, s->nb1,
                    (int)st);
    return 0;
}

/* the cached product for this call, compiled on first use */
static prod *find(mm_ctx *c, const mm_bshape *s, int weight, int bias, float alpha, float beta, int nt,
                  const dnnl_memory_desc_t *wmd)
{
    prod key;
    memset(&key, 0, sizeof key);
    key.s = *s;
    key.weight = weight;
    key.bias = bias;
    memcpy(&key.alpha_bits, &alpha, sizeof alpha);
    key.beta1 = beta != 0.0f;
    key.nt = nt;
    for (int i = 0; i < c->nprods; i++) {
        prod *p = &c->prods[i];
        if (!memcmp(&p->s, &key.s, sizeof key.s) && p->weight == weight && p->bias == bias &&
            p->alpha_bits == key.alpha_bits &&
            p->beta1 == key.beta1 && p->nt == nt)
            return p;
    }
    if (c->nprods == c->capprods) {
        int cap = c->capprods ? 2 * c->capprods : 32;
        prod *np = realloc(c->prods, (size_t)cap * sizeof *np);
        if (!np) return fail(c, "bf16 products: out of memory"), NULL;
        c->prods = np;
        c->capprods = cap;
    }
    const int old = threads_push(nt);
    const int r = compile(c, &key, alpha, wmd);
    threads_pop(old);
    if (r) return NULL;
    c->prods[c->nprods] = key;
    return &c->prods[c->nprods++];
}

static int run(mm_ctx *c, prod *p, const void *A, dnnl_memory_t bmem, const void *B, const float *bias, float *C,
               int nt)
{
    dnnl_status_t st = dnnl_memory_set_data_handle(p->a, (void *)A);
    if (st == dnnl_success && !bmem) st = dnnl_memory_set_data_handle(p->b, (void *)B);
    if (st == dnnl_success) st = dnnl_memory_set_data_handle(p->c, C);
    if (st == dnnl_success && p->bias) st = dnnl_memory_set_data_handle(p->bias_mem, (void *)bias);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, bmem ? bmem : p->b}, {DNNL_ARG_DST, p->c},
                               {DNNL_ARG_BIAS, p->bias_mem}};
    const int old = threads_push(nt);
    if (st == dnnl_success) st = dnnl_primitive_execute(p->prim, c->strm, p->bias ? 4 : 3, args);
    if (st == dnnl_success) st = dnnl_stream_wait(c->strm);
    threads_pop(old);
    return st == dnnl_success ? 0 : fail(c, "bf16 product %dx%dx%d: oneDNN status %d", p->s.m, p->s.n, p->s.k, (int)st);
}

int mm_bgemm(mm_ctx *c, const mm_bshape *s, float alpha, const uint16_t *A, const uint16_t *B, float beta,
             float *C, int nthreads)
{
    if (s->m <= 0 || s->n <= 0) return 0;
    if (beta != 0.0f && beta != 1.0f) return fail(c, "bf16 products: beta must be 0 or 1 (got %g)", (double)beta);
    prod *p = find(c, s, 0, 0, alpha, beta, nthreads, NULL);
    return p ? run(c, p, A, NULL, B, NULL, C, nthreads) : -1;
}

/* ---- weights ---------------------------------------------------------------------------------- */

int mm_bweight_view(mm_ctx *c, mm_bweight **out, int tw, int k, int n, const uint16_t *W, int ld)
{
    *out = NULL;
    mm_bweight *w = calloc(1, sizeof *w);
    if (!w) return fail(c, "bf16 products: out of memory");
    const mm_bshape one = {0};
    *w = (mm_bweight){tw, k, n, ld, {0}, NULL};
    if (md_of(&w->md, &one, k, n, tw, ld, 0, 0, dnnl_bf16) != dnnl_success ||
        dnnl_memory_create(&w->mem, &w->md, c->eng, (void *)W) != dnnl_success) {
        free(w);
        return fail(c, "bf16 weight %dx%d: bad view", k, n);
    }
    *out = w;
    return 0;
}

void mm_bweight_free(mm_bweight *w)
{
    if (!w) return;
    dnnl_memory_destroy(w->mem);
    free(w);
}

int mm_bgemm_w(mm_ctx *c, int m, float alpha, const uint16_t *A, int lda, const mm_bweight *w, const float *bias,
               float beta, float *C, int ldc, int nthreads)
{
    if (m <= 0) return 0;
    if (beta != 0.0f && beta != 1.0f) return fail(c, "bf16 products: beta must be 0 or 1 (got %g)", (double)beta);
    mm_bshape s = {0, w->tw, m, w->n, w->k, lda, w->ld, ldc, 0, 0, 0, 0, 0, 0, 0, 0};
    prod *p = find(c, &s, 1, bias != NULL, alpha, beta, nthreads, &w->md);
    return p ? run(c, p, A, w->mem, NULL, bias, C, nthreads) : -1;
}

#else /* no oneDNN in this build: no bf16 products; callers stay on fp32 */

struct mm_ctx {
    char err[64];
};

int mm_bf16_available(void) { return 0; }
int mm_ctx_create(mm_ctx **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen) snprintf(err, errlen, "bf16 products: this build has no oneDNN (meson -Ddnnl=enabled)");
    return -1;
}
void mm_ctx_free(mm_ctx *c) { (void)c; }
const char *mm_ctx_engine(const mm_ctx *c) { return (void)c, "none"; }
const char *mm_ctx_error(const mm_ctx *c) { return (void)c, "no bf16 engine in this build"; }
int mm_bgemm(mm_ctx *c, const mm_bshape *s, float alpha, const uint16_t *A, const uint16_t *B, float beta,
             float *C, int nthreads)
{
    (void)c, (void)s, (void)alpha, (void)A, (void)B, (void)beta, (void)C, (void)nthreads;
    return -1;
}
int mm_bweight_view(mm_ctx *c, mm_bweight **out, int tw, int k, int n, const uint16_t *W, int ld)
{
    (void)c, (void)tw, (void)k, (void)n, (void)W, (void)ld;
    *out = NULL;
    return -1;
}
void mm_bweight_free(mm_bweight *w) { (void)w; }
int mm_bgemm_w(mm_ctx *c, int m, float alpha, const uint16_t *A, int lda, const mm_bweight *w, const float *bias,
               float beta, float *C, int ldc, int nthreads)
{
    (void)c, (void)m, (void)alpha, (void)A, (void)lda, (void)w, (void)bias, (void)beta, (void)C, (void)ldc,
        (void)nthreads;
    return -1;
}
#endif
