/* bf16_products.c — the measurement behind model/'s choice of bf16 product engine (README, "bf16
 * products"): GPT-2-small's training products at N = B*T rows, each timed as
 *   blis   fp32 mm_sgemm as the model calls it today;
 *   dnnl   oneDNN bf16 matmul (bf16 src and weights, f32 dst; weights reordered once into the
 *          layout oneDNN asks for, activations converted to bf16 inside the timed call);
 *   hand   a hand-written AVX512-BF16 kernel (vdpbf16ps, 12x32 register tile over pre-packed B
 *          panels; A converted and packed inside the timed call);
 * plus the machine's bf16 peak (a tight loop of independent vdpbf16ps) and fp32 FMA peak.
 * Built and run by tools/bench/bf16_products.sh; not part of the library. */
#include "mm.h"

#include <dnnl.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#define CHK(x)                                                                                                  \
    do {                                                                                                        \
        dnnl_status_t s_ = (x);                                                                                 \
        if (s_ != dnnl_success) {                                                                               \
            fprintf(stderr, "%s:%d: %s -> %d\n", __FILE__, __LINE__, #x, (int)s_);                              \
            exit(1);                                                                                            \
        }                                                                                                       \
    } while (0)

/* ---- peaks --------------------------------------------------------------------------------------- */
__attribute__((target("avx512f,avx512bf16"), noinline)) static double peak_bf16(long iters)
{
    double best = 0;
#pragma omp parallel reduction(max : best)
    {
        __m512 acc[12];
        for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
        __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x3f003f00);
        double t0 = now();
        for (long it = 0; it < iters; it++) {
            for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        }
        double t = now() - t0;
        float s = 0;
        for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(acc[i]);
        best = (s != 0 ? 1.0 : 0.5) * 12.0 * 64.0 * (double)iters / t / 1e9;
    }
    return best * omp_get_max_threads();
}

__attribute__((target("avx512f"), noinline)) static double peak_fp32(long iters)
{
    double best = 0;
#pragma omp parallel reduction(max : best)
    {
        __m512 acc[12];
        for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
        __m512 a = _mm512_set1_ps(1.0f), b = _mm512_set1_ps(0.5f);
        double t0 = now();
        for (long it = 0; it < iters; it++) {
            for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
        }
        double t = now() - t0;
        float s = 0;
        for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(acc[i]);
        best = (s != 0 ? 1.0 : 0.5) * 12.0 * 32.0 * (double)iters / t / 1e9;
    }
    return best * omp_get_max_threads();
}

/* ---- hand kernel: C (m,n) = A (m,k) B (k,n), k even -------------------------------------------------
 * B packed once: panels of 32 columns, each k pair as 32 (b[2p][j], b[2p+1][j]) pairs = 2 zmm.
 * A packed per call from fp32 (either orientation): blocks of 12 rows, each k pair as 12 pairs. */
#define MR 12
#define NR 32

