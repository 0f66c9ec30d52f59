/* fuzz_dataset.c — libFuzzer target: the JSONL dataset loader (data/dataset.c), every kind of
 * record (text, prompt-completion, preference with and without a prompt or a margin, prompt-only).
 *
 * Input: one byte of options (required kind, length limits, EOS), then the JSONL text, loaded from
 * memory by ds_load_mem with a small byte-level BPE trained once at start-up, through one encoder
 * that lives across inputs (its cache warm, as fuzz_encode checks it may be), or, for one input in
 * 64, through a fresh one.
 *
 * Properties (abort on violation):
 *   - on failure, err is one non-empty line, NUL-terminated, naming the file;
 *   - on success: the kind is the required one; every example's token ranges lie in the token pool
 *     and respect the limits (prompt, completion, whole row) and the kind (no completion for
 *     prompt-only, no rejected outside preferences, no prompt for text); ids are in the
 *     vocabulary; max_row and n_completion_tokens add up; the streaming reader over the same bytes
 *     gives as many records of the same kind, each with the fields of its kind;
 *   - batches of the first examples have the documented tokens, targets, lengths and masks;
 *   - ds_prompts_make succeeds exactly when every prompt is non-empty.
 */
#include "fuzz_common.h"

#include "dataset.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static tok_tokenizer *g_tok;
static tok_encoder *g_enc; /* lent to 63 loads in 64: its cache lives on (a fresh one costs ~3 ms under ASan) */
#define NAME "fuzz.jsonl"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const char text[] = "the cat sat on the mat. the dog ate the log! prompts and completions, chosen "
                               "and rejected: {\"text\": 12, \"margin\": -3.5e2} caf\xC3\xA9 \xE2\x82\xAC 42";
    const char *texts[] = {text};
    const size_t lens[] = {sizeof text - 1};
    tok_train_opts o = tok_train_defaults();
    o.vocab_size = 300;
    o.nthreads = 1;
    char err[TOK_ERR_LEN];
    if (tok_train(texts, lens, 1, &o, &g_tok, err, sizeof err)) {
        fprintf(stderr, "fuzz_dataset: cannot train the tokenizer: %s\n", err);
        abort();
    }
    g_enc = tok_encoder_create(g_tok);
    FZ_CHECK(g_enc, "out of memory");
    return 0;
}

static void check_fail(const char *err)
{
    fz_check_err(err, "ds_load_mem");
    FZ_CHECK(strncmp(err, NAME, strlen(NAME)) == 0 || strstr(err, "out of memory") || strstr(err, "sequence length"),
             "error does not name the file: %s", err);
}

static void check_example(const ds_dataset *d, const ds_load_opts *o, const ds_example *x, size_t i)
{
    FZ_CHECK(x->np >= 0 && x->na >= 0 && x->nb >= 0, "example %zu: negative count", i);
    FZ_CHECK(x->prompt + (size_t)x->np <= d->ntok && x->a + (size_t)x->na <= d->ntok && x->b + (size_t)x->nb <= d->ntok,
             "example %zu: token range outside the pool of %zu", i, d->ntok);
    if (o->max_prompt_len > 0) FZ_CHECK(x->np <= o->max_prompt_len, "example %zu: prompt over the limit", i);
    if (o->max_completion_len > 0)
        FZ_CHECK(x->na <= o->max_completion_len && x->nb <= o->max_completion_len, "example %zu: completion over the limit", i);
    if (o->max_len > 0)
        FZ_CHECK(x->np + x->na <= o->max_len && x->np + x->nb <= o->max_len && x->np < o->max_len,
                 "example %zu: row over max_len %d (%d + %d/%d)", i, o->max_len, x->np, x->na, x->nb);
    if (d->kind == DS_TEXT) FZ_CHECK(x->np == 0, "text example %zu has a prompt", i);
    if (d->kind == DS_PROMPT_ONLY) FZ_CHECK(x->na == 0 && x->nb == 0, "prompt-only example %zu has a completion", i);
    else FZ_CHECK(x->na > 0 || o->max_len > 0, "example %zu: empty completion with no limit", i);
    if (d->kind != DS_PREFERENCE) FZ_CHECK(x->nb == 0, "example %zu: a rejected completion outside preferences", i);
    if (!d->has_margins) FZ_CHECK(x->margin == 0, "example %zu: a margin in a file without margins", i);
    FZ_CHECK(isfinite(x->margin), "example %zu: margin %g", i, (double)x->margin);
}

