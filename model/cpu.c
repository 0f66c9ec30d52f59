/* cpu.c — run-time CPU feature detection (CPUID + XGETBV) and the Linux AMX permission request,
 * done once under pthread_once. See cpu.h. */
#include "cpu.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

static cpu_info g_info; /* written once inside pthread_once, read-only afterwards */
static char g_str[96];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

/* Linux: ask for permission to use AMX tile data (XFEATURE_XTILEDATA = 18); 1 when granted */
static int request_amx(void)
{
#if defined(__linux__) && defined(__x86_64__) && defined(SYS_arch_prctl)
    const int ARCH_GET_XCOMP_PERM = 0x1022, ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18;
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0) return 0;
    unsigned long bits = 0;
    if (syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &bits) != 0) return 0;
    return (bits >> XFEATURE_XTILEDATA) & 1;
#else
    return 0;
#endif
}

static void detect(void)
{
    cpu_info c;
    memset(&c, 0, sizeof c);
#if defined(__x86_64__) || defined(__i386__)
    unsigned int a, b, cx, d;
    if (__get_cpuid(1, &a, &b, &cx, &d) && (cx >> 27 & 1)) { /* OSXSAVE: XGETBV is there */
        const unsigned long long xcr0 = xgetbv0();
        const int zmm_os = (xcr0 & 0xE6) == 0xE6;           /* SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM */
        const int tile_os = (xcr0 & 0x60000) == 0x60000;    /* XTILECFG, XTILEDATA */
        unsigned int max7 = 0;
        if (__get_cpuid_max(0, NULL) >= 7) {
            __cpuid_count(7, 0, max7, b, cx, d);
            c.avx512f = zmm_os && (b >> 16 & 1);
            c.amx_bf16 = d >> 22 & 1;
            c.amx_tile = d >> 24 & 1;
            if (max7 >= 1) {
                __cpuid_count(7, 1, a, b, cx, d);
                c.avx512_bf16 = c.avx512f && (a >> 5 & 1);
            }
            c.amx_usable = c.amx_tile && c.amx_bf16 && tile_os && request_amx();
        }
    }
#endif
    const char *mask = getenv("RLHF_CPU_MASK");
    for (const char *m = mask; m && *m;) {
        const size_t n = strcspn(m, ",");
        if ((n == 4 && strncmp(m, "bf16", 4) == 0) || (n == 3 && strncmp(m, "amx", 3) == 0)) {
            c.amx_tile = c.amx_bf16 = c.amx_usable = 0;
            if (n == 4) c.avx512_bf16 = 0;
        }
        m += n + (m[n] == ',');
    }
    g_info = c;
    snprintf(g_str, sizeof g_str, "%s%s%s%s", c.avx512f ? "avx512f " : "", c.avx512_bf16 ? "avx512_bf16 " : "",
             c.amx_bf16 ? (c.amx_usable ? "amx_bf16(usable) " : "amx_bf16(not granted) ") : "",
             c.avx512f ? "" : "no-avx512");
    size_t n = strlen(g_str);
    if (n && g_str[n - 1] == ' ') g_str[n - 1] = 0;
    if (mask && *mask) snprintf(g_str + strlen(g_str), sizeof g_str - strlen(g_str), " (RLHF_CPU_MASK=%.24s)", mask);
}

const cpu_info *cpu_features(void)
{
    pthread_once(&g_once, detect);
    return &g_info;
}

const char *cpu_features_str(void)
{
    pthread_once(&g_once, detect);
    return g_str;
}