static void pack_b(uint16_t *dst, const float *B, int tb, int ldb, int k, int n)
{
    const int ke = (k + 1) & ~1;
    for (int j0 = 0; j0 < n; j0 += NR)
        for (int p = 0; p < ke / 2; p++)
            for (int j = 0; j < NR; j++)
                for (int e = 0; e < 2; e++) {
                    int kk = 2 * p + e, jj = j0 + j;
                    float v = jj < n && kk < k ? (tb ? B[(size_t)jj * ldb + kk] : B[(size_t)kk * ldb + jj]) : 0;
                    dst[(size_t)j0 * ke + (size_t)p * NR * 2 + j * 2 + e] = mm_bf16(v);
                }
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void pack_a(uint16_t *dst, const float *A, int ta,
                                                                           int lda, int m, int k)
{
    const int ke = (k + 1) & ~1;
#pragma omp parallel for schedule(static)
    for (int i0 = 0; i0 < m; i0 += MR)
        for (int p = 0; p < ke / 2; p++)
            for (int i = 0; i < MR; i++) {
                int ii = i0 + i;
                float a0 = 0, a1 = 0;
                if (ii < m) {
                    a0 = ta ? A[(size_t)(2 * p) * lda + ii] : A[(size_t)ii * lda + 2 * p];
                    a1 = 2 * p + 1 >= k ? 0 : ta ? A[(size_t)(2 * p + 1) * lda + ii] : A[(size_t)ii * lda + 2 * p + 1];
                }
                uint16_t *d = dst + (size_t)i0 * ke + (size_t)p * MR * 2 + i * 2;
                d[0] = mm_bf16(a0);
                d[1] = mm_bf16(a1);
            }
}

__attribute__((target("avx512f,avx512bw,avx512bf16"))) static inline void
ukernel(int kp, const uint16_t *a, const uint16_t *b, float *C, int ldc, int mr, int acc)
{
    __m512 c[MR][2];
    for (int i = 0; i < MR; i++) c[i][0] = c[i][1] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * 64), b1 = (__m512bh)_mm512_loadu_si512(b + (size_t)p * 64 + 32);
        const int32_t *ap = (const int32_t *)(a + (size_t)p * MR * 2);
#pragma GCC unroll 12
        for (int i = 0; i < MR; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32(ap[i]);
            c[i][0] = _mm512_dpbf16_ps(c[i][0], av, b0);
            c[i][1] = _mm512_dpbf16_ps(c[i][1], av, b1);
        }
    }
    for (int i = 0; i < mr; i++) {
        float *cp = C + (size_t)i * ldc;
        if (acc) {
            c[i][0] = _mm512_add_ps(c[i][0], _mm512_loadu_ps(cp));
            c[i][1] = _mm512_add_ps(c[i][1], _mm512_loadu_ps(cp + 16));
        }
        _mm512_storeu_ps(cp, c[i][0]);
        _mm512_storeu_ps(cp + 16, c[i][1]);
    }
}

/* n multiple of 32, C row stride ldc >= n */
static void hand_gemm(int m, int n, int k, const uint16_t *pa, const uint16_t *pb, float *C, int ldc)
{
    const int KC = 768;
    const int npanel = n / NR;
#pragma omp parallel for schedule(static)
    for (int jp = 0; jp < npanel; jp++)
        for (int k0 = 0; k0 < k; k0 += KC) {
            int kc = k - k0 < KC ? k - k0 : KC;
            const uint16_t *b = pb + (size_t)jp * NR * k + (size_t)k0 * NR;
            for (int i0 = 0; i0 < m; i0 += MR)
                ukernel(kc / 2, pa + (size_t)i0 * k + (size_t)k0 * MR, b, C + (size_t)i0 * ldc + jp * NR, ldc,
                        m - i0 < MR ? m - i0 : MR, k0 > 0);
        }
}

/* ---- oneDNN ------------------------------------------------------------------------------------- */
static dnnl_engine_t eng;
static dnnl_stream_t strm;

static void md_2d(dnnl_memory_desc_t *md, int r, int c, int trans, int ld, dnnl_data_type_t dt)
{
    dnnl_dims_t d = {r, c};
    dnnl_dims_t s = {trans ? 1 : ld, trans ? ld : 1};
    CHK(dnnl_memory_desc_init_by_strides(md, 2, d, dt, s));
}

typedef struct {
    dnnl_primitive_t mm;
    dnnl_memory_t a, b, c;
    uint16_t *a16, *b16;
    double us_conv;
} dnnl_case;

