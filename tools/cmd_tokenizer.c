/* cmd_tokenizer.c — `rlhf tokenizer train` (byte-level BPE on a corpus, written in the Hugging
 * Face layout) and `rlhf tokenizer info` (sizes and a sanity round trip of a tokenizer folder). */
#include "cli.h"
#include "commands.h"
#include "fileio.h"
#include "tok.h"

#include <stdlib.h>
#include <string.h>

static void on_progress(void *ud, double done, double total, const char *phase)
{
    cli_progress *p = ud;
    if (strcmp(p->label, phase) != 0) {
        if (p->label[0]) cli_progress_done(p, NULL);
        cli_progress_start(p, phase);
    }
    cli_progress_update(p, done, total, NULL);
}

static int train(int argc, char **argv)
{
    cli_list corpus = {0};
    const char *outdir = NULL;
    int vocab = 8192, threads = 0, minfreq = 2;
    const cli_opt opts[] = {
        {"--corpus", OPT_MULTI, &corpus, "FILE", "text files (each one document)", 1},
        {"--vocab-size", OPT_INT, &vocab, "N", "ids in all: 256 bytes + merges + <|endoftext|>", 0},
        {"--out", OPT_STR, &outdir, "DIR", "folder to write vocab.json and merges.txt into", 1},
        {"--min-frequency", OPT_INT, &minfreq, "N", "merge only pairs seen at least N times", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("tokenizer train", "Train a GPT-2 style byte-level BPE (deterministic) and save it.", argc, argv, opts);
    if (vocab < 257) cli_die("tokenizer train", "--vocab-size %d is too small (at least 257)", vocab);
    if (minfreq < 1) cli_die("tokenizer train", "--min-frequency must be at least 1");
    char err[TOK_ERR_LEN];
    char **texts = calloc(corpus.n, sizeof *texts);
    size_t *lens = calloc(corpus.n, sizeof *lens);
    if (!texts || !lens) cli_die("tokenizer train", "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < corpus.n; i++) {
        texts[i] = fio_read_all(corpus.v[i], &lens[i], err, sizeof err);
        if (!texts[i]) cli_die("tokenizer train", "%s", err);
        total += lens[i];
    }
    tok_train_opts o = tok_train_defaults();
    o.vocab_size = (size_t)vocab;
    o.nthreads = threads;
    o.min_frequency = (size_t)minfreq;
    cli_progress prog = {.label = ""};
    o.progress = on_progress;
    o.progress_ud = &prog;
    double t0 = clk_now();
    tok_tokenizer *t;
    if (tok_train((const char *const *)texts, lens, corpus.n, &o, &t, err, sizeof err))
        cli_die("tokenizer train", "%s", err);
    if (prog.label[0]) cli_progress_done(&prog, NULL);
    if (tok_save(t, outdir, err, sizeof err)) cli_die("tokenizer train", "%s", err);
    fprintf(stderr, "trained %zu ids (%zu merges) on %.1f MB in %.1f s -> %s\n", tok_vocab_size(t),
            tok_merge_count(t), (double)total / 1e6, clk_now() - t0, outdir);
    tok_free(t);
    for (size_t i = 0; i < corpus.n; i++) free(texts[i]);
    free(texts);
    free(lens);
    free(corpus.v);
    return 0;
}

static int info(int argc, char **argv)
{
    const char *dir = NULL;
    const cli_opt opts[] = {{"--tokenizer", OPT_STR, &dir, "DIR", "tokenizer folder", 1}, {0}};
    cli_parse("tokenizer info", "Print the size of a tokenizer and check that it loads.", argc, argv, opts);
    char err[TOK_ERR_LEN];
    tok_tokenizer *t;
    cli_tokenizer_path("tokenizer info", "--tokenizer", &dir);
    if (tok_load(dir, &t, err, sizeof err)) cli_die("tokenizer info", "%s", err);
    printf("{\"vocab_size\": %zu, \"merges\": %zu, \"eot_id\": %d}\n", tok_vocab_size(t), tok_merge_count(t),
           tok_eot_id(t));
    tok_free(t);
    return 0;
}

int cmd_tokenizer(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "train") == 0) return train(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "info") == 0) return info(argc - 1, argv + 1);
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("usage: rlhf tokenizer train --corpus FILE... --vocab-size N --out DIR\n"
               "       rlhf tokenizer info --tokenizer DIR\n");
        return 0;
    }
    cli_die("tokenizer", "expected 'train' or 'info' (see 'rlhf tokenizer --help')");
}
