/* family.c — the table of training families (see family.h). */
#include "family.h"

#include <stdio.h>
#include <string.h>

static const family_info table[] = {
    {"sft", "SFT", NULL, NULL, "SFT",
     {{"loss", 5, "loss", "SFT: training loss (moving average of 5 steps)", "loss (nats per completion token)"},
      {"eval_loss", 1, "eval_loss", "SFT: held-out loss", "eval_loss"}},
     3, 2, 8},
    {"ppo", "PPO", "kl_coef", "β", "PPO (one point per KL coefficient)",
     {{"objective/scores", 1, "score", "PPO: reward-model score of the rollouts", "objective/scores"},
      {"objective/kl", 1, "kl", "PPO: KL to SFT of the rollouts", "objective/kl (nats per completion)"},
      {"policy/entropy", 1, "entropy", "PPO: policy entropy", "policy/entropy (nats per token)"},
      {"objective/kl_coef", 1, "kl_coef", "PPO: KL coefficient β (adaptive runs move it towards their target KL)",
       "objective/kl_coef"}},
     7, 6, 1},
    {"dpo", "DPO", "beta", "β", "DPO (one point per beta)",
     {{"rewards/margins", 5, "margins", "DPO: reward margin chosen - rejected (training batches, moving average of 5 steps)",
       "rewards/margins"},
      {"rewards/accuracies", 5, "accuracy", "DPO: preference accuracy (training batches, moving average of 5 steps)",
       "rewards/accuracies"}},
     5, 4, 2},
    {"grpo", "GRPO", "beta", "β", "GRPO (one point per beta)",
     {{"reward", 1, "reward", "GRPO: mean reward of the rollouts", "reward"},
      {"kl", 1, "kl", "GRPO: KL to the reference (per token)", "kl"},
      {"entropy", 1, "entropy", "GRPO: policy entropy", "entropy (nats per token)"}},
     9, 8, 3},
    {"rloo", "RLOO", "beta", "β", "RLOO (one point per beta)",
     {{"reward", 1, "reward", "RLOO: mean reward of the rollouts", "reward"},
      {"kl", 1, "kl", "RLOO: KL to the reference (per sequence)", "kl"},
      {"entropy", 1, "entropy", "RLOO: policy entropy", "entropy (nats per token)"}},
     13, 12, 4},
    {"rm", "reward model", NULL, NULL, "reward model",
     {{"accuracy", 5, "accuracy", "Reward model: training accuracy (moving average of 5 steps)", "accuracy"},
      {"loss", 5, "loss", "Reward model: training loss (moving average of 5 steps)", "loss"}},
     11, 10, 6},
    {"pretrain", "pretraining", NULL, NULL, "pretraining",
     {{"loss", 5, "loss", "Pretraining: training loss (moving average of 5 steps)", "loss (nats per token)"},
      {"eval_loss", 1, "eval_loss", "Pretraining: held-out loss", "eval_loss"}},
     11, 10, 6},
};

const family_info *family_get(const char *name)
{
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (name && strcmp(table[i].name, name) == 0) return &table[i];
    return NULL;
}

const char *family_display(const char *name)
{
    const family_info *f = family_get(name);
    return f ? f->display : name ? name : "?";
}

void family_style(const char *name, int *point, int *hollow, int *color)
{
    const family_info *f = family_get(name);
    *point = f ? f->point : 11;
    *hollow = f ? f->hollow : 10;
    *color = f ? f->color : 7;
}

const char *family_frontier(const char *name)
{
    const family_info *f = family_get(name);
    return f ? f->frontier : name ? name : "?";
}

void family_label(const char *family, const json_t *settings, char *buf, size_t n)
{
    const family_info *f = family_get(family);
    const json_t *v = f && f->param ? json_object_get(settings, f->param) : NULL;
    const json_t *tk = json_object_get(settings, "target_kl"); /* PPO's adaptive controller: its target */
    if (f && json_number_value(tk) > 0) snprintf(buf, n, "%s KL→%g", f->display, json_number_value(tk));
    else if (json_is_number(v)) snprintf(buf, n, "%s %s=%g", f->display, f->symbol, json_number_value(v));
    else snprintf(buf, n, "%s", family_display(family));
}
