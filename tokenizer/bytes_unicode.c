/* bytes_unicode.c — GPT-2's reversible byte <-> printable-unicode table (bytes_to_unicode).
 * Byte-level BPE files (vocab.json, merges.txt) spell every byte as one printable code point:
 * printable Latin-1 bytes as themselves, the other 68 bytes as U+0100 upwards in byte order. */
#include "tok_internal.h"

static int printable(int b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

uint32_t tok_byte_to_cp(uint8_t b)
{
    if (printable(b)) return b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!printable(x)) n++;
    return 256u + (uint32_t)n;
}

int tok_byte_rank(uint8_t b)
{
    /* GPT-2 lists printable bytes first (in byte order), then the rest (in byte order) */
    int r = 0;
    if (printable(b)) {
        for (int x = 0; x < b; x++) r += printable(x);
        return r;
    }
    for (int x = 0; x < 256; x++) r += printable(x);
    for (int x = 0; x < b; x++) r += !printable(x);
    return r;
}

int tok_cp_to_byte(uint32_t cp)
{
    if (cp < 256) return printable((int)cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    int n = (int)(cp - 256);
    for (int x = 0; x < 256; x++)
        if (!printable(x) && n-- == 0) return x;
    return -1;
}
