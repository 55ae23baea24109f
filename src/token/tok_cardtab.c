/*
 * tok_cardtab.c - the card table's names: card index i belongs to name i
 * ("embedded", "pcsc:<reader name>") from its first use until C_Finalize,
 * whatever order readers are listed in later and however often they come
 * and go. Slot IDs and object handles carry the index, so they stay stable.
 */
#include <stdlib.h>
#include <string.h>

#include "token/tok.h"

int tok_cardtab_index(tok_cardtab *t, const char *name, int add)
{
    if (t == NULL || name == NULL)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->name[i], name) == 0)
            return (int)i;
    }
    if (!add || t->n == TOK_MAX_CARDS)
        return -1;
    char *copy = strdup(name);
    if (copy == NULL)
        return -1;
    t->name[t->n] = copy;
    return (int)t->n++;
}

void tok_cardtab_free(tok_cardtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->name[i]);
    memset(t, 0, sizeof(*t));
}
