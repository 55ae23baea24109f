/*
 * tok_issuer_prov_int.h - the issuer session object of tok_issuer_prov_core.h
 * and the helpers its files share (tok_issuer_prov_session.c: life cycle,
 * acceptance and close; tok_issuer_prov_calls.c: the calls and key
 * attestations; tok_issuer_prov_post.c: keys of earlier sessions and the
 * post-provisioning calls).
 *
 * Besides the issuer library's session it records, per ID, what the
 * PKCS#11 side needs and the library does not offer: which IDs exist (a
 * duplicate would abort the card's session), whether a PIN policy is
 * UserDefined (its PIN travels in the clear), for each createKeyPair the
 * counter of its attestation and whether that attestation was verified,
 * which policies and keys are an earlier session's, and which of those a
 * post-provisioning call already named.
 */
#ifndef SKS_TOK_ISSUER_PROV_INT_H
#define SKS_TOK_ISSUER_PROV_INT_H

#include <stdint.h>

#include "issuer/sks_issuer.h"
#include "token/tok_issuer_prov_core.h"

enum iprov_state {
    IPROV_REQUESTED, /* the request is out, the card's answer not yet accepted */
    IPROV_OPEN,      /* calls may be prepared */
    IPROV_CLOSING,   /* the close is prepared: only verifications remain */
    IPROV_CLOSED,    /* the close attestation verified */
    IPROV_FAILED,    /* a call or a verification failed: the session is over */
};

enum iprov_kind {
    IPROV_PUK,
    IPROV_PIN,
    IPROV_KEY,         /* a key of this session */
    IPROV_EARLIER_KEY, /* a key of an earlier session, declared (6.10) */
};

/* What the session knows of one PUK policy, PIN policy or key, by ID. */
typedef struct {
    enum iprov_kind kind;
    char id[SKS_ID_MAX + 1]; /* NUL-terminated: IDs holding a zero byte are refused */
    uint8_t user_defined;    /* PIN policy: the user chooses the PIN */
    uint8_t earlier;         /* policy: declared, of an earlier session (6.9) */
    uint8_t named;           /* earlier key: a post-provisioning call names it */
    uint8_t replaces;        /* key: it replaces an earlier key (postUpdateKey) */
    /* keys */
    int key_index;                /* the issuer library's record (sks_issuer_msg.key) */
    uint16_t attestation_counter; /* counter value of the key attestation */
    uint8_t import;               /* ImportPrivateKey: the card returns no public key */
    uint8_t verified;             /* the key attestation verified */
    uint8_t has_path;             /* setCertificatePath prepared */
    uint8_t has_key;              /* importPrivateKey / restorePrivateKey prepared */
    char label[SKS_FRIENDLY_NAME_MAX + 1];
} iprov_rec;

struct tok_iprov {
    sks_issuer_session *is;
    enum iprov_state state;
    iprov_rec *recs;
    size_t nrecs;
    uint8_t close_mac[SKS_MAC_LEN]; /* of the prepared close */
    uint16_t close_counter;         /* counter value of the close attestation */
    char error[256];
};

/* A bad argument: record why, change nothing, return rv. */
CK_RV iprov_bad(tok_iprov *ip, CK_RV rv, const char *why);
/* A failure that ends the session: record why (and the library's reason), return rv. */
CK_RV iprov_broken(tok_iprov *ip, CK_RV rv, const char *why);

/*
 * An ID of 1..32 bytes without a zero byte into a NUL-terminated buffer.
 * CKR_MECHANISM_PARAM_INVALID otherwise.
 */
CK_RV iprov_id(tok_iprov *ip, const CK_BYTE *p, CK_ULONG len, char out[SKS_ID_MAX + 1]);
/* The record of an ID of one kind, or NULL. */
iprov_rec *iprov_find(tok_iprov *ip, enum iprov_kind kind, const char *id);
/* Append a record (copied). CKR_HOST_MEMORY on failure. */
CK_RV iprov_add(tok_iprov *ip, const iprov_rec *rec);

/* Is a CK_BBOOL exactly CK_TRUE or CK_FALSE? */
int iprov_bool_ok(CK_BBOOL b);

/* May calls be prepared (accepted, not closing or over)? CKR_OK, or why not. */
CK_RV iprov_check_open(tok_iprov *ip);

/* The named ID (pReferenceId) of one kind: required, optional (NULL: none) or refused. */
enum iprov_ref_use { IPROV_REF_NONE, IPROV_REF_OPTIONAL, IPROV_REF_REQUIRED };
CK_RV iprov_reference(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call, enum iprov_ref_use use,
                      enum iprov_kind kind, iprov_rec **out);
/* The clear value (pValue): allowed or not, at most SKS_PIN_MAX bytes. */
CK_RV iprov_clear_value(tok_iprov *ip, const CK_SKS_ISSUER_CALL_PARAMS *call, int allowed,
                        sks_view *v);
/* A new ID of one kind for this session (a duplicate would abort the card's session). */
CK_RV iprov_new_id(tok_iprov *ip, const CK_BYTE *p, CK_ULONG len, enum iprov_kind kind,
                   iprov_rec *rec);

/* A prepared message on the heap (it holds up to 8 KiB of ciphertext), or NULL. */
sks_issuer_msg *iprov_msg_new(void);
void iprov_msg_done(sks_issuer_msg *m);

/* tok_issuer_prov_post.c: CKM_VENDOR_SKS_POST_* (the session is open, pCall checked). */
CK_RV iprov_post(tok_iprov *ip, CK_MECHANISM_TYPE mech, const CK_SKS_ISSUER_CALL_PARAMS *call);

#endif