static double bench_dnnl(int ta, int tb, int m, int n, int k, const float *A, const float *B, float *C, int reps,
                         int weight_b)
{
    dnnl_memory_desc_t amd, bmd, cmd, bany;
    md_2d(&amd, m, k, ta, ta ? m : k, dnnl_bf16);
    md_2d(&bmd, k, n, tb, tb ? k : n, dnnl_bf16);
    md_2d(&cmd, m, n, 0, n, dnnl_f32);
    dnnl_dims_t bd = {k, n};
    CHK(dnnl_memory_desc_init_by_tag(&bany, 2, bd, dnnl_bf16, dnnl_format_tag_any));
    dnnl_matmul_desc_t desc;
    CHK(dnnl_matmul_desc_init(&desc, &amd, weight_b == 1 ? &bany : &bmd, NULL, &cmd));
    dnnl_primitive_desc_t pd;
    CHK(dnnl_primitive_desc_create(&pd, &desc, NULL, eng, NULL));
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    dnnl_primitive_t prim;
    CHK(dnnl_primitive_create(&prim, pd));
    size_t an = (size_t)m * k, bn = (size_t)k * n;
    uint16_t *a16 = aligned_alloc(64, an * 2 + 64), *b16 = aligned_alloc(64, bn * 2 + 64);
    for (size_t i = 0; i < bn; i++) b16[i] = mm_bf16(B[i]);
    dnnl_memory_t am, bm_plain, bm, cm;
    CHK(dnnl_memory_create(&am, &amd, eng, a16));
    CHK(dnnl_memory_create(&bm_plain, &bmd, eng, b16));
    CHK(dnnl_memory_create(&cm, &cmd, eng, C));
    if (weight_b == 1) { /* reorder once into oneDNN's layout (not timed: once per optimizer step) */
        CHK(dnnl_memory_create(&bm, wmd, eng, DNNL_MEMORY_ALLOCATE));
        dnnl_primitive_desc_t rpd;
        CHK(dnnl_reorder_primitive_desc_create(&rpd, &bmd, eng, wmd, eng, NULL));
        dnnl_primitive_t r;
        CHK(dnnl_primitive_create(&r, rpd));
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, bm_plain}, {DNNL_ARG_TO, bm}};
        CHK(dnnl_primitive_execute(r, strm, 2, ra));
        CHK(dnnl_stream_wait(strm));
        dnnl_primitive_destroy(r);
        dnnl_primitive_desc_destroy(rpd);
    } else
        bm = bm_plain;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}};
    double best = 1e9;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < an; i++) a16[i] = mm_bf16(A[i]); /* activations: converted per call */
        if (!weight_b)
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < bn; i++) b16[i] = mm_bf16(B[i]);
        CHK(dnnl_primitive_execute(prim, strm, 3, args));
        CHK(dnnl_stream_wait(strm));
        double t = now() - t0;
        if (r && t < best) best = t;
    }
    static int shown;
    if (!shown++ || getenv("SHOW_IMPL")) fprintf(stderr, "  oneDNN impl: %s\n", impl);
    dnnl_primitive_destroy(prim);
    dnnl_primitive_desc_destroy(pd);
    dnnl_memory_destroy(am);
    dnnl_memory_destroy(cm);
    if (bm != bm_plain) dnnl_memory_destroy(bm);
    dnnl_memory_destroy(bm_plain);
    free(a16);
    free(b16);
    return best;
}

static double bench_blis(int ta, int tb, int m, int n, int k, const float *A, const float *B, float *C, int reps, int nt)
{
    double best = 1e9;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        mm_sgemm(ta, tb, m, n, k, 1.0f, A, ta ? m : k, B, tb ? k : n, 0.0f, C, n, nt);
        double t = now() - t0;
        if (r && t < best) best = t;
    }
    return best;
}