/* the reader over the same bytes: as many records, the same kind, the fields of the kind */
static void check_reader(const ds_dataset *d, const uint8_t *text, size_t len)
{
    ds_reader *r;
    char err[TOK_ERR_LEN];
    FZ_CHECK(ds_reader_open_mem(&r, (const char *)text, len, NAME, err, sizeof err) == 0, "ds_reader_open_mem: %s", err);
    ds_record rec;
    size_t n = 0;
    int got;
    while ((got = ds_reader_next(r, &rec, err, sizeof err)) == 1) {
        const ds_kind k = ds_reader_kind(r);
        FZ_CHECK(k == d->kind, "the reader says %s, the loader %s", ds_kind_name(k), ds_kind_name(d->kind));
        FZ_CHECK((k == DS_TEXT) == (rec.text != NULL), "record %zu: text field and kind disagree", n);
        FZ_CHECK((k == DS_PROMPT_COMPLETION) == (rec.completion != NULL), "record %zu: completion and kind disagree", n);
        FZ_CHECK((k == DS_PREFERENCE) == (rec.chosen != NULL && rec.rejected != NULL), "record %zu: chosen/rejected", n);
        FZ_CHECK((k == DS_TEXT) == (rec.prompt == NULL), "record %zu: prompt and kind disagree", n);
        if (rec.text) FZ_CHECK(strlen(rec.text) == rec.text_len && rec.text_len > 0, "record %zu: text length", n);
        if (rec.prompt) FZ_CHECK(strlen(rec.prompt) == rec.prompt_len, "record %zu: prompt length", n);
        FZ_CHECK(rec.line == d->ex[n].line, "record %zu: line %ld, the loader says %ld", n, rec.line, d->ex[n].line);
        n++;
        FZ_CHECK(n <= d->n, "the reader gives more records than the loader's %zu", d->n);
    }
    FZ_CHECK(got == 0, "the reader fails where the loader did not: %s", err);
    FZ_CHECK(n == d->n, "the reader gives %zu records, the loader %zu", n, d->n);
    ds_reader_close(r);
}

/* rows of the first examples: tokens, targets, lengths and masks as dataset.h says */
static void check_batch(const ds_dataset *d)
{
    size_t idx[4], k = d->n < 4 ? d->n : 4;
    for (size_t i = 0; i < k; i++) idx[i] = k - 1 - i;
    ds_batch b;
    char err[TOK_ERR_LEN];
    const int T = d->max_row > 0 ? d->max_row : 1;
    FZ_CHECK(ds_batch_create(&b, 2 * (int)k, T, err, sizeof err) == 0, "ds_batch_create: %s", err);
    FZ_CHECK(ds_batch_fill(d, idx, k, &b, err, sizeof err) == 0, "ds_batch_fill: %s", err);
    FZ_CHECK(b.B == (int)k * (d->kind == DS_PREFERENCE ? 2 : 1), "batch of %d rows for %zu examples", b.B, k);
    size_t masked = 0;
    for (int r = 0; r < b.B; r++) {
        const ds_example *x = &d->ex[b.index[r]];
        const int second = r >= (int)k, nc = d->kind == DS_PREFERENCE && second ? x->nb : x->na;
        const size_t c0 = second ? x->b : x->a;
        FZ_CHECK(b.index[r] == idx[second ? r - (int)k : r], "row %d: example index", r);
        FZ_CHECK(b.lengths[r] == x->np + nc && b.prompt_lengths[r] == x->np, "row %d: lengths", r);
        for (int t = 0; t < b.T; t++) {
            const int32_t want = t < x->np ? d->tok[x->prompt + (size_t)t] : t < x->np + nc ? d->tok[c0 + (size_t)(t - x->np)] : d->pad_id;
            const int32_t *row = b.tokens + (size_t)r * (size_t)b.T;
            FZ_CHECK(row[t] == want, "row %d, position %d: token %d, expected %d", r, t, row[t], want);
            FZ_CHECK(want >= 0 && (size_t)want < tok_vocab_size(g_tok), "row %d: id %d outside the vocabulary", r, want);
            const int real = t < b.lengths[r];
            FZ_CHECK(b.attn[(size_t)r * (size_t)b.T + (size_t)t] == (float)real, "row %d, position %d: attention mask", r, t);
            const int target_real = t + 1 < b.lengths[r];
            if (target_real)
                FZ_CHECK(b.targets[(size_t)r * (size_t)b.T + (size_t)t] == row[t + 1], "row %d, position %d: target", r, t);
            const float m = b.loss_mask[(size_t)r * (size_t)b.T + (size_t)t];
            FZ_CHECK(m == (float)(target_real && t + 1 >= x->np), "row %d, position %d: loss mask %g", r, t, (double)m);
            masked += m != 0;
        }
    }
    FZ_CHECK(ds_batch_loss_tokens(&b) == masked, "ds_batch_loss_tokens %zu, masks hold %zu", ds_batch_loss_tokens(&b), masked);
    ds_batch_free(&b);
}

