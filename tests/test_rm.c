/* test_rm.c — the reward model (rlhf/rm.h). */
#include "rm.h"

#include <criterion/criterion.h>
