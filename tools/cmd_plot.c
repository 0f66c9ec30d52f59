/* cmd_plot.c — `rlhf plot` (stub replaced below) */
#include "commands.h"
int cmd_plot(int argc, char **argv) { (void)argc; (void)argv; return 1; }
