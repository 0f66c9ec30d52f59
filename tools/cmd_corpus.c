/* cmd_corpus.c — `rlhf corpus`: build the demo's default corpus (Debian's English fortunes) into a
 * folder: train/held-out text, SFT prompt/completion files and prompt files. A thin wrapper around
 * data/corpus.h, where the rules are documented. */
#include "cli.h"
#include "commands.h"
#include "corpus.h"

#include <stdio.h>

int cmd_corpus(int argc, char **argv)
{
    const char *src = CORPUS_DEFAULT_SRC, *out = NULL;
    corpus_opts o = corpus_defaults();
    long max_bytes = (long)o.max_bytes, min_words = (long)o.min_words, mod = (long)o.heldout_mod;
    const cli_opt opts[] = {
        {"--out", OPT_STR, &out, "DIR", "output folder", 1},
        {"--src", OPT_STR, &src, "DIR", "folder of fortune files (default " CORPUS_DEFAULT_SRC ")", 0},
        {"--prompt-words", OPT_INT, &o.prompt_words, "N", "words in a prompt (at most half the record)", 0},
        {"--min-words", OPT_LONG, &min_words, "N", "drop records with fewer words (at least 2)", 0},
        {"--max-bytes", OPT_LONG, &max_bytes, "N", "drop longer records", 0},
        {"--heldout-mod", OPT_LONG, &mod, "M", "held out iff fnv1a64(record) % M == 0", 0},
        {0}};
    cli_parse("corpus", "Build the default corpus (English fortunes) with its train/held-out split and prompt files.",
              argc, argv, opts);
    if (o.prompt_words < 1 || min_words < 2 || max_bytes < 1 || mod < 2 || mod > 1000000)
        cli_die("corpus", "need --prompt-words >= 1, --min-words >= 2, --max-bytes >= 1, 2 <= --heldout-mod <= 1000000");
    o.min_words = (size_t)min_words;
    o.max_bytes = (size_t)max_bytes;
    o.heldout_mod = (uint32_t)mod;
    double t0 = clk_now();
    char err[1024];
    corpus *c;
    if (corpus_build(&c, src, &o, err, sizeof err) || corpus_write(c, out, src, err, sizeof err)) cli_die("corpus", "%s", err);
    size_t raw = 0;
    for (size_t i = 0; i < c->nfiles; i++) raw += c->files[i].raw;
    fprintf(stderr,
            "corpus: %zu files, %zu records -> train %zu records / %zu words / %zu bytes, held-out %zu / %zu / %zu\n"
            "dropped: %zu too short, %zu too long, %zu not text, %zu duplicates  (%.2f s) -> %s\n",
            c->nfiles, raw, c->train.records, c->train.words, c->train.bytes, c->heldout.records, c->heldout.words,
            c->heldout.bytes, c->dropped.short_, c->dropped.huge, c->dropped.not_text, c->dropped.duplicate,
            clk_now() - t0, out);
    corpus_free(c);
    return 0;
}
