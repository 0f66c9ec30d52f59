/* scorer.c — completions of scored rows and the gold judge as a scorer. See scorer.h. */
#include "scorer.h"

#include "fileio.h"

int scorer_completion(const int32_t *tokens, const int *lengths, const int *prompt_lengths, int b, int T, int32_t stop,
                      const int32_t **out)
{
    const int32_t *row = tokens + (size_t)b * T;
    int n = lengths[b] - prompt_lengths[b];
    if (n > 0 && stop >= 0 && row[lengths[b] - 1] == stop) n--;
    *out = row + prompt_lengths[b];
    return n;
}

static int judge_rows(void *ud, const int32_t *tokens, const int *lengths, const int *prompt_lengths, int B, int T,
                      float *scores, char *err, size_t errlen)
{
    const scorer_judge *g = ud;
    tok_bytes text = {0};
    int rc = 0;
    for (int b = 0; b < B && rc == 0; b++) {
        const int32_t *c;
        const int n = scorer_completion(tokens, lengths, prompt_lengths, b, T, g->stop_token, &c);
        text.n = 0;
        rc = tok_decode_lenient(g->t, c, (size_t)n, &text, err, errlen);
        judge_result jr;
        if (rc == 0) judge_score(g->j, (const char *)text.data, text.n, &jr);
        scores[b] = rc == 0 ? (float)jr.norm : 0.0f;
    }
    tok_bytes_free(&text);
    return rc;
}

scorer scorer_judge_make(scorer_judge *g) { return (scorer){judge_rows, g}; }
