/* cmd_sample.c — `rlhf sample` (KV-cache sampling from a Hugging Face GPT-2 folder) and
 * `rlhf logprobs` (natural-log probability of each given token after the first, one per line). */
#include "cli.h"
#include "commands.h"
#include "fileio.h"
#include "hf.h"
#include "kv.h"
#include "tok.h"
#include "trainer.h"

#include <stdlib.h>
#include <string.h>

static gpt2 *load_model(const char *cmd, const char *dir, int threads)
{
    char err[GPT2_ERR_LEN];
    gpt2 *m;
    cli_threads(threads);
    if (hf_load_gpt2(dir, &m, err, sizeof err)) cli_die(cmd, "%s", err);
    gpt2_set_threads(m, threads);
    return m;
}

int cmd_sample(int argc, char **argv)
{
    const char *model = NULL, *tokdir = NULL, *prompt = "";
    int n = 1, threads = 0, nostop = 0;
    gpt2_sample_opts so = gpt2_sample_defaults();
    so.seed = 1234;
    so.weights = GPT2_W_AUTO;
    cli_enum weights = {(int *)&so.weights, gpt2_weights_names};
    const cli_opt opts[] = {
        {"--model", OPT_STR, &model, "DIR", "Hugging Face GPT-2 folder (config.json + model.safetensors)", 1},
        {"--tokenizer", OPT_STR, &tokdir, "DIR", "tokenizer folder (default: the model folder)", 0},
        {"--prompt", OPT_STR, &prompt, "TEXT", "text to continue (empty: start after <|endoftext|>)", 0},
        {"--n", OPT_INT, &n, "N", "samples, decoded together as one batch", 0},
        {"--max-new-tokens", OPT_INT, &so.max_new_tokens, "N", "tokens to generate at most", 0},
        {"--temperature", OPT_FLOAT, &so.temperature, "T", "softmax temperature (0: greedy)", 0},
        {"--top-k", OPT_INT, &so.top_k, "K", "keep the K most likely tokens (0: all)", 0},
        {"--top-p", OPT_FLOAT, &so.top_p, "P", "keep the smallest set with probability >= P (1: all)", 0},
        {"--seed", OPT_U64, &so.seed, "S", "random seed (same seed, same text)", 0},
        {"--no-stop", OPT_FLAG, &nostop, NULL, "do not stop at <|endoftext|>", 0},
        {"--weights", OPT_ENUM, &weights, NULL, "decode weights (auto: bf16 where the CPU has bf16 — a rounded copy, ~2x faster)", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("sample", "Generate text with a KV cache.", argc, argv, opts);
    cli_model_path("sample", "--model", &model);
    cli_tokenizer_path("sample", "--tokenizer", &tokdir);
    const int maxnew = so.max_new_tokens;
    if (n < 1 || maxnew < 0) cli_die("sample", "--n must be positive and --max-new-tokens not negative");
    if (so.temperature < 0 || so.top_p <= 0 || so.top_p > 1 || so.top_k < 0)
        cli_die("sample", "bad sampling settings (temperature >= 0, 0 < top-p <= 1, top-k >= 0)");
    char err[TOK_ERR_LEN];
    tok_tokenizer *t;
    if (tok_load(tokdir ? tokdir : model, &t, err, sizeof err)) cli_die("sample", "%s", err);
    gpt2 *m = load_model("sample", model, threads);
    if ((int)tok_vocab_size(t) > gpt2_cfg(m)->vocab_size)
        cli_die("sample", "the tokenizer has %zu ids but the model only %d", tok_vocab_size(t), gpt2_cfg(m)->vocab_size);
    tok_encoder *e = tok_encoder_create(t);
    tok_ids ids = {0};
    if (!e || tok_encode(e, prompt, strlen(prompt), TOK_ALLOW_SPECIAL, &ids)) cli_die("sample", "out of memory");
    if (ids.n == 0) {
        if (tok_eot_id(t) < 0) cli_die("sample", "empty prompt and no <|endoftext|> token to start from");
        tok_ids_push(&ids, tok_eot_id(t));
    }
    so.stop_token = nostop ? -1 : tok_eot_id(t);
    const int32_t **prompts = malloc((size_t)n * sizeof *prompts);
    int *plen = malloc((size_t)n * sizeof *plen), *olen = malloc((size_t)n * sizeof *olen);
    int32_t *out = malloc((size_t)n * (size_t)(maxnew ? maxnew : 1) * sizeof *out);
    if (!prompts || !plen || !olen || !out) cli_die("sample", "out of memory");
    for (int i = 0; i < n; i++) {
        prompts[i] = ids.ids;
        plen[i] = (int)ids.n;
    }
    char gerr[GPT2_ERR_LEN];
    if (gpt2_sample(m, n, prompts, plen, &so, out, olen, NULL, gerr, sizeof gerr)) cli_die("sample", "%s", gerr);
    for (int i = 0; i < n; i++) {
        tok_bytes b = {0};
        int len = olen[i];
        if (len > 0 && out[i * maxnew + len - 1] == so.stop_token) len--; /* print without the stop token */
        if (tok_decode(t, out + i * maxnew, (size_t)len, &b, err, sizeof err)) cli_die("sample", "%s", err);
        if (n > 1) printf("=== sample %d/%d\n", i + 1, n);
        fwrite(prompt, 1, strlen(prompt), stdout);
        if (b.n) fwrite(b.data, 1, b.n, stdout);
        printf("\n");
        tok_bytes_free(&b);
    }
    free(prompts);
    free(plen);
    free(olen);
    free(out);
    tok_ids_free(&ids);
    tok_encoder_free(e);
    tok_free(t);
    gpt2_free(m);
    return 0;
}

int cmd_logprobs(int argc, char **argv)
{
    const char *model = NULL, *in = "-";
    int threads = 0, prec = TRAINER_PREC_FP32;
    cli_enum precision = {&prec, trainer_precision_names};
    const cli_opt opts[] = {
        {"--model", OPT_STR, &model, "DIR", "Hugging Face GPT-2 folder", 1},
        {"--in", OPT_STR, &in, "FILE", "whitespace-separated token ids (- for standard input)", 0},
        {"--precision", OPT_ENUM, &precision, NULL, "products: fp32, bf16 with fp32 accumulation, or auto", 0},
        {"--threads", OPT_INT, &threads, "N", "threads (0: all cores)", 0},
        {0}};
    cli_parse("logprobs",
              "Print ln p(token | all tokens before it) for each token after the first, one per line.", argc, argv,
              opts);
    cli_model_path("logprobs", "--model", &model);
    char err[GPT2_ERR_LEN];
    size_t len;
    char *text = fio_read_all(in, &len, err, sizeof err);
    if (!text) cli_die("logprobs", "%s", err);
    gpt2 *m = load_model("logprobs", model, threads);
    gpt2_set_precision(m, trainer_precision_resolve(prec));
    const int V = gpt2_cfg(m)->vocab_size;
    tok_ids ids = {0};
    const char *name = strcmp(in, "-") == 0 ? "<stdin>" : in;
    cli_parse_ids("logprobs", in, text, len, V, &ids);
    if (ids.n < 2) cli_die("logprobs", "%s: need at least two token ids, got %zu", name, ids.n);
    int T = (int)ids.n - 1;
    if (T > gpt2_cfg(m)->n_positions)
        cli_die("logprobs", "%s: %zu tokens exceed the model's context of %d + 1", name, ids.n, gpt2_cfg(m)->n_positions);
    float loss;
    if (gpt2_forward(m, ids.ids, ids.ids + 1, NULL, 1, T, &loss, err, sizeof err)) cli_die("logprobs", "%s", err);
    const float *lp = gpt2_logp(m);
    for (int i = 0; i < T; i++) printf("%.9g\n", lp[i]);
    if (fflush(stdout)) cli_die("logprobs", "standard output: write error");
    tok_ids_free(&ids);
    free(text);
    gpt2_free(m);
    return 0;
}
