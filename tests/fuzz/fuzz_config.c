/* fuzz_config.c — libFuzzer target: the Hugging Face config.json reader (hf_parse_config,
 * model/hf.c), which every model load goes through.
 *
 * Input: the text of a config.json.
 *
 * Properties (abort on violation):
 *   - on failure, err is one non-empty line, NUL-terminated, naming the file, and *cfg untouched;
 *   - on success: every size is positive, n_embd a multiple of n_head, 4*n_embd fits an int, and
 *     layer_norm_epsilon a small positive finite number; parsing the same text again gives the same
 *     config; a small model of that config, saved by hf_save_gpt2, reads back (config.json as
 *     written) to the same config and loads by hf_load_gpt2 with the same parameters.
 */
#include "fuzz_common.h"

#include "gpt2.h"
#include "hf.h"

#include <math.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *g_dir;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    g_dir = fz_make_tmpdir("config");
    return 0;
}

static int same_config(const gpt2_config *a, const gpt2_config *b)
{
    return a->n_layer == b->n_layer && a->n_head == b->n_head && a->n_embd == b->n_embd &&
           a->vocab_size == b->vocab_size && a->n_positions == b->n_positions && a->ln_eps == b->ln_eps;
}

/* save a model of c (small ones only) and load it back */
static void round_trip(const gpt2_config *c)
{
    if ((long)c->n_layer * c->n_embd * c->n_embd > 4096 || (long)c->vocab_size * c->n_embd > 4096 ||
        (long)c->n_positions * c->n_embd > 4096)
        return;
    char err[TOK_ERR_LEN], path[4200];
    gpt2 *m, *back;
    if (gpt2_create(&m, c, err, sizeof err)) FZ_FAIL("gpt2_create of a config that parsed failed: %s", err);
    gpt2_init_random(m, 7);
    if (hf_save_gpt2(m, g_dir, err, sizeof err)) FZ_FAIL("hf_save_gpt2: %s", err);
    gpt2_config again;
    fio_join(path, sizeof path, g_dir, "config.json");
    if (hf_read_config(path, &again, err, sizeof err)) FZ_FAIL("the config.json hf_save_gpt2 wrote does not read: %s", err);
    FZ_CHECK(same_config(c, &again), "the config changed in hf_save_gpt2 + hf_read_config");
    if (hf_load_gpt2(g_dir, &back, err, sizeof err)) FZ_FAIL("hf_load_gpt2 of what hf_save_gpt2 wrote: %s", err);
    FZ_CHECK(gpt2_num_params(back) == gpt2_num_params(m) &&
                 memcmp(gpt2_params(back), gpt2_params(m), gpt2_num_params(m) * sizeof(float)) == 0,
             "the parameters changed in hf_save_gpt2 + hf_load_gpt2");
    gpt2_free(back);
    gpt2_free(m);
    fz_empty_dir(g_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gpt2_config c, d;
    memset(&c, 0x5A, sizeof c);
    const gpt2_config untouched = c;
    char err[TOK_ERR_LEN];
    fz_err_reset(err);
    if (hf_parse_config((const char *)data, size, "config.json", &c, err, sizeof err)) {
        fz_check_err(err, "hf_parse_config");
        FZ_CHECK(strncmp(err, "config.json", 11) == 0, "error does not name the file: %s", err);
        FZ_CHECK(memcmp(&c, &untouched, sizeof c) == 0, "a failed parse changed the config");
        return 0;
    }
    FZ_CHECK(c.n_layer > 0 && c.n_head > 0 && c.n_embd > 0 && c.vocab_size > 0 && c.n_positions > 0,
             "a size is not positive: %d %d %d %d %d", c.n_layer, c.n_head, c.n_embd, c.vocab_size, c.n_positions);
    FZ_CHECK(c.n_embd % c.n_head == 0, "n_embd %d is not a multiple of n_head %d", c.n_embd, c.n_head);
    FZ_CHECK(c.n_embd <= INT_MAX / 4, "4*n_embd overflows");
    FZ_CHECK(isfinite(c.ln_eps) && c.ln_eps > 0 && c.ln_eps <= 1, "layer_norm_epsilon %g", (double)c.ln_eps);
    FZ_CHECK(hf_parse_config((const char *)data, size, "config.json", &d, err, sizeof err) == 0 && same_config(&c, &d),
             "parsing the same text twice gives two configs");
    round_trip(&c);
    return 0;
}
