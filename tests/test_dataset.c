/* test_dataset.c — data/dataset.h: every dataset kind parsed (implicit prompts split as TRL's
 * extract_prompt does), every bad input refused with the exact file:line:column and field, the
 * truncation rules (prompts from the left, completions from the right, the whole row within
 * max_len), batches (padding, targets, attention and loss masks, chosen rows then rejected rows)
 * and the seeded order.
 *
 * The tokenizer is byte-level with no merges (vocabulary 257: 256 bytes + <|endoftext|>), so every
 * byte is one token and every expected length below is a byte count done by hand. */
#include "dataset.h"
#include "testutil.h"
#include "tok.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tok_tokenizer *bytes_tok(void)
{
    tok_train_opts o = tok_train_defaults();
    o.vocab_size = 257;
    const char *texts[] = {"any text at all"};
    size_t lens[] = {strlen(texts[0])};
    tok_tokenizer *t;
    char err[512];
    cr_assert(tok_train(texts, lens, 1, &o, &t, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(tok_vocab_size(t), 257);
    return t;
}

/* the ids of s (one per byte with this tokenizer), then EOS when eos >= 0 */
static tok_ids ids_of(const tok_tokenizer *t, const char *s, int32_t eos)
{
    tok_ids v = {0};
    tok_encoder *e = tok_encoder_create(t);
    cr_assert(tok_encode(e, s, strlen(s), 0, &v) == 0);
    tok_encoder_free(e);
    cr_assert_eq(v.n, strlen(s), "not byte-level");
    if (eos >= 0) tok_ids_push(&v, eos);
    return v;
}

static void expect_tokens(const tok_tokenizer *t, const int32_t *got, int n, const char *s, int32_t eos, const char *what)
{
    tok_ids v = ids_of(t, s, eos);
    cr_assert_eq((size_t)n, v.n, "%s: %d tokens, expected %zu", what, n, v.n);
    cr_assert(memcmp(got, v.ids, v.n * sizeof *got) == 0, "%s: wrong tokens", what);
    tok_ids_free(&v);
}

static void load_ok(ds_dataset *d, const tok_tokenizer *t, const char *file, const ds_load_opts *o)
{
    char err[1024];
    cr_assert(ds_load(d, t, tu_data(file), o, err, sizeof err) == 0, "%s: %s", file, err);
}

Test(dataset, every_kind)
{
    tok_tokenizer *t = bytes_tok();
    const int32_t eos = tok_eot_id(t);
    cr_assert(eos >= 0);
    ds_dataset d;
    /* text: blank line 3 skipped, extra fields ignored, EOS appended */
    load_ok(&d, t, "datasets/text.jsonl", NULL);
    cr_assert_eq(d.kind, DS_TEXT);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.ex[2].line, 4);
    cr_assert_eq(d.ex[0].np, 0);
    expect_tokens(t, d.tok + d.ex[0].a, d.ex[0].na, "hello world", eos, "text 1");
    expect_tokens(t, d.tok + d.ex[2].a, d.ex[2].na, "caf\xc3\xa9", eos, "text 3 (UTF-8 from a \\u escape)");
    cr_assert_eq(d.pad_id, eos);
    ds_free(&d);
    /* prompt-completion: the prompt without EOS, the completion with it; an empty prompt is allowed */
    load_ok(&d, t, "datasets/pc.jsonl", NULL);
    cr_assert_eq(d.kind, DS_PROMPT_COMPLETION);
    cr_assert_eq(d.n, 3);
    expect_tokens(t, d.tok + d.ex[0].prompt, d.ex[0].np, "Q: 1+1?", -1, "prompt 1");
    expect_tokens(t, d.tok + d.ex[0].a, d.ex[0].na, " 2", eos, "completion 1");
    cr_assert_eq(d.ex[1].np, 0);
    cr_assert_eq(d.ex[1].line, 3);
    cr_assert_eq(d.max_row, 6 + 7);
    cr_assert_eq(d.n_prompt_cut + d.n_completion_cut, 0);
    ds_free(&d);
    /* preference with an explicit prompt */
    load_ok(&d, t, "datasets/prefs.jsonl", NULL);
    cr_assert_eq(d.kind, DS_PREFERENCE);
    cr_assert(!d.implicit_prompt);
    expect_tokens(t, d.tok + d.ex[0].prompt, d.ex[0].np, "The sky is", -1, "prompt");
    expect_tokens(t, d.tok + d.ex[0].a, d.ex[0].na, " blue.", eos, "chosen");
    expect_tokens(t, d.tok + d.ex[0].b, d.ex[0].nb, " green.", eos, "rejected");
    ds_free(&d);
    /* prompt-only */
    load_ok(&d, t, "datasets/prompts.jsonl", NULL);
    cr_assert_eq(d.kind, DS_PROMPT_ONLY);
    expect_tokens(t, d.tok + d.ex[1].prompt, d.ex[1].np, "a time", -1, "prompt");
    cr_assert_eq(d.ex[1].na + d.ex[1].nb, 0);
    ds_free(&d);
    tok_free(t);
}

/* TRL's extract_prompt, checked on the raw strings the reader returns */
Test(dataset, implicit_prompt_is_the_shared_prefix)
{
    char err[1024];
    ds_reader *r;
    cr_assert(ds_reader_open(&r, tu_data("datasets/implicit.jsonl"), err, sizeof err) == 0, "%s", err);
    static const char *want[][3] = {
        {"The sky is", " blue.", " green."}, /* the space before the first difference goes with the completions */
        {"a", "b", "bc"},                    /* "ab" is a prefix of "abc": TRL's loop stops one short */
        {"x caf", "\xc3\xa9", "\xc3\xa8"},   /* é/è differ in their second byte: the cut backs off to the first */
    };
    ds_record rec;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(ds_reader_next(r, &rec, err, sizeof err), 1, "%s", err);
        cr_assert_eq(ds_reader_kind(r), DS_PREFERENCE);
        cr_assert(ds_reader_implicit_prompt(r));
        cr_assert_str_eq(rec.prompt, want[i][0], "record %d", i + 1);
        cr_assert_eq(rec.prompt_len, strlen(want[i][0]));
        cr_assert_str_eq(rec.chosen, want[i][1], "record %d", i + 1);
        cr_assert_str_eq(rec.rejected, want[i][2], "record %d", i + 1);
        cr_assert_eq(rec.rejected_len, strlen(want[i][2]));
    }
    cr_assert_eq(ds_reader_next(r, &rec, err, sizeof err), 0);
    ds_reader_close(r);
}

