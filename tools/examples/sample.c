/* sample.c — example: load a Hugging Face GPT-2 folder with its tokenizer through the installed
 * library and continue a prompt (the worked example of rlhf/rlhf.h as a whole program).
 *
 *     cc -std=c11 sample.c $(pkg-config --cflags --libs rlhf) -o sample
 *     ./sample MODEL [PROMPT [NEW_TOKENS]]
 *
 * MODEL: a model folder (config.json + model.safetensors + vocab.json/merges.txt, e.g. what
 * tools/download_hf_gpt2.sh fetches), a training run's output folder or its latest pointer. */
#include <rlhf/rlhf.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *err)
{
    fprintf(stderr, "sample: %s\n", err);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL [PROMPT [NEW_TOKENS]]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 2 ? argv[2] : "The";
    const int new_tokens = argc > 3 ? atoi(argv[3]) : 20;
    if (new_tokens < 1) return fail("NEW_TOKENS must be positive");
    char err[1024], dir[4096];
    if (ckpt_resolve(argv[1], dir, sizeof dir, err, sizeof err)) return fail(err);

    tok_tokenizer *t;
    gpt2 *m;
    if (tok_load(dir, &t, err, sizeof err)) return fail(err);
    if (hf_load_gpt2(dir, &m, err, sizeof err)) {
        tok_free(t);
        return fail(err);
    }
    gpt2_set_threads(m, 1);

    tok_encoder *e = tok_encoder_create(t);
    tok_ids ids = {0};
    if (!e || tok_encode(e, prompt, strlen(prompt), 0, &ids)) return fail("out of memory");
    if (ids.n == 0 && tok_ids_push(&ids, tok_eot_id(t) >= 0 ? tok_eot_id(t) : 0)) return fail("out of memory");

    gpt2_sample_opts so = gpt2_sample_defaults();
    so.max_new_tokens = new_tokens;
    so.seed = 1234;
    so.stop_token = tok_eot_id(t);
    int32_t *out = malloc((size_t)new_tokens * sizeof *out);
    int olen = 0, plen = (int)ids.n, rc = 0;
    const int32_t *rows[1] = {ids.ids};
    tok_bytes text = {0};
    if (!out) rc = fail("out of memory");
    else if (gpt2_sample(m, 1, rows, &plen, &so, out, &olen, NULL, err, sizeof err)) rc = fail(err);
    else if (tok_decode_lenient(t, out, (size_t)olen, &text, err, sizeof err)) rc = fail(err);
    else printf("%s%.*s\n", prompt, (int)text.n, (const char *)text.data);

    tok_bytes_free(&text);
    free(out);
    tok_ids_free(&ids);
    tok_encoder_free(e);
    gpt2_free(m);
    tok_free(t);
    return rc;
}
