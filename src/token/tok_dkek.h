/*
 * tok_dkek.h - the DKEK as the module shows it (docs/dkek.md, docs/token.md):
 * every token of a card with a DKEK has one DKEK object (CKO_SECRET_KEY,
 * CKK_VENDOR_SKS_DKEK, label and ID "DKEK"), and, once the DKEK is complete,
 * every private key that allows backup has a backup view
 * (CKO_SECRET_KEY, CKK_VENDOR_SKS_KEY_BACKUP, the key's ID and label).
 *
 * The card cache (tok_cache.c) calls tok_dkek_cache_load() after building
 * its entries and tok_dkek_cache_free() when it is dropped; tok_object.c and
 * p11_find.c resolve the two object kinds here.
 */
#ifndef SKS_TOK_DKEK_H
#define SKS_TOK_DKEK_H

#include "token/tok.h"

struct tok_dkek_cache {
    uint8_t state; /* enum sks_dkek_state */
    uint8_t total, outstanding;
    uint8_t kcv[SKS_DKEK_KCV_LEN];
    tok_attrs dkek;    /* the DKEK object's attributes (one for every token) */
    tok_attrs **views; /* backup views by position in card->keys, built on first use */
    size_t nviews;
};

/*
 * Read the card's DKEK status and add the DKEK objects and backup views to
 * the card's entries and index. A card that does not know the DKEK methods
 * has none. CKR_OK, or a transport or memory failure.
 */
CK_RV tok_dkek_cache_load(tok_card *card);
void tok_dkek_cache_free(tok_card *card);

/* The attributes of a DKEK object or backup view entry (NULL: unavailable). */
const tok_attrs *tok_dkek_entry_attrs(tok_card *card, const tok_card_entry *e);

/*
 * Resolve a DKEK object or backup view handle for a session (tok_object_get):
 * CKR_OBJECT_HANDLE_INVALID unless it exists, belongs to the session's token
 * and is visible. out->where is TOK_OBJ_DKEK, out->kind the object kind.
 */
CK_RV tok_dkek_object_get(tok_session *s, tok_card *card, uint32_t card_handle, unsigned kind,
                          tok_object *out);

#endif
