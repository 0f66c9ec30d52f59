/* rlhf.c — the `rlhf` command: git-style dispatch to one subcommand per file in tools/.
 * `rlhf help` lists them; `rlhf <cmd> --help` shows one. */
#include "cli.h"
#include "commands.h"

#include <stdio.h>
#include <string.h>

static const cli_command commands[] = {
    {"demo", "[--out DIR] [--seed S] [--quick]", "the main job: pretrain, SFT, reward model, PPO and DPO sweeps, report", cmd_demo},
    {"compare", "RUN_DIR... --prompts FILE --out DIR [--ref DIR] [--reward SPEC...]", "evaluate any runs on the same held-out prompts and write the demo's report (several seeds: across-seed intervals)", cmd_compare},
    {"plot", "RUN_DIR... [--metrics a,b,...] --out DIR", "draw the metrics of one or several runs on shared axes (gnuplot)", cmd_plot},
    {"tokenize", "--tokenizer DIR [--in FILE]", "text -> GPT-2 BPE token ids, one per line", cmd_tokenize},
    {"detokenize", "--tokenizer DIR [--in FILE]", "token ids (whitespace-separated) -> text", cmd_detokenize},
    {"tokenizer", "train|info ...", "train a byte-level BPE on a corpus, or describe one", cmd_tokenizer},
    {"pretrain", "--corpus FILE... --tokenizer DIR --out DIR", "train a GPT-2 on a corpus (or --resume)", cmd_pretrain},
    {"sft", "--model DIR --tokenizer DIR --data FILE --out DIR", "supervised fine-tuning on prompt/completion or text JSONL", cmd_sft},
    {"corpus", "--out DIR [--src DIR]", "build the default corpus (English fortunes): splits and prompt files", cmd_corpus},
    {"judge", "--in FILE | --text TEXT [--explain]", "score texts with the gold sentiment judge (AFINN-165)", cmd_judge},
    {"rm", "--model DIR --tokenizer DIR --data PREFS --out DIR", "train a Bradley-Terry reward model on preference pairs", cmd_rm},
    {"score", "--rm DIR --data FILE", "score JSONL records with a reward model (one JSON line each)", cmd_score},
    {"dpo", "--model DIR --tokenizer DIR --data PREFS --out DIR", "Direct Preference Optimization (sigmoid, ipo, hinge, robust)", cmd_dpo},
    {"ppo", "--policy DIR --rm DIR --prompts FILE --tokenizer DIR --out DIR", "per-token PPO against a reward model, KL-penalised to a reference", cmd_ppo},
    {"grpo", "--policy DIR --reward SPEC... --prompts FILE --tokenizer DIR --out DIR", "GRPO: group-relative advantages over G completions per prompt (TRL's)", cmd_grpo},
    {"rloo", "--policy DIR --reward SPEC... --prompts FILE --tokenizer DIR --out DIR", "RLOO: leave-one-out baseline over k completions per prompt (TRL's)", cmd_rloo},
    {"eval", "--model DIR --prompts FILE --tokenizer DIR [--ref DIR --rm DIR]", "held-out samples: reward score, KL to a reference, distinct-1/2", cmd_eval},
    {"sample", "--model DIR --prompt TEXT ...", "generate text from a GPT-2 folder (KV cache)", cmd_sample},
    {"logprobs", "--model DIR [--in FILE]", "log-probability of each token given the ones before", cmd_logprobs},
    {"env", "list|replay|bench ...", "classic-control envs: replay episodes (Gymnasium parity), steps/s", cmd_env},
    {"bench", "train|matmul ...", "speed of GPT-2 training steps and of their matrix products", cmd_bench},
    {"control", "--env ID [--total-steps N --seed S --out DIR]", "PPO on a classic-control env, then a deterministic evaluation", cmd_control},
};

static void help(void)
{
    printf("rlhf — the RLHF pipeline for small GPT-2 models, in C\n\nusage: rlhf <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        printf("  %-12s %s\n", commands[i].name, commands[i].summary);
    printf("  %-12s %s\n", "help", "this list; 'rlhf <command> --help' for one command");
    printf("  %-12s %s\n", "version", "print the version");
}

static int run(int argc, char **argv);

int main(int argc, char **argv)
{
    cli_dp_start(&argc, &argv);
    const int rc = run(argc, argv);
    cli_dp_end();
    return rc;
}

static int run(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *hv[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, hv);
                }
        }
        help();
        return argc < 2 ? 1 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("rlhf %s\n", RLHF_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "rlhf: unknown command '%s' (see 'rlhf help')\n", argv[1]);
    return 1;
}
