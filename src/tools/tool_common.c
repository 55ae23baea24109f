/*
 * tool_common.c - the command-line messages shared by sks-tool and sks-card
 * (see tool_common.h).
 */
#include "config.h"

#include <stdio.h>

#include "tools/tool_common.h"

int tool_usage_error(const char *prog, const char *msg, const char *arg)
{
    if (arg != NULL)
        fprintf(stderr, "%s: %s: %s\n", prog, msg, arg);
    else
        fprintf(stderr, "%s: %s\n", prog, msg);
    fprintf(stderr, "Try '%s --help' for more information.\n", prog);
    return EXIT_USAGE;
}

int tool_print_version(const char *prog)
{
    printf("%s (%s) %s\n", prog, PACKAGE_NAME, PACKAGE_VERSION);
    return EXIT_OK;
}
