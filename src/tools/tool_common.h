/*
 * tool_common.h - what the command-line programs (sks-tool, sks-card) share
 * on their command line: exit statuses, the usage error message and the
 * --version line, so both answer a user the same way.
 */
#ifndef SKS_TOOL_COMMON_H
#define SKS_TOOL_COMMON_H

#define EXIT_OK    0
#define EXIT_FAIL  1
#define EXIT_USAGE 2

/*
 * "PROG: MSG" (with ": ARG" when `arg` is not NULL) and a pointer to --help
 * on stderr. Returns EXIT_USAGE.
 */
int tool_usage_error(const char *prog, const char *msg, const char *arg);

/* "PROG (PACKAGE) VERSION" on stdout. Returns EXIT_OK. */
int tool_print_version(const char *prog);

#endif
