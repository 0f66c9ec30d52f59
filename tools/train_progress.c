/* train_progress.c — progress bar with ETA for the training subcommands. See train_progress.h. */
#include "train_progress.h"

#include <math.h>
#include <stdio.h>

void train_progress_start(train_progress *p, const char *label, const char *const *show)
{
    cli_progress_start(&p->bar, label);
    p->show = show;
}

void train_progress_on_step(void *ud, const trainer_progress *s)
{
    train_progress *p = ud;
    char extra[256];
    size_t o = (size_t)snprintf(extra, sizeof extra, " step %ld/%ld", s->step, s->total);
    for (const char *const *n = p->show; n && *n && o < sizeof extra; n++) {
        double v = trainer_progress_get(s, *n);
        if (!isnan(v)) o += (size_t)snprintf(extra + o, sizeof extra - o, " %s %.4g", *n, v);
    }
    /* the ETA covers this process's steps: a resumed run's earlier steps took no time here */
    cli_progress_update(&p->bar, (double)(s->step - s->resumed_from), (double)(s->total - s->resumed_from), extra);
}
