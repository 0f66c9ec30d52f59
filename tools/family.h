/* family.h — what the reports and plots know of each training family ("sft", "dpo", "ppo", "grpo",
 * "rloo", "rm", "pretrain", and "model" for a plain model folder): its display name, the
 * hyperparameter that tells its runs apart in words ("DPO β=0.3"), and its training curves (the
 * report's figures and `rlhf plot`'s default metrics). One table, so the report, the multi-seed
 * summary and `rlhf plot` treat every family alike and a new family is one row.
 *
 * A run's family is data (its trainer_state.json, rlhf/trainer.h), never read from its name. */
#ifndef RLHF_FAMILY_H
#define RLHF_FAMILY_H

#include <jansson.h>
#include <stddef.h>

#define FAMILY_MAX_CURVES 4

typedef struct {
    const char *key;         /* metrics.jsonl name ("rewards/margins") */
    int smooth;              /* moving average over this many steps (1: none) */
    const char *file;        /* the report's figure: <family>_<file>.png */
    const char *title;       /* figure title */
    const char *ylabel;
} family_curve;

typedef struct {
    const char *name;        /* "dpo" */
    const char *display;     /* "DPO" */
    const char *param;       /* the setting that tells its runs apart ("beta"), NULL: none */
    const char *symbol;      /* how it is written ("β") */
    const char *frontier;    /* its line on the frontier ("DPO (one point per beta)") */
    family_curve curves[FAMILY_MAX_CURVES]; /* key NULL ends the list */
    int point, hollow, color; /* its markers on scatter figures (gnuplot point types: filled, and
                                 hollow for a collapsed run) and its colour (tools/plot.h's plot_style) */
} family_info;

/* the row of a family; NULL for one the table does not know (shown by its name, without curves) */
const family_info *family_get(const char *name);

/* its display name ("DPO"), or the name itself for an unknown family */
const char *family_display(const char *name);

/* its markers and colour; a family the table does not know gets a style of its own */
void family_style(const char *name, int *point, int *hollow, int *color);

/* its line on the frontier, or the name itself */
const char *family_frontier(const char *name);

/* "DPO β=0.3" from a family and a run's settings (param missing: the display name only); a run with
 * a "target_kl" above 0 (PPO's adaptive KL controller) by its target: "PPO KL→4" */
void family_label(const char *family, const json_t *settings, char *buf, size_t n);

#endif
