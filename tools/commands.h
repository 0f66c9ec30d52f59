/* commands.h — the `rlhf` subcommands (one file each in tools/), listed for the dispatcher. */
#ifndef RLHF_COMMANDS_H
#define RLHF_COMMANDS_H

int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int bench_rollout(int argc, char **argv); /* `rlhf bench rollout` (tools/bench_rollout.c) */
int cmd_sample(int argc, char **argv);
int cmd_logprobs(int argc, char **argv);
int cmd_pretrain(int argc, char **argv);
int cmd_control(int argc, char **argv);
int cmd_env(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_corpus(int argc, char **argv);
int cmd_judge(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_dpo(int argc, char **argv);
int cmd_ppo(int argc, char **argv);
int cmd_grpo(int argc, char **argv);
int cmd_rloo(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_plot(int argc, char **argv);

#endif