static void check_prompts(const ds_dataset *d)
{
    ds_prompts p;
    char err[TOK_ERR_LEN];
    int all = 1;
    for (size_t i = 0; i < d->n; i++) all &= d->ex[i].np > 0;
    fz_err_reset(err);
    const int rc = ds_prompts_make(d, NULL, d->n, &p, err, sizeof err);
    FZ_CHECK((rc == 0) == all, "ds_prompts_make returns %d though %s prompt is empty", rc, all ? "no" : "a");
    if (rc) {
        fz_check_err(err, "ds_prompts_make");
        return;
    }
    FZ_CHECK(p.n == (int)d->n, "%d prompts of %zu", p.n, d->n);
    for (int i = 0; i < p.n; i++) FZ_CHECK(p.len[i] == d->ex[i].np, "prompt %d: length", i);
    ds_prompts_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const uint8_t opt = data[0];
    ds_load_opts o = ds_load_defaults();
    static const int kinds[] = {-1, -1, -1, -1, DS_TEXT, DS_PROMPT_COMPLETION, DS_PREFERENCE, DS_PROMPT_ONLY};
    static const int lens[] = {0, 0, 2, 5, 8, 0, 3, 0};
    o.require_kind = kinds[opt & 7];
    o.max_prompt_len = (opt >> 3) & 1 ? 3 : 0;
    o.max_completion_len = (opt >> 4) & 1 ? 4 : 0;
    o.max_len = lens[(opt >> 5) & 7];
    o.add_eos = !((opt >> 4) & 2 && (opt & 1));
    o.encoder = fz_input_hash(data, size) % 64 ? g_enc : NULL;
    const uint8_t *text = data + 1;
    const size_t len = size - 1;

    ds_dataset d;
    char err[TOK_ERR_LEN];
    fz_err_reset(err);
    if (ds_load_mem(&d, g_tok, (const char *)text, len, NAME, &o, err, sizeof err)) {
        check_fail(err);
        FZ_CHECK(d.n == 0 && d.ex == NULL && d.tok == NULL, "a failed load left a dataset behind");
        return 0;
    }
    FZ_CHECK(d.n > 0, "a dataset without examples loaded");
    if (o.require_kind >= 0) FZ_CHECK((int)d.kind == o.require_kind, "loaded a %s dataset", ds_kind_name(d.kind));
    int max_row = 0;
    size_t ncomp = 0;
    for (size_t i = 0; i < d.n; i++) {
        const ds_example *x = &d.ex[i];
        check_example(&d, &o, x, i);
        const int row = x->np + (x->na > x->nb ? x->na : x->nb);
        if (row > max_row) max_row = row;
        ncomp += (size_t)x->na + (size_t)x->nb;
    }
    for (size_t i = 0; i < d.ntok; i++)
        FZ_CHECK(d.tok[i] >= 0 && (size_t)d.tok[i] < tok_vocab_size(g_tok), "token %zu: id %d", i, d.tok[i]);
    FZ_CHECK(max_row == d.max_row, "max_row %d, the examples give %d", d.max_row, max_row);
    FZ_CHECK(ncomp == d.n_completion_tokens, "n_completion_tokens %zu, the examples give %zu", d.n_completion_tokens, ncomp);
    check_reader(&d, text, len);
    if (d.max_row > 0) check_batch(&d);
    check_prompts(&d);
    ds_free(&d);
    return 0;
}
