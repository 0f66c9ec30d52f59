/* cmd_tokenize.c — `rlhf tokenize` (text -> ids, one per line) and `rlhf detokenize` (ids -> text).
 * Both read the whole input (standard input by default) and use every core for encoding. */
#include "cli.h"
#include "commands.h"
#include "fileio.h"
#include "tok.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_tokenize(int argc, char **argv)
{
    const char *tokdir = NULL, *in = "-";
    int allow_special = 0;
    int threads = 0;
    const cli_opt opts[] = {
        {"--tokenizer", OPT_STR, &tokdir, "DIR", "tokenizer folder (vocab.json+merges.txt or encoder.json+vocab.bpe)", 1},
        {"--in", OPT_STR, &in, "FILE", "input text (- for standard input)", 0},
        {"--allow-special", OPT_FLAG, &allow_special, NULL, "treat <|endoftext|> in the text as the special token", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("tokenize", "Encode text with a GPT-2 byte-level BPE; print one decimal token id per line.",
              argc, argv, opts);
    char err[TOK_ERR_LEN];
    tok_tokenizer *t;
    cli_tokenizer_path("tokenize", "--tokenizer", &tokdir);
    if (tok_load(tokdir, &t, err, sizeof err)) cli_die("tokenize", "%s", err);
    size_t len;
    char *text = fio_read_all(in, &len, err, sizeof err);
    if (!text) cli_die("tokenize", "%s", strcmp(in, "-") == 0 ? "standard input: cannot read" : err);
    tok_ids ids = {0};
    if (tok_encode_parallel(t, text, len, allow_special ? TOK_ALLOW_SPECIAL : 0, threads, &ids))
        cli_die("tokenize", "out of memory");
    cli_out o;
    cli_out_init(&o, stdout);
    for (size_t i = 0; i < ids.n; i++) cli_out_int_line(&o, ids.ids[i]);
    if (cli_out_close(&o)) cli_die("tokenize", "standard output: write error");
    tok_ids_free(&ids);
    free(text);
    tok_free(t);
    return 0;
}

int cmd_detokenize(int argc, char **argv)
{
    const char *tokdir = NULL, *in = "-";
    const cli_opt opts[] = {
        {"--tokenizer", OPT_STR, &tokdir, "DIR", "tokenizer folder", 1},
        {"--in", OPT_STR, &in, "FILE", "whitespace-separated token ids (- for standard input)", 0},
        {0}};
    cli_parse("detokenize", "Decode token ids back into the exact bytes they stand for.", argc, argv, opts);
    char err[TOK_ERR_LEN];
    tok_tokenizer *t;
    cli_tokenizer_path("detokenize", "--tokenizer", &tokdir);
    if (tok_load(tokdir, &t, err, sizeof err)) cli_die("detokenize", "%s", err);
    size_t len;
    char *text = fio_read_all(in, &len, err, sizeof err);
    if (!text) cli_die("detokenize", "%s", err);
    tok_ids ids = {0};
    cli_parse_ids("detokenize", in, text, len, (long long)tok_vocab_size(t), &ids);
    tok_bytes out = {0};
    if (tok_decode(t, ids.ids, ids.n, &out, err, sizeof err)) cli_die("detokenize", "%s", err);
    if (out.n && fwrite(out.data, 1, out.n, stdout) != out.n) cli_die("detokenize", "standard output: write error");
    if (fflush(stdout)) cli_die("detokenize", "standard output: write error");
    tok_bytes_free(&out);
    tok_ids_free(&ids);
    free(text);
    tok_free(t);
    return 0;
}
