/* fuzz_reward_lines.c — libFuzzer target: the parser of an external reward program's answers
 * (reward_cmd_parse_lines, data/reward_cmd.c): one finite number per line, read as they come.
 *
 * Input: one byte for the batch size B (1..16), one for the read size (1..64 bytes at a time), then
 * what the program writes on its standard output.
 *
 * Properties (abort on violation):
 *   - fed in pieces as reads deliver them (the caller keeps the unused tail, as reward_cmd.c does),
 *     the scores and the verdict are those of the whole output at once;
 *   - every score is a finite float; every accepted line is one number with blanks around it at the
 *     most (no NUL, nothing after it), and equals strtod of that line rounded to float;
 *   - *used ends just after a '\n' (or is 0) and never passes the input; *have never passes B;
 *   - a refusal quotes the line in one NUL-terminated printable line.
 */
#include "fuzz_common.h"

#include "reward.h"

#include <ctype.h>
#include <float.h>
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* parse in pieces of `step` bytes; returns the verdict, scores and count */
static int run(const uint8_t *out, size_t len, size_t step, int B, float *scores, int *have, char *bad, size_t nbad)
{
    uint8_t *buf = malloc(len + 1);
    FZ_CHECK(buf, "out of memory");
    size_t n = 0, fed = 0;
    int rc = 0;
    *have = 0;
    while (fed < len && rc == 0) {
        const size_t k = len - fed < step ? len - fed : step;
        memcpy(buf + n, out + fed, k);
        n += k;
        fed += k;
        size_t used = (size_t)-1;
        const int before = *have;
        rc = reward_cmd_parse_lines(buf, n, scores, B, have, &used, bad, nbad);
        FZ_CHECK(used <= n, "used %zu of %zu bytes", used, n);
        FZ_CHECK(used == 0 || buf[used - 1] == '\n', "used ends inside a line");
        FZ_CHECK(*have >= before && *have <= B, "have %d (was %d, B %d)", *have, before, B);
        memmove(buf, buf + used, n - used);
        n -= used;
    }
    free(buf);
    return rc;
}

/* the line that gave score i: the i-th line of out */
static void check_line(const uint8_t *out, size_t len, int i, float score)
{
    const uint8_t *s = out, *end = out + len;
    for (int k = 0; k < i; k++) s = (const uint8_t *)memchr(s, '\n', (size_t)(end - s)) + 1;
    const uint8_t *nl = memchr(s, '\n', (size_t)(end - s));
    FZ_CHECK(nl, "score %d without a complete line", i);
    const size_t n = (size_t)(nl - s);
    FZ_CHECK(!memchr(s, 0, n), "line %d holds a NUL byte and was taken as %g", i, (double)score);
    char line[256];
    FZ_CHECK(n < sizeof line, "line %d of %zu bytes was taken", i, n);
    memcpy(line, s, n);
    line[n] = 0;
    char *e;
    const double v = strtod(line, &e);
    while (*e == ' ' || *e == '\t' || *e == '\r') e++;
    FZ_CHECK(e != line && *e == 0, "line %d is not one number, yet it gave %g", i, (double)score);
    FZ_CHECK(isfinite(score) && fabs(v) <= FLT_MAX, "line %d gave the non-finite float %g (%g)", i, (double)score, v);
    FZ_CHECK(score == (float)v, "line %d: %g, strtod says %g", i, (double)score, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    const int B = 1 + data[0] % 16;
    const size_t step = 1 + data[1] % 64;
    const uint8_t *out = data + 2;
    const size_t len = size - 2;
    float whole[16], piece[16];
    int hw, hp;
    char bw[64], bp[64];
    memset(bw, 0xA5, sizeof bw);
    memset(bp, 0xA5, sizeof bp);
    const int rw = run(out, len, len ? len : 1, B, whole, &hw, bw, sizeof bw);
    const int rp = run(out, len, step, B, piece, &hp, bp, sizeof bp);
    FZ_CHECK(rw == rp && hw == hp, "in pieces of %zu: verdict %d after %d scores, at once %d after %d", step, rp, hp, rw, hw);
    FZ_CHECK(hw == 0 || memcmp(whole, piece, (size_t)hw * sizeof *whole) == 0, "in pieces the scores differ");
    for (int i = 0; i < hw; i++) check_line(out, len, i, whole[i]);
    if (rw) {
        const char *nul = memchr(bw, 0, sizeof bw);
        FZ_CHECK(nul && nul > bw, "the refusal's quote is empty or not NUL-terminated");
        for (const char *p = bw; p < nul; p++) FZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7F, "control character in the quote");
        FZ_CHECK(strcmp(bw, bp) == 0, "two quotes of one refusal: %s / %s", bw, bp);
    }
    return 0;
}