/* each bad file, with the message it must produce (written by hand from the file's bytes) */
Test(dataset, bad_inputs_name_file_line_column_and_field)
{
    tok_tokenizer *t = bytes_tok();
    static const struct {
        const char *file, *msg;
    } cases[] = {
        {"bad_json.jsonl", "bad_json.jsonl:3:14: invalid JSON: "}, /* the '}' after a trailing comma */
        {"bad_duplicate.jsonl", "bad_duplicate.jsonl:1:20: invalid JSON: duplicate object key"},
        {"bad_type.jsonl", "bad_type.jsonl:2:1: field \"chosen\" must be a string"},
        {"bad_missing.jsonl", "bad_missing.jsonl:4:1: field \"completion\" is missing (line 1 makes this a prompt-completion dataset"},
        {"bad_extra.jsonl", "bad_extra.jsonl:2:1: field \"prompt\" does not belong here (line 1 makes this a implicit-prompt preference dataset"},
        {"bad_empty_completion.jsonl", "bad_empty_completion.jsonl:2:1: field \"completion\" is empty"},
        {"bad_kind.jsonl", "bad_kind.jsonl:1:1: no dataset kind has the fields none"},
        {"bad_conversational.jsonl", "bad_conversational.jsonl:1:1: field \"prompt\" must be a string (conversational"},
        {"bad_not_object.jsonl", "bad_not_object.jsonl:2:1: a record must be a JSON object"},
        {"bad_same.jsonl", "bad_same.jsonl:1:1: fields \"chosen\" and \"rejected\" are the same text"},
        {"empty.jsonl", "empty.jsonl: empty file (no records)"},
        {"blank.jsonl", "blank.jsonl: empty file (no records)"},
        {"no_such_file.jsonl", "no_such_file.jsonl: cannot open"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char rel[256], err[1024];
        snprintf(rel, sizeof rel, "datasets/%s", cases[i].file);
        ds_dataset d;
        memset(&d, 0x5a, sizeof d);
        cr_assert(ds_load(&d, t, tu_data(rel), NULL, err, sizeof err) != 0, "%s was accepted", cases[i].file);
        cr_assert(strstr(err, cases[i].msg), "%s:\n got: %s\nwant: ...%s", cases[i].file, err, cases[i].msg);
        cr_assert(!strchr(err, '\n'), "not one line: %s", err);
        cr_assert(d.n == 0 && d.ex == NULL && d.tok == NULL, "%s: dataset not left empty", cases[i].file);
    }
    /* a file of the wrong kind for the caller */
    ds_load_opts o = ds_load_defaults();
    o.require_kind = DS_PREFERENCE;
    char err[1024];
    ds_dataset d;
    cr_assert(ds_load(&d, t, tu_data("datasets/pc.jsonl"), &o, err, sizeof err) != 0);
    cr_assert(strstr(err, "pc.jsonl:1:1: this is a prompt-completion dataset") && strstr(err, "a preference dataset is needed"),
              "%s", err);
    tok_free(t);
}

Test(dataset, truncation_rules)
{
    tok_tokenizer *t = bytes_tok();
    const int32_t eos = tok_eot_id(t);
    ds_dataset d;
    /* per-part limits: prompts keep their end, completions their start (and lose EOS when cut) */
    ds_load_opts o = ds_load_defaults();
    o.max_prompt_len = 2;
    o.max_completion_len = 3;
    load_ok(&d, t, "datasets/pc.jsonl", &o);
    expect_tokens(t, d.tok + d.ex[0].prompt, d.ex[0].np, "1?", -1, "prompt 1 cut from the left");
    expect_tokens(t, d.tok + d.ex[0].a, d.ex[0].na, " 2", eos, "completion 1 fits (3 with EOS)");
    expect_tokens(t, d.tok + d.ex[1].a, d.ex[1].na, "xyz", -1, "completion 2 cut: EOS gone");
    expect_tokens(t, d.tok + d.ex[2].prompt, d.ex[2].np, "ef", -1, "prompt 3");
    expect_tokens(t, d.tok + d.ex[2].a, d.ex[2].na, "ghi", -1, "completion 3");
    cr_assert_eq(d.n_prompt_cut, 2);
    cr_assert_eq(d.n_completion_cut, 2);
    ds_free(&d);
    /* the whole row within max_len: the completion gives way first, the prompt keeps one slot free */
    o = ds_load_defaults();
    o.max_len = 5;
    load_ok(&d, t, "datasets/pc.jsonl", &o);
    expect_tokens(t, d.tok + d.ex[0].prompt, d.ex[0].np, "1+1?", -1, "prompt 1 within max_len");
    expect_tokens(t, d.tok + d.ex[0].a, d.ex[0].na, " ", -1, "completion 1 within max_len");
    expect_tokens(t, d.tok + d.ex[1].a, d.ex[1].na, "xyz", eos, "row 2 fits (4 tokens)");
    expect_tokens(t, d.tok + d.ex[2].prompt, d.ex[2].np, "cdef", -1, "prompt 3");
    expect_tokens(t, d.tok + d.ex[2].a, d.ex[2].na, "g", -1, "completion 3");
    cr_assert_eq(d.max_row, 5);
    ds_free(&d);
    /* a preference pair shares one prompt cut; each completion fits the room left */
    o = ds_load_defaults();
    o.max_len = 8;
    load_ok(&d, t, "datasets/prefs.jsonl", &o);
    expect_tokens(t, d.tok + d.ex[0].prompt, d.ex[0].np, " sky is", -1, "pair prompt");
    expect_tokens(t, d.tok + d.ex[0].a, d.ex[0].na, " ", -1, "chosen");
    expect_tokens(t, d.tok + d.ex[0].b, d.ex[0].nb, " ", -1, "rejected");
    expect_tokens(t, d.tok + d.ex[1].prompt, d.ex[1].np, "1+1=", -1, "pair 2 prompt fits");
    expect_tokens(t, d.tok + d.ex[1].a, d.ex[1].na, "2", eos, "pair 2 chosen fits");
    expect_tokens(t, d.tok + d.ex[1].b, d.ex[1].nb, "11", eos, "pair 2 rejected fits");
    ds_free(&d);
    tok_free(t);
}

/* the row rule of dataset.h, spelled out for row r holding `prompt` then `comp` */
static void expect_row(const ds_batch *b, int r, const tok_tokenizer *t, const char *prompt, const char *comp,
                       int32_t eos, int32_t pad, int text)
{
    tok_ids p = ids_of(t, prompt, -1), c = ids_of(t, comp, eos);
    int np = (int)p.n, n = (int)(p.n + c.n);
    cr_assert_eq(b->lengths[r], n, "row %d length", r);
    cr_assert_eq(b->prompt_lengths[r], np, "row %d prompt length", r);
    const int32_t *tk = b->tokens + (size_t)r * b->T, *tg = b->targets + (size_t)r * b->T;
    const float *at = b->attn + (size_t)r * b->T, *lm = b->loss_mask + (size_t)r * b->T;
    for (int i = 0; i < b->T; i++) {
        int32_t want = i < np ? p.ids[i] : i < n ? c.ids[i - np] : pad;
        int32_t next = i + 1 < np ? p.ids[i + 1] : i + 1 < n ? c.ids[i + 1 - np] : pad;
        cr_assert_eq(tk[i], want, "row %d token %d", r, i);
        cr_assert_eq(tg[i], next, "row %d target %d", r, i);
        cr_assert_eq(at[i], i < n ? 1.0f : 0.0f, "row %d attention %d", r, i);
        /* trained on: the next token is a completion token (text: any real next token) */
        int on = i + 1 < n && (text || i + 1 >= np);
        cr_assert_eq(lm[i], on ? 1.0f : 0.0f, "row %d loss mask %d", r, i);
    }
    tok_ids_free(&p);
    tok_ids_free(&c);
}

Test(dataset, batches_pad_right_and_mask_prompts)
{
    tok_tokenizer *t = bytes_tok();
    const int32_t eos = tok_eot_id(t);
    char err[1024];
    ds_dataset d;
    ds_batch b;
    /* prompt-completion: rows in the order asked for, T = the longest row (13) */
    load_ok(&d, t, "datasets/pc.jsonl", NULL);
    cr_assert(ds_batch_create(&b, 4, d.max_row, err, sizeof err) == 0, "%s", err);
    size_t idx[3] = {2, 0, 1};
    cr_assert(ds_batch_fill(&d, idx, 3, &b, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.B, 3);
    cr_assert_eq(b.T, 13);
    expect_row(&b, 0, t, "abcdef", "ghijkl", eos, d.pad_id, 0);
    expect_row(&b, 1, t, "Q: 1+1?", " 2", eos, d.pad_id, 0);
    expect_row(&b, 2, t, "", "xyz", eos, d.pad_id, 0);
    cr_assert_eq(b.index[0], 2);
    /* completion tokens: 7 (ghijkl+EOS) + 3 ( 2+EOS) + 3 (yz+EOS: nothing predicts the first token) */
    cr_assert_eq(ds_batch_loss_tokens(&b), 13);
    /* a smaller batch uses fewer columns */
    size_t one = 0;
    cr_assert(ds_batch_fill(&d, &one, 1, &b, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.T, 10);
    expect_row(&b, 0, t, "Q: 1+1?", " 2", eos, d.pad_id, 0);
    /* capacity is checked */
    size_t many[5] = {0, 1, 2, 0, 1};
    cr_assert(ds_batch_fill(&d, many, 5, &b, err, sizeof err) != 0);
    cr_assert(strstr(err, "5 rows") && strstr(err, "4 allocated"), "%s", err);
    ds_batch_free(&b);
    ds_free(&d);
    /* text: every real next token is trained on */
    load_ok(&d, t, "datasets/text.jsonl", NULL);
    cr_assert(ds_batch_create(&b, 3, d.max_row, err, sizeof err) == 0, "%s", err);
    size_t all[3] = {0, 1, 2};
    cr_assert(ds_batch_fill(&d, all, 3, &b, err, sizeof err) == 0, "%s", err);
    expect_row(&b, 0, t, "", "hello world", eos, d.pad_id, 1);
    expect_row(&b, 1, t, "", "ab", eos, d.pad_id, 1);
    ds_batch_free(&b);
    ds_free(&d);
    /* preference: chosen rows, then the rejected rows of the same pairs in the same order */
    load_ok(&d, t, "datasets/prefs.jsonl", NULL);
    cr_assert(ds_batch_create(&b, 4, d.max_row, err, sizeof err) == 0, "%s", err);
    size_t pairs[2] = {1, 0};
    cr_assert(ds_batch_fill(&d, pairs, 2, &b, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.B, 4);
    expect_row(&b, 0, t, "1+1=", "2", eos, d.pad_id, 0);
    expect_row(&b, 1, t, "The sky is", " blue.", eos, d.pad_id, 0);
    expect_row(&b, 2, t, "1+1=", "11", eos, d.pad_id, 0);
    expect_row(&b, 3, t, "The sky is", " green.", eos, d.pad_id, 0);
    cr_assert(b.index[0] == 1 && b.index[2] == 1 && b.index[1] == 0 && b.index[3] == 0);
    /* 3 pairs do not fit 4 rows */
    size_t three[3] = {0, 1, 0};
    cr_assert(ds_batch_fill(&d, three, 3, &b, err, sizeof err) != 0);
    ds_batch_free(&b);
    ds_free(&d);
    /* prompt-only: the prompts alone, nothing trained on */
    load_ok(&d, t, "datasets/prompts.jsonl", NULL);
    cr_assert(ds_batch_create(&b, 2, d.max_row, err, sizeof err) == 0, "%s", err);
    cr_assert(ds_batch_fill(&d, all, 2, &b, err, sizeof err) == 0, "%s", err);
    cr_assert_eq(b.lengths[0], 9);
    cr_assert_eq(b.lengths[1], 6);
    cr_assert_eq(ds_batch_loss_tokens(&b), 0);
    ds_batch_free(&b);
    ds_free(&d);
    tok_free(t);
}

Test(dataset, seeded_order)
{
    enum { N = 50 };
    size_t a[N], b[N];
    ds_order(N, 7, 0, a);
    ds_order(N, 7, 0, b);
    cr_assert(memcmp(a, b, sizeof a) == 0, "same seed and epoch, different order");
    int seen[N] = {0};
    for (int i = 0; i < N; i++) seen[a[i]]++;
    for (int i = 0; i < N; i++) cr_assert_eq(seen[i], 1, "not a permutation");
    ds_order(N, 7, 1, b);
    cr_assert(memcmp(a, b, sizeof a) != 0, "epoch 1 repeats epoch 0");
    ds_order(N, 8, 0, b);
    cr_assert(memcmp(a, b, sizeof a) != 0, "seed ignored");
    int moved = 0;
    for (int i = 0; i < N; i++) moved += a[i] != (size_t)i;
    cr_assert(moved > N / 2, "hardly shuffled");
    /* the sampler: epochs back to back; a resumed cursor continues exactly */
    ds_sampler s1, s2;
    cr_assert(ds_sampler_create(&s1, N, 7) == 0 && ds_sampler_create(&s2, N, 7) == 0);
    size_t run[2 * N + 10], part[2 * N + 10];
    uint64_t c1 = 0, c2 = 0;
    ds_sampler_next(&s1, 2 * N + 10, &c1, run);
    cr_assert_eq(c1, 2 * N + 10);
    cr_assert(memcmp(run, a, sizeof a) == 0, "epoch 0 is ds_order(.., 0)");
    ds_order(N, 7, 1, b);
    cr_assert(memcmp(run + N, b, sizeof b) == 0, "epoch 1 is ds_order(.., 1)");
    ds_sampler_next(&s2, 37, &c2, part);
    ds_sampler_free(&s2);
    cr_assert(ds_sampler_create(&s2, N, 7) == 0); /* a fresh process, resumed at cursor 37 */
    ds_sampler_next(&s2, 2 * N + 10 - 37, &c2, part + 37);
    cr_assert(memcmp(run, part, sizeof run) == 0, "resumed order differs");
    ds_sampler_free(&s1);
    ds_sampler_free(&s2);
}
