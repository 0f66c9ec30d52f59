/* pretok.c — GPT-2's pre-tokenization pattern, by hand, over utf8proc's Unicode categories.
 *
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *
 * Why by hand: a regex engine with look-ahead is slow and a large dependency; the pattern is a
 * small left-to-right scanner. \s is Unicode White_Space (as in the regex crates tiktoken uses),
 * \p{L} and \p{N} are the general categories L* and N*. An invalid UTF-8 byte is a one-byte
 * character of class "other".
 */
#include "tok_internal.h"

#include <utf8proc.h>

/* class of each ASCII byte */
static const uint8_t ascii_class[128] = {
    ['\t'] = TC_SPACE, ['\n'] = TC_SPACE, [0x0B] = TC_SPACE, [0x0C] = TC_SPACE, ['\r'] = TC_SPACE,
    [' '] = TC_SPACE,
    ['0'] = TC_NUMBER, ['1'] = TC_NUMBER, ['2'] = TC_NUMBER, ['3'] = TC_NUMBER, ['4'] = TC_NUMBER,
    ['5'] = TC_NUMBER, ['6'] = TC_NUMBER, ['7'] = TC_NUMBER, ['8'] = TC_NUMBER, ['9'] = TC_NUMBER,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1,
    ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1,
    ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1,
    ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1,
    ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static int is_white_space(uint32_t c)
{
    /* Unicode White_Space (PropList.txt), beyond ASCII */
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
           c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Class and byte length of the character at s[i]. */
static inline int char_at(const uint8_t *s, size_t n, size_t i, size_t *len)
{
    uint8_t b = s[i];
    if (b < 0x80) {
        *len = 1;
        return ascii_class[b];
    }
    utf8proc_int32_t cp;
    utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
    if (l <= 0) { /* invalid UTF-8: this byte alone, class other */
        *len = 1;
        return TC_OTHER;
    }
    *len = (size_t)l;
    if (is_white_space((uint32_t)cp)) return TC_SPACE;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return TC_LETTER;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return TC_NUMBER;
    default: return TC_OTHER;
    }
}

/* end of the run of characters of class cls starting at i */
static inline size_t run_end(const uint8_t *s, size_t n, size_t i, int cls)
{
    while (i < n) {
        size_t l;
        if (char_at(s, n, i, &l) != cls) break;
        i += l;
    }
    return i;
}

size_t pretok_next(const uint8_t *s, size_t n, size_t i)
{
    /* 's|'t|'re|'ve|'m|'ll|'d */
    if (s[i] == '\'' && i + 1 < n) {
        uint8_t c = s[i + 1];
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return i + 2;
        if (i + 2 < n) {
            uint8_t c2 = s[i + 2];
            if ((c == 'r' && c2 == 'e') || (c == 'v' && c2 == 'e') || (c == 'l' && c2 == 'l'))
                return i + 3;
        }
    }
    /* ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+' */
    size_t j = (s[i] == ' ' && i + 1 < n) ? i + 1 : i;
    size_t l;
    int cls = char_at(s, n, j, &l);
    if (cls != TC_SPACE) return run_end(s, n, j + l, cls);
    /* here s[i] starts a whitespace run: '\s+(?!\S)' then '\s+' */
    size_t k = i, last = i;
    while (k < n) {
        size_t cl;
        if (char_at(s, n, k, &cl) != TC_SPACE) break;
        last = k;
        k += cl;
    }
    if (k == n) return n;        /* whitespace to the end: all of it */
    if (last > i) return last;   /* leave the last white-space character for the next piece */
    return k;                    /* a single white-space character before non-space */
}

size_t pretok_safe_split(const uint8_t *s, size_t lo, size_t hi)
{
    /* p is a certain break when s[p-1] is a printable ASCII character (so the piece holding it is a
     * letter/number/other run or a contraction, and such pieces never take in white space) and
     * s[p] is ASCII white space. The pattern has no look-behind, so scanning from p is the same
     * whether or not the text before p is there. "<|endoftext|>" holds no white space, so a
     * special token is never cut either. */
    for (size_t p = lo + 1; p < hi; p++) {
        uint8_t c = s[p];
        if ((c == '\n' || c == ' ') && s[p - 1] > 0x20 && s[p - 1] < 0x7F) return p;
    }
    return hi;
}

void tok_pretokenize(const char *text, size_t len, void (*fn)(const char *, size_t, void *), void *ud)
{
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        size_t e = pretok_next(s, len, i);
        fn(text + i, e - i, ud);
        i = e;
    }
}
