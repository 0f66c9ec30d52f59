/* cpu.h — what the CPU this process runs on can do, detected once at run time.
 *
 * Why: the same binary runs on AMD Zen 5 (AVX-512 with AVX512-BF16, no AMX) and on Intel CPUs with
 * AMX; the bf16 products (model/mm.h) pick their path from this, never from how the code was
 * compiled. Detection runs once per process (thread-safe); afterwards cpu_features() only reads a
 * cached, read-only record. On Linux, AMX tile data must be requested from the kernel once
 * (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)) before any thread touches the tiles: the
 * detection does that, and amx_usable says whether the kernel granted it.
 *
 * RLHF_CPU_MASK (environment, read once at detection): a comma-separated list of features to treat
 * as absent — "bf16" (AVX512-BF16 and AMX) or "amx" — so a CPU that has them runs, and the tests
 * check, the paths of one that does not (oneDNN's ONEDNN_MAX_CPU_ISA plays the same role for it).
 * An unknown name is ignored. */
#ifndef RLHF_CPU_H
#define RLHF_CPU_H

typedef struct {
    int avx512f;     /* AVX-512 foundation, with the OS saving the zmm state */
    int avx512_bf16; /* vdpbf16ps / vcvtne2ps2bf16 (and the OS saves the zmm state) */
    int amx_tile;    /* AMX tiles (CPUID) */
    int amx_bf16;    /* AMX bf16 tile products (CPUID) */
    int amx_usable;  /* amx_tile && amx_bf16 && the OS enables tile state && the kernel granted it */
} cpu_info;

/* The cached record (detected on the first call; safe from any thread). */
const cpu_info *cpu_features(void);

/* One line for reports, e.g. "avx512f avx512_bf16 amx_bf16(usable)"; static storage. */
const char *cpu_features_str(void);

#endif
