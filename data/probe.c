/* probe.c — the words a scorer pays most for, and whole-word search in a sample. See probe.h. */
#include "probe.h"

#include "fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when token id is a space and PROBE_MIN_LETTERS.. lower-case ASCII letters; the word into w */
static int candidate(const tok_tokenizer *t, int32_t id, char w[PROBE_MAX_WORD])
{
    size_t len;
    const uint8_t *b = tok_token_bytes(t, id, &len);
    if (!b || len < 1 + PROBE_MIN_LETTERS || len >= PROBE_MAX_WORD || b[0] != ' ') return 0;
    for (size_t i = 1; i < len; i++)
        if (b[i] < 'a' || b[i] > 'z') return 0;
    memcpy(w, b + 1, len - 1);
    w[len - 1] = 0;
    return 1;
}

static int letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

static int by_score(const void *a, const void *b)
{
    const probe_word *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    if (x->id != y->id) return (x->id > y->id) - (x->id < y->id);
    return strcmp(x->word, y->word);
}

/* rows [r0, r0 + B) of the probe (row r: word r / np after prompt r % np) into tok/len/plen */
static void fill_rows(const probe_word *w, const ds_prompts *p, int32_t stop, long r0, int B, int T, int32_t *tok,
                      int *len, int *plen)
{
    for (int b = 0; b < B; b++) {
        const long r = r0 + b;
        const int i = (int)(r % p->n), n = p->len[i];
        int32_t *row = tok + (size_t)b * T;
        memcpy(row, p->rows[i], (size_t)n * sizeof *row);
        row[n] = w[r / p->n].id;
        for (int k = n + 1; k < T; k++) row[k] = stop; /* the stop token, then padding */
        len[b] = n + 2;
        plen[b] = n;
    }
}

int probe_words(const scorer *s, const tok_tokenizer *t, const ds_prompts *p, int batch, probe_word **out, int *n,
                char *err, size_t errlen)
{
    *out = NULL;
    *n = 0;
    const int32_t stop = tok_eot_id(t);
    if (stop < 0) return fio_fail(err, errlen, "probe: the tokenizer has no <|endoftext|>");
    if (p->n < 1 || batch < 1) return fio_fail(err, errlen, "probe: no prompts");
    const int V = (int)tok_vocab_size(t);
    probe_word *w = malloc((size_t)V * sizeof *w);
    if (!w) return fio_fail(err, errlen, "out of memory");
    int nw = 0;
    for (int32_t id = 0; id < V; id++)
        if (candidate(t, id, w[nw].word)) {
            w[nw].id = id;
            w[nw].share = 0;
            w[nw++].score = 0;
        }
    if (nw == 0) {
        free(w);
        return fio_fail(err, errlen, "probe: no word of %d+ letters in the vocabulary", PROBE_MIN_LETTERS);
    }
    const int T = ds_prompts_max_len(p) + 2;
    int32_t *tok = malloc((size_t)batch * T * sizeof *tok);
    int *len = malloc((size_t)batch * sizeof *len), *plen = malloc((size_t)batch * sizeof *plen);
    float *sc = malloc((size_t)batch * sizeof *sc);
    int rc = tok && len && plen && sc ? 0 : fio_fail(err, errlen, "out of memory");
    const long rows = (long)nw * p->n;
    for (long r0 = 0; rc == 0 && r0 < rows; r0 += batch) {
        const int B = rows - r0 < batch ? (int)(rows - r0) : batch;
        fill_rows(w, p, stop, r0, B, T, tok, len, plen);
        rc = scorer_score(s, tok, len, plen, B, T, sc, err, errlen);
        for (int b = 0; rc == 0 && b < B; b++) w[(r0 + b) / p->n].score += sc[b] / p->n;
    }
    free(tok);
    free(len);
    free(plen);
    free(sc);
    if (rc) {
        free(w);
        return -1;
    }
    qsort(w, (size_t)nw, sizeof *w, by_score);
    *out = w;
    *n = nw;
    return 0;
}


int probe_has_word(const char *text, size_t n, const char *word)
{
    const size_t k = strlen(word);
    if (k == 0 || k > n) return 0;
    for (size_t i = 0; i + k <= n; i++) {
        if (i > 0 && letter(text[i - 1])) continue;
        if (i + k < n && letter(text[i + k])) continue;
        size_t j = 0;
        while (j < k && (text[i + j] | 0x20) == word[j] && letter(text[i + j])) j++;
        if (j == k) return 1;
    }
    return 0;
}

/* one occurrence of a word (case folded) in completion j */
typedef struct {
    char w[PROBE_MAX_WORD];
    int j;
} occurrence;

static int by_word(const void *a, const void *b)
{
    const occurrence *x = a, *y = b;
    const int c = strcmp(x->w, y->w);
    return c ? c : (x->j > y->j) - (x->j < y->j);
}

/* every maximal run of PROBE_MIN_LETTERS+ letters of every text, case folded; NULL when out of memory */
static occurrence *occurrences(const char *const *texts, int n, size_t *count)
{
    size_t cap = 1024, k = 0;
    occurrence *o = malloc(cap * sizeof *o);
    for (int j = 0; o && j < n; j++)
        for (const char *p = texts[j]; *p;) {
            if (!letter(*p)) {
                p++;
                continue;
            }
            size_t len = 0;
            while (letter(p[len])) len++;
            if (len >= PROBE_MIN_LETTERS && len < PROBE_MAX_WORD) {
                if (k == cap) {
                    occurrence *q = realloc(o, 2 * cap * sizeof *o);
                    if (!q) {
                        free(o);
                        return NULL;
                    }
                    o = q;
                    cap *= 2;
                }
                for (size_t i = 0; i < len; i++) o[k].w[i] = (char)(p[i] | 0x20);
                o[k].w[len] = 0;
                o[k++].j = j;
            }
            p += len;
        }
    *count = k;
    return o;
}

int probe_presence(const char *const *texts, const float *scores, int n, double min_share, probe_word **out, int *nw,
                   char *err, size_t errlen)
{
    *out = NULL;
    *nw = 0;
    size_t k;
    occurrence *o = occurrences(texts, n, &k);
    probe_word *w = o ? malloc((k + 1) * sizeof *w) : NULL;
    if (!w) {
        free(o);
        return fio_fail(err, errlen, "out of memory");
    }
    qsort(o, k, sizeof *o, by_word);
    double total = 0;
    for (int j = 0; j < n; j++) total += scores[j];
    const double need = min_share * n > 2 ? min_share * n : 2;
    int m = 0;
    for (size_t a = 0, b; a < k; a = b) {
        /* the completions containing o[a].w, each once */
        long with = 0;
        double sum = 0;
        for (b = a; b < k && strcmp(o[b].w, o[a].w) == 0; b++)
            if (b == a || o[b].j != o[b - 1].j) {
                with++;
                sum += scores[o[b].j];
            }
        if (with < need || with == n) continue;
        snprintf(w[m].word, sizeof w[m].word, "%s", o[a].w);
        w[m].id = -1;
        w[m].score = sum / with - (total - sum) / (n - with);
        w[m++].share = (double)with / n;
    }
    free(o);
    qsort(w, (size_t)m, sizeof *w, by_score);
    *out = w;
    *nw = m;
    return 0;
}
