/*
 * tool_paths.h - where the command-line programs (sks-tool, sks-card) find
 * a card when no state directory is given: the same place the embedded
 * card of sks-pkcs11 uses, so that all of them talk about one card.
 */
#ifndef SKS_TOOL_PATHS_H
#define SKS_TOOL_PATHS_H

/*
 * "$XDG_DATA_HOME/sks/card" when XDG_DATA_HOME is absolute, else
 * "$HOME/.local/share/sks/card" (HOME from the password database when
 * unset). Malloc'ed; NULL when there is no home directory or no memory.
 */
char *tool_default_state_dir(void);

/* The --state-dir line of a program's --help, saying where the default is. */
#define TOOL_STATE_DIR_HELP                                                                        \
    "  -d, --state-dir DIR      the card's state directory (default:\n"                            \
    "                           $XDG_DATA_HOME/sks/card, else\n"                                   \
    "                           ~/.local/share/sks/card)\n"

/* Does `dir` hold a card, i.e. its database file? */
int tool_has_card(const char *dir);

#endif
