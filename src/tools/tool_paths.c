/*
 * tool_paths.c - the default card state directory shared by sks-tool and
 * sks-card (see tool_paths.h).
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tools/tool_paths.h"

char *tool_default_state_dir(void)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    const char *base, *suffix;
    char *dir;
    size_t n;

    /* The XDG spec ignores relative values. */
    if (xdg != NULL && xdg[0] == '/') {
        base = xdg;
        suffix = "/sks/card";
    } else {
        if (home == NULL || home[0] == '\0') {
            struct passwd *pw = getpwuid(getuid());
            home = pw != NULL ? pw->pw_dir : NULL;
        }
        if (home == NULL || home[0] == '\0')
            return NULL;
        base = home;
        suffix = "/.local/share/sks/card";
    }
    n = strlen(base) + strlen(suffix) + 1;
    dir = malloc(n);
    if (dir != NULL)
        snprintf(dir, n, "%s%s", base, suffix);
    return dir;
}

int tool_has_card(const char *dir)
{
    struct stat sb;
    char *path;
    size_t n;
    int found;

    if (dir == NULL || dir[0] == '\0')
        return 0;
    n = strlen(dir) + sizeof("/card.db");
    path = malloc(n);
    if (path == NULL)
        return 0;
    snprintf(path, n, "%s/card.db", dir);
    found = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
    free(path);
    return found;
}