static double bench_hand(int ta, int tb, int m, int n, int k, const float *A, const float *B, float *C, int reps,
                         int weight_b)
{
    int n32 = (n + NR - 1) / NR * NR, m12 = (m + MR - 1) / MR * MR;
    uint16_t *pa = aligned_alloc(64, (size_t)m12 * (k + 1) * 2 + 64), *pb = aligned_alloc(64, (size_t)n32 * (k + 1) * 2 + 64);
    float *Cp = n32 == n ? C : aligned_alloc(64, (size_t)m12 * n32 * 4);
    if (weight_b) pack_b(pb, B, tb, tb ? k : n, k, n);
    double best = 1e9;
    for (int r = 0; r < reps + 1; r++) {
        double t0 = now();
        pack_a(pa, A, ta, ta ? m : k, m, k);
        if (!weight_b) pack_b(pb, B, tb, tb ? k : n, k, n);
        hand_gemm(m, n32, (k + 1) & ~1, pa, pb, Cp, n32);
        double t = now() - t0;
        if (r && t < best) best = t;
    }
    /* check one element against a double loop */
    double ref = 0;
    for (int q = 0; q < k; q++)
        ref += (double)mm_bf16_f32(mm_bf16(ta ? A[(size_t)q * m + (m - 1)] : A[(size_t)(m - 1) * k + q])) *
               mm_bf16_f32(mm_bf16(tb ? B[(size_t)(n - 1) * k + q] : B[(size_t)q * n + n - 1]));
    double got = Cp[(size_t)(m - 1) * n32 + n - 1];
    if (fabs(got - ref) > 1e-3 * (1 + fabs(ref))) fprintf(stderr, "  hand kernel WRONG: %g vs %g\n", got, ref);
    if (Cp != C) free(Cp);
    free(pa);
    free(pb);
    return best;
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 2, N = argc > 2 ? atoi(argv[2]) : 256, reps = argc > 3 ? atoi(argv[3]) : 5;
    omp_set_num_threads(nt);
    CHK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    printf("threads %d, N = %d rows\n", nt, N);
    printf("peak: bf16 vdpbf16ps %.0f GFLOP/s, fp32 FMA %.0f GFLOP/s\n", peak_bf16(200000000 / 12),
           peak_fp32(200000000 / 12));
    const int C = 768, V = 50257, T = 64;
    struct {
        const char *name;
        int ta, tb, m, n, k, wb; /* wb: B is a weight (pre-packed / pre-reordered once) */
    } sh[] = {
        {"qkv   fwd  x@W", 0, 0, N, 3 * C, C, 1},   {"qkv   bwd  dy@W^T", 0, 1, N, C, 3 * C, 1},
        {"qkv   bwd  x^T@dy", 1, 0, C, 3 * C, N, 0}, {"proj  fwd  x@W", 0, 0, N, C, C, 1},
        {"proj  bwd  dy@W^T", 0, 1, N, C, C, 1},    {"proj  bwd  x^T@dy", 1, 0, C, C, N, 0},
        {"fc    fwd  x@W", 0, 0, N, 4 * C, C, 1},   {"fc    bwd  dy@W^T", 0, 1, N, C, 4 * C, 1},
        {"fc    bwd  x^T@dy", 1, 0, C, 4 * C, N, 0}, {"fcprj fwd  x@W", 0, 0, N, C, 4 * C, 1},
        {"fcprj bwd  dy@W^T", 0, 1, N, 4 * C, C, 1}, {"fcprj bwd  x^T@dy", 1, 0, 4 * C, C, N, 0},
        {"head  fwd  x@wte^T", 0, 1, N, V, C, 1},   {"head  bwd  dl@wte", 0, 0, N, C, V, 1},
        {"head  bwd  dl^T@x", 1, 0, V, C, N, 0},    {"att   QK^T (1 head)", 0, 1, T, T, 64, 0},
        {"att   PV   (1 head)", 0, 0, T, 64, T, 0},
    };
    printf("%-22s %6s %6s %6s | %8s %8s %8s %8s GFLOP/s\n", "product", "m", "n", "k", "blis", "dnnl", "dnnl-pB", "hand");
    for (size_t i = 0; i < sizeof sh / sizeof *sh; i++) {
        int m = sh[i].m, n = sh[i].n, k = sh[i].k;
        float *A = aligned_alloc(64, (size_t)m * k * 4 + 64), *B = aligned_alloc(64, (size_t)k * n * 4 + 64);
        float *Cc = aligned_alloc(64, (size_t)(m + MR) * (n + NR) * 4 + 64);
        for (size_t q = 0; q < (size_t)m * k; q++) A[q] = (float)((q * 7 + 3) % 17) * 0.01f - 0.08f;
        for (size_t q = 0; q < (size_t)k * n; q++) B[q] = (float)((q * 5 + 1) % 13) * 0.01f - 0.06f;
        int r = (size_t)m * n * k > 500000000 ? 3 : reps;
        int nthr = strncmp(sh[i].name, "att", 3) == 0 ? 1 : nt; /* attention: one thread per (b, h) */
        omp_set_num_threads(nthr);
        double fl = 2.0 * m * n * k;
        double tb = bench_blis(sh[i].ta, sh[i].tb, m, n, k, A, B, Cc, r, nthr);
        double td = bench_dnnl(sh[i].ta, sh[i].tb, m, n, k, A, B, Cc, r, sh[i].wb);
        /* dnnl-pB: weights as a plain bf16 copy (rounded once, not timed), oneDNN packs them per call */
        double tp = sh[i].wb ? bench_dnnl(sh[i].ta, sh[i].tb, m, n, k, A, B, Cc, r, 2) : td;
        double th = bench_hand(sh[i].ta, sh[i].tb, m, n, k, A, B, Cc, r, sh[i].wb);
        omp_set_num_threads(nt);
        printf("%-22s %6d %6d %6d | %8.0f %8.0f %8.0f %8.0f%s\n", sh[i].name, m, n, k, fl / tb / 1e9, fl / td / 1e9,
               fl / tp / 1e9, fl / th / 1e9, nthr == 1 ? "  (1 thread)" : "");
        fflush(stdout);
        free(A);
        free(B);
        free(Cc);
    }
    return 0;
}
