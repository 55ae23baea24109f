/*
 * tok.h - the shared internals of the PKCS#11 token layer (middleware side).
 *
 * Model:
 *   module  - global state: configuration, lock, cards, slots, sessions.
 *   card    - one SKS card behind one transport, with a cache of what the
 *             card holds (keys, PIN policies, stored objects) so that finding
 *             objects never scans the card.
 *   slot    - one PKCS#11 slot: a PIN policy of a card (its token), the
 *             card's keys without PIN, or the card's "free" slot where
 *             C_InitToken creates a new token (PIN policy).
 *   session - a PKCS#11 session on a slot, with its active operations.
 *   object  - identified by a handle that encodes where it lives (tok_handle_*).
 *
 * Locking: one module lock; every C_* entry takes it (tok_enter/tok_leave in
 * p11_entry.h). Card I/O happens under the lock: the first card call of a
 * PKCS#11 call opens the transport's transaction (begin), tok_leave() ends it.
 *
 * Lifetimes: a tok_slot is allocated once per slot ID and lives until
 * C_Finalize, so slot pointers stay valid. Pointers into a card's cache
 * (tok_card_key, tok_card_object, attribute lists of card objects) stay valid
 * until the cache is reloaded, which happens only in tok_card_refresh() and
 * tok_card_ensure(): resolve objects (tok_object_get) after those.
 */
#ifndef SKS_TOK_H
#define SKS_TOK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <p11-kit/pkcs11.h>

#include "protocol/sks_msg.h"
#include "provision/local_issuer.h"
#include "transport/transport.h"

/* Card indices ever used in one initialisation (object handles hold index + 1 in 6 bits). */
#define TOK_MAX_CARDS 32
#define TOK_LABEL_LEN 32

/* ---- attribute lists (tok_attrs.c) ------------------------------------ */
typedef struct {
    CK_ATTRIBUTE_TYPE type;
    CK_ULONG len;
    uint8_t *value; /* owned; NULL when len == 0 */
} tok_attr;

typedef struct {
    tok_attr *v;
    size_t n, cap;
} tok_attrs;

/* Add or replace an attribute (the value is copied). CKR_HOST_MEMORY on failure. */
CK_RV tok_attrs_set(tok_attrs *a, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len);
CK_RV tok_attrs_set_ulong(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG v);
CK_RV tok_attrs_set_bool(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL v);
/* Set only when the attribute is absent. */
CK_RV tok_attrs_default(tok_attrs *a, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len);
CK_RV tok_attrs_default_bool(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL v);
CK_RV tok_attrs_default_ulong(tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG v);
const tok_attr *tok_attrs_find(const tok_attrs *a, CK_ATTRIBUTE_TYPE type);
/* 1 and *v if present with the right size, else 0. */
int tok_attrs_get_ulong(const tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_ULONG *v);
int tok_attrs_get_bool(const tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL *v);
/* A bool attribute's value, or `dflt` when absent. */
CK_BBOOL tok_attrs_bool(const tok_attrs *a, CK_ATTRIBUTE_TYPE type, CK_BBOOL dflt);
void tok_attrs_remove(tok_attrs *a, CK_ATTRIBUTE_TYPE type);
void tok_attrs_free(tok_attrs *a); /* zeroizes values */
CK_RV tok_attrs_copy(tok_attrs *dst, const tok_attrs *src);
/* Add (or replace) every attribute of a caller's template. */
CK_RV tok_attrs_merge_tmpl(tok_attrs *a, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* 1 if every attribute of the template is present with an equal value. */
int tok_attrs_match(const tok_attrs *a, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* Sum of the value lengths (C_GetObjectSize). */
CK_ULONG tok_attrs_size(const tok_attrs *a);
/*
 * C_GetAttributeValue semantics: sizes with pValue NULL, CKR_BUFFER_TOO_SMALL,
 * CKR_ATTRIBUTE_SENSITIVE (hidden() says so), CKR_ATTRIBUTE_TYPE_INVALID; every
 * attribute is processed, unusable ones get CK_UNAVAILABLE_INFORMATION.
 */
CK_RV tok_attrs_copy_out(const tok_attrs *a, CK_ATTRIBUTE *tmpl, CK_ULONG n,
                         int (*hidden)(CK_ATTRIBUTE_TYPE type, const tok_attrs *a));
/* Template helpers over the caller's CK_ATTRIBUTE arrays. */
const CK_ATTRIBUTE *tok_tmpl_find(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type);
int tok_tmpl_get_ulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG *v);
int tok_tmpl_get_bool(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_BBOOL *v);
/* CKR_ARGUMENTS_BAD when tmpl is NULL with n > 0 or an entry has pValue NULL with a length. */
CK_RV tok_tmpl_valid(const CK_ATTRIBUTE *t, CK_ULONG n);

/* ---- attribute rules (tok_attr_rules.c): the standard's table ----------- */
enum tok_op {
    TOK_OP_CREATE,
    TOK_OP_GENERATE,
    TOK_OP_UNWRAP,
    TOK_OP_DERIVE,
    TOK_OP_COPY,
    TOK_OP_SET,
};
/*
 * Check a template for an operation on a class/key type: unknown attributes
 * (CKR_ATTRIBUTE_TYPE_INVALID), attributes that must not be given for `op`
 * (CKR_ATTRIBUTE_READ_ONLY), bad lengths or bool values
 * (CKR_ATTRIBUTE_VALUE_INVALID), one type given twice with different values
 * (CKR_TEMPLATE_INCONSISTENT), missing required ones (CKR_TEMPLATE_INCOMPLETE),
 * and attributes that may not change (CKR_ATTRIBUTE_READ_ONLY for TOK_OP_SET
 * and TOK_OP_COPY). key_type is ignored for classes without one.
 */
CK_RV tok_rules_check(CK_OBJECT_CLASS cls, CK_KEY_TYPE key_type, enum tok_op op,
                      const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/*
 * The checks of C_SetAttributeValue/C_CopyObject that need the object's
 * current values: CKA_MODIFIABLE false (CKR_ACTION_PROHIBITED), attributes
 * that cannot go back once true/false (CKA_SENSITIVE, CKA_EXTRACTABLE,
 * CKA_WRAP_WITH_TRUSTED: CKR_ATTRIBUTE_READ_ONLY).
 */
CK_RV tok_rules_check_change(const tok_attrs *obj, enum tok_op op, const CK_ATTRIBUTE *tmpl,
                             CK_ULONG n);
/*
 * Fill the defaults of a new object of a class/key type (storage
 * attributes, usage flags, CKA_ALWAYS_SENSITIVE/CKA_NEVER_EXTRACTABLE from
 * SENSITIVE/EXTRACTABLE, ...) for attributes the template did not give.
 */
CK_RV tok_rules_defaults(CK_OBJECT_CLASS cls, CK_KEY_TYPE key_type, enum tok_op op, tok_attrs *a);
/* Is the attribute's value unreadable for this object (sensitive / unextractable)? */
int tok_rules_hidden(CK_ATTRIBUTE_TYPE type, const tok_attrs *obj);
/* Attributes whose value is a CK_ULONG / a CK_BBOOL / a CK_ULONG array (for serialising). */
enum tok_attr_kind {
    TOK_AK_BYTES,
    TOK_AK_BOOL,
    TOK_AK_ULONG,
    TOK_AK_DATE,
    TOK_AK_ULONG_ARRAY,
};
enum tok_attr_kind tok_rules_kind(CK_ATTRIBUTE_TYPE type);

/* ---- a small hash multimap (tok_index.c) -------------------------------- */
typedef struct tok_index tok_index;
tok_index *tok_index_new(void);
void tok_index_free(tok_index *ix);
/* Add `value` under the key (tag byte | bytes). -1 on allocation failure. */
int tok_index_add(tok_index *ix, uint8_t tag, const void *key, size_t len, uint32_t value);
/* The values under a key (NULL and 0 when none). */
const uint32_t *tok_index_get(const tok_index *ix, uint8_t tag, const void *key, size_t len,
                              size_t *count);

/* ---- the card as the middleware sees it (tok_card.c, tok_cache.c) ------ */
/* Certificate kinds of a key: 2 + i for certificate i of its path. */
#define TOK_KEY_KINDS (2 + SKS_CERT_PATH_MAX)

typedef struct {
    uint32_t handle;
    uint8_t id[SKS_ID_MAX];
    size_t id_len;
    char *label;       /* friendly name, NUL-terminated, owned */
    uint8_t algorithm; /* enum sks_key_alg */
    uint8_t usage;     /* SKS_USAGE_* */
    uint8_t flags;     /* SKS_KEYFLAG_* */
    uint32_t pin_policy;
    uint32_t provisioning_handle;
    uint8_t always_authenticate; /* its PIN policy has CachingSupport false */
    uint8_t *spki;               /* owned */
    size_t spki_len;
    EVP_PKEY *public_key;     /* parsed SPKI, for verify/encrypt and attributes */
    uint8_t public_key_tried; /* SPKI parsed on first use (tok_card_find_key, tok_card_key_attrs) */
    uint8_t cert_count;
    uint8_t *cert[SKS_CERT_PATH_MAX]; /* owned DER */
    size_t cert_len[SKS_CERT_PATH_MAX];
    uint8_t cert_dup[SKS_CERT_PATH_MAX]; /* CA certificate already shown by an earlier key */
    /* PKCS#11 attributes of each object of the key, built on first use. */
    tok_attrs *attrs[TOK_KEY_KINDS];
} tok_card_key;

/* An object the card stores for the middleware (certificates, data objects, public keys). */
typedef struct {
    uint32_t handle;
    int readable;        /* 0: Private and its PIN not verified: nothing known yet */
    uint32_t pin_policy; /* token it belongs to; 0: the keys-without-PIN token */
    CK_OBJECT_CLASS cls;
    CK_BBOOL private_;
    tok_attrs attrs; /* every PKCS#11 attribute of the object */
} tok_card_object;

/* One PKCS#11 object of the card, in cache order: what C_FindObjects walks. */
typedef struct {
    CK_OBJECT_HANDLE handle;
    uint32_t pin_policy;
    uint32_t pos; /* index into keys[] or objects[] */
    uint8_t kind; /* enum tok_obj_kind */
    uint8_t private_;
} tok_card_entry;

typedef struct tok_card {
    int index;                /* position in the module's card table; fixed by the reader name */
    sks_transport *transport; /* NULL while no card is connected (PC/SC: none in the reader) */
    int extended;             /* extended APDUs */
    char serial[65];
    char reader[128];
    int present;
    int removable; /* a card in a PC/SC reader: it can come and go */
    /*
     * Moves whenever the card is connected or goes away: a session opened on
     * an older generation belongs to a card that was removed (tok_session_get).
     */
    unsigned long generation;
    int announce; /* the next slot sync reports the card's tokens as slot events */
    int in_txn;   /* transport begin() done for the current PKCS#11 call */
    /*
     * The current call goes out as one APDU without a PC/SC transaction
     * (tok_card_call: single_apdu_call); a second transmission in the same
     * call begins the transaction first.
     */
    int txn_deferred;
    unsigned transmits; /* transmissions of the current call while deferred */
    int selected;       /* SKS application selected since the last reset */
    int checked;        /* change counter compared during the current PKCS#11 call */
    int link_status;    /* last enum sks_transport_status of a failed transmit */
    /* Cache, valid while `cache_loaded` and the card's change counter is unchanged. */
    int cache_loaded;
    int keys_loaded;     /* keys[], entries and the DKEK objects read (tok_card_ensure) */
    uint32_t nopin_keys; /* complete keys without PIN (countKeys), while !keys_loaded */
    uint32_t change_counter;
    /* How far our own verifyPINs moved the counter since the load (tok_card_pin_verified). */
    uint32_t own_changes;
    uint32_t max_keys, used_keys;
    tok_card_key *keys; /* complete keys, ascending handles */
    size_t nkeys;
    tok_card_object *objects; /* ascending handles */
    size_t nobjects;
    sks_pin_policy_info *policies; /* views point into policies_buf */
    size_t npolicies;
    sks_writer policies_buf;
    tok_card_entry *entries;
    size_t nentries;
    /* CKA_ID ('I') and CKA_LABEL ('L') -> entries, rebuilt with the cache. */
    tok_index *lookup;
    /* Entries the index does not cover (CA certificates): a search by ID or label checks them. */
    uint32_t *scan;
    size_t nscan;
    /* The DKEK status and the attributes of its objects (tok_dkek*.c); NULL: none. */
    struct tok_dkek_cache *dkek;
} tok_card;

/*
 * Run one SKS call on the card: encode, frame (sks_apdu_call), decode.
 * `answer` keeps the bytes the response views point into (caller inits and
 * frees it). Returns CKR_OK and *status (0 or the card's SKS status; errmsg,
 * if not NULL, gets the card's error string), or a CKR for transport
 * failures (CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_DEVICE_ERROR). A
 * method this build does not know answers status SKS_ERR_NO_METHOD.
 */
CK_RV tok_card_call(tok_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer,
                    uint8_t *status, char *errmsg, size_t errlen);
/* tok_card_call + tok_status_to_rv for callers that need no card message. */
CK_RV tok_card_call_rv(tok_card *card, uint8_t method, const void *req, void *resp,
                       sks_writer *answer);
/* The CKR that an SKS status means for a method (tok_status.c). */
CK_RV tok_status_to_rv(uint8_t status, uint8_t method);
/* The same for provisioning calls relayed by the vendor mechanisms (CKR_VENDOR_SKS_*). */
CK_RV tok_status_to_rv_prov(uint8_t status, uint8_t method);
/* Bracket a PKCS#11 call's card I/O (transport begin/end, re-SELECT after a reset). */
CK_RV tok_card_begin(tok_card *card);
void tok_card_end(tok_card *card);
/* The CKR for a failed transport (enum sks_transport_status) (tok_status.c). */
CK_RV tok_transport_rv(int status);

/* ---- cards coming and going (tok_readers.c, tok_cardtab.c) --------------- */
/*
 * Card indices are tied to names ("embedded", "pcsc:<reader name>") for the
 * module's lifetime, so slot IDs and object handles of a reader's card stay
 * the same while readers come and go.
 */
typedef struct {
    char *name[TOK_MAX_CARDS];
    size_t n;
} tok_cardtab;
/* The index of `name`, added when new and `add` is set; -1 when unknown or full. */
int tok_cardtab_index(tok_cardtab *t, const char *name, int add);
void tok_cardtab_free(tok_cardtab *t);
/*
 * The card with table name `key`, created (not connected) when new. NULL
 * when the table is full or out of memory.
 */
tok_card *tok_card_for(const char *key, const char *reader, int removable);
/* Connect a card to a transport (selected: the SKS application already is). */
void tok_card_attach(tok_card *card, sks_transport *t, int extended, int selected);
/*
 * The card went away: close its transport, forget its logins, hide its slots
 * (reported as slot events) and start a new generation. Cache pointers stay
 * valid until the next reload.
 */
void tok_card_gone(tok_card *card);
/*
 * Look at the PC/SC readers (no-op without PC/SC): connect SKS cards that
 * appeared, drop cards that went away. Never blocks on pcscd.
 */
void tok_readers_scan(void);
/* Free the scan's and the event queue's memory (C_Finalize). */
void tok_readers_free(void);
/* Slot events for C_WaitForSlotEvent: queued once per slot, handed out in order. */
void tok_event_push(CK_SLOT_ID slot);
int tok_event_pop(CK_SLOT_ID *slot);
/*
 * Blocking waits (tok_wait.c). tok_wait_block() runs `w` (or, when NULL, sleeps
 * a second) without the module lock: CKR_OK when something may have changed,
 * CKR_CRYPTOKI_NOT_INITIALIZED when C_Finalize ended the wait. C_Finalize
 * calls tok_wait_stop() (returns once no wait is running), C_Initialize
 * tok_wait_start().
 */
CK_RV tok_wait_block(sks_pcsc_wait *w);
void tok_wait_start(void);
void tok_wait_stop(void);
/*
 * (Re)load the cache when missing or when the card's change counter moved:
 * the PIN policies and stored objects; the keys are read by tok_card_ensure.
 */
CK_RV tok_card_refresh(tok_card *card);
/* Load the cache when missing (no change-counter check), with the keys and entries. */
CK_RV tok_card_ensure(tok_card *card);
/* Forget the cache: the next refresh/ensure reloads it (call after a change). */
void tok_card_invalidate(tok_card *card);
/*
 * A verifyPIN of ours succeeded: the card's counter moved by its two commits
 * (docs/protocol.md 7.0), which change no key or object. The next refresh
 * reloads only the PIN policies (and private objects now readable), unless
 * the counter shows that someone else changed the card too.
 */
void tok_card_pin_verified(tok_card *card);
tok_card_key *tok_card_find_key(tok_card *card, uint32_t handle);
tok_card_object *tok_card_find_object(tok_card *card, uint32_t handle);
const sks_pin_policy_info *tok_card_find_policy(const tok_card *card, uint32_t handle);
void tok_card_cache_free(tok_card *card);
void tok_card_free(tok_card *card);
/* Attributes of object `kind` of a card key, built on first use (NULL: no memory). */
const tok_attrs *tok_card_key_attrs(tok_card_key *key, unsigned kind);
/* Build them (tok_keyattrs.c). */
CK_RV tok_keyattrs_build(const tok_card_key *key, unsigned kind, tok_attrs *out);

/* ---- stored objects' attribute format (tok_stored.c) ---------------------- */
/* Serialise every attribute except CKA_TOKEN (docs/token.md "Stored objects"). */
CK_RV tok_stored_encode(const tok_attrs *a, sks_writer *w);
/* Parse a blob written by tok_stored_encode (strict); CKR_DEVICE_ERROR if malformed. */
CK_RV tok_stored_decode(sks_view blob, tok_attrs *a);

/* ---- slots (tok_slot.c) ------------------------------------------------- */
enum tok_slot_kind {
    TOK_SLOT_POLICY, /* the token of one PIN policy */
    TOK_SLOT_NOPIN,  /* keys and objects without PIN */
    TOK_SLOT_FREE,   /* uninitialised token: C_InitToken creates a PIN policy */
    TOK_SLOT_ISSUER, /* no-card mode: the issuer token (tok_issuer_token.h) */
};

/*
 * Slot IDs are stable: card index in bits 24..31, then the PIN policy handle
 * (TOK_SLOT_POLICY), 0 (TOK_SLOT_NOPIN) or 0xFFFFFF (TOK_SLOT_FREE).
 */
#define TOK_SLOT_ID(card_index, low) ((CK_SLOT_ID)(((CK_ULONG)(card_index) << 24) | (low)))
#define TOK_SLOT_LOW_NOPIN           0u
#define TOK_SLOT_LOW_FREE            0xFFFFFFu

#define TOK_NOBODY ((CK_USER_TYPE)-1)

typedef struct {
    CK_SLOT_ID id;
    tok_card *card;
    enum tok_slot_kind kind;
    uint32_t pin_policy; /* TOK_SLOT_POLICY */
    CK_USER_TYPE login;  /* TOK_NOBODY, CKU_USER or CKU_SO */
    int present;         /* listed by C_GetSlotList (the policy still exists) */
} tok_slot;

/* Refresh every card's cache, and with it the slot list (keeps login state). */
CK_RV tok_slots_update(void);
/* Bring a card's slots in line with its (just loaded) cache. */
void tok_slots_sync(tok_card *card);
/* Forget every login of a card's slots (card reset, card gone). */
void tok_slots_forget_logins(tok_card *card);
/* Which slot a card object with this PIN policy belongs to. */
CK_SLOT_ID tok_slot_id_for_policy(const tok_card *card, uint32_t pin_policy);

/* ---- object handles (tok_object.c) -------------------------------------- */
/*
 * Card objects: bit 62 clear; card index + 1 in bits 56..61; the card's key
 * or object handle in bits 4..35; the kind in bits 0..3.
 * Session objects: bit 62 set, a counter below.
 */
enum tok_obj_kind {
    TOK_KIND_PRIVATE_KEY = 0,
    TOK_KIND_PUBLIC_KEY = 1,
    TOK_KIND_CERT_FIRST = 2, /* certificate i of a key's path: 2 + i, i < 10 */
    TOK_KIND_BACKUP = 13,    /* a key's backup view (tok_dkek*.c): the key's handle */
    TOK_KIND_DKEK = 14,      /* a token's DKEK object (tok_dkek*.c): the policy handle */
    TOK_KIND_STORED = 15,    /* an object stored on the card */
};
#define TOK_H_SESSION_BIT ((CK_OBJECT_HANDLE)1 << 62)

CK_OBJECT_HANDLE tok_handle_card(int card_index, uint32_t card_handle, unsigned kind);
/* 0 for a well-formed card object handle, -1 otherwise (session handles too). */
int tok_handle_decode(CK_OBJECT_HANDLE h, int *card_index, uint32_t *card_handle, unsigned *kind);

typedef struct tok_session_object {
    CK_OBJECT_HANDLE handle;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE owner; /* session that created it; destroyed with it */
    tok_attrs attrs;
    /* An object of the issuer token (no-card mode): its file's ID, owner 0. 0: a session object. */
    uint64_t token_id;
    struct tok_session_object *next;
} tok_session_object;

/* Where an object lives, resolved from its handle (tok_object_get). */
typedef enum {
    TOK_OBJ_CARD_KEY, /* private key, public key or certificate of a card key */
    TOK_OBJ_STORED,   /* stored on the card by createObject */
    TOK_OBJ_SESSION,  /* in module memory */
    TOK_OBJ_DKEK,     /* a token's DKEK object or a key's backup view (tok_dkek*.c) */
} tok_obj_where;

typedef struct {
    CK_OBJECT_HANDLE handle;
    tok_obj_where where;
    CK_OBJECT_CLASS cls;
    CK_KEY_TYPE key_type;     /* CK_UNAVAILABLE_INFORMATION when not a key */
    tok_card *card;           /* card objects */
    tok_card_key *key;        /* TOK_OBJ_CARD_KEY */
    unsigned kind;            /* TOK_OBJ_CARD_KEY: enum tok_obj_kind */
    tok_card_object *stored;  /* TOK_OBJ_STORED */
    tok_session_object *sobj; /* TOK_OBJ_SESSION */
    const tok_attrs *attrs;   /* every attribute of the object */
} tok_object;

struct tok_session;
/*
 * Resolve an object handle for a session: it must exist, belong to the
 * session's slot (token) and be visible (private objects only after user
 * login). CKR_OBJECT_HANDLE_INVALID otherwise; callers working on keys map
 * that to CKR_KEY_HANDLE_INVALID. Loads the card cache if needed.
 */
CK_RV tok_object_get(struct tok_session *s, CK_OBJECT_HANDLE h, tok_object *out);
/* May this session see an object with these attributes (CKA_PRIVATE vs login)? */
int tok_object_visible(const struct tok_session *s, const tok_attrs *attrs);
/*
 * Add a session object (C_GenerateKey, C_UnwrapKey, C_DeriveKey, C_CreateObject):
 * takes over `attrs` (emptied on success), sets CKA_TOKEN false, returns the handle.
 */
CK_RV tok_object_add_session(struct tok_session *s, tok_attrs *attrs, CK_OBJECT_HANDLE *out);
/* Destroy the session objects of one session (or of a slot, for logout: private ones). */
void tok_object_drop_session(CK_SESSION_HANDLE owner);
void tok_object_drop_private(CK_SLOT_ID slot);
void tok_object_destroy_session_object(tok_session_object *o);
/*
 * Add a token object of the issuer token (no-card mode, tok_issuer_token.h):
 * kept with the session objects, owned by no session, CKA_TOKEN true.
 */
CK_RV tok_object_add_token(CK_SLOT_ID slot, tok_attrs *attrs, uint64_t token_id,
                           CK_OBJECT_HANDLE *out);

/* ---- keys and certificates as attributes (tok_pkey.c) -------------------- */
/* An EVP_PKEY from public-key attributes (CKA_PUBLIC_KEY_INFO or the RSA/EC components). */
EVP_PKEY *tok_pkey_from_attrs(const tok_attrs *a);
/*
 * The public attributes of a key: CKA_KEY_TYPE, CKA_PUBLIC_KEY_INFO and
 * CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT (RSA) or CKA_EC_PARAMS
 * and, for cls CKO_PUBLIC_KEY, CKA_EC_POINT (EC). CKR_KEY_TYPE_INCONSISTENT
 * for other key types.
 */
CK_RV tok_pkey_attrs(EVP_PKEY *pk, CK_OBJECT_CLASS cls, tok_attrs *a);
/* CKA_EC_PARAMS (named curve OID, DER) -> OpenSSL group name ("prime256v1"), or NULL. */
const char *tok_ec_group_name(const uint8_t *params, size_t len);
/*
 * The attributes an X.509 certificate implies: CKA_SUBJECT, CKA_ISSUER,
 * CKA_SERIAL_NUMBER, CKA_PUBLIC_KEY_INFO, CKA_CHECK_VALUE, CKA_START_DATE,
 * CKA_END_DATE (only those absent when only_missing). CKR_ATTRIBUTE_VALUE_INVALID
 * when der is not a certificate.
 */
CK_RV tok_cert_attrs(const uint8_t *der, size_t len, tok_attrs *a, int only_missing);
/* The subject's common name (or "") into buf; SHA-1 of the public key into id. */
void tok_cert_common_name(const uint8_t *der, size_t len, char *buf, size_t cap);
int tok_cert_key_id(const uint8_t *der, size_t len, uint8_t id[20]);

/* ---- operations (tok_ops.c, tok_sign.c, tok_cipher.c, tok_digest.c) ---- */
enum tok_op_kind {
    TOK_OPER_NONE,
    TOK_OPER_FIND,
    TOK_OPER_SIGN,
    TOK_OPER_VERIFY,
    TOK_OPER_ENCRYPT,
    TOK_OPER_DECRYPT,
    TOK_OPER_DIGEST,
};

typedef struct {
    enum tok_op_kind kind;
    CK_MECHANISM_TYPE mech;
    CK_OBJECT_HANDLE key;
    uint8_t *param; /* copy of the mechanism parameter */
    CK_ULONG param_len;
    EVP_MD_CTX *md;         /* hash-then-sign and digest, multi-part */
    EVP_CIPHER_CTX *cipher; /* AES */
    sks_writer buffered;    /* single-part-only mechanisms collect data here */
    int multi;              /* an Update call was made */
    int auth_pending;       /* an always-authenticate key: C_Login(CKU_CONTEXT_SPECIFIC) is due */
    void *extra;            /* mechanism-specific state, owned and freed by tok_*.c */
} tok_operation;

typedef struct {
    CK_OBJECT_HANDLE *v;
    size_t n, pos;
} tok_find;

typedef struct tok_session {
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
    unsigned long generation; /* the card's generation when the session was opened */
    CK_FLAGS flags;           /* CKF_SERIAL_SESSION, CKF_RW_SESSION */
    tok_operation sign, verify, encrypt, decrypt, digest;
    tok_find find;
    int finding;
} tok_session;

/* ---- the module (p11_module.c) ----------------------------------------- */
typedef struct {
    char *state_dir;       /* parent of card/ (embedded card) and issuer/ (local issuer) */
    char *log_file;        /* NULL: stderr */
    int log_level;         /* TOK_LOG_ERROR .. TOK_LOG_DEBUG */
    char *apdu_trace_file; /* NULL: no trace */
    char *manufacturer_ca; /* PEM for the local issuer; NULL: the default */
    int use_embedded;
    int use_pcsc;
    int no_card; /* transport = none: only the issuer token (tok_issuer_token.h) */
} tok_config;

typedef struct {
    int initialized;
    pid_t pid; /* the process that initialised the module (fork: p11_module.c) */
    tok_config config;
    tok_card *cards[TOK_MAX_CARDS];
    size_t ncards;
    tok_slot **slots; /* every slot ever seen; `present` says which are listed */
    size_t nslots;
    tok_session **sessions;
    size_t nsessions, sessions_cap;
    CK_SESSION_HANDLE next_session;
    tok_session_object *session_objects;
    CK_OBJECT_HANDLE next_object;
    sks_local_issuer *issuer; /* opened on first use (tok_issuer.c) */
    tok_cardtab cardtab;      /* card index <-> name, for the whole initialisation */
    sks_pcsc *pcsc;           /* the PC/SC service; NULL when the transport is not used */
    int pcsc_down;            /* pcscd unreachable at the last scan (logged once) */
    int scanned;              /* the first reader scan is done: later changes are events */
    CK_SLOT_ID *events;       /* slot events not yet handed out */
    size_t nevents, events_cap;
    struct tok_probe *probed; /* readers whose card is not an SKS card, by event count */
    size_t nprobed;
    struct tok_issuer_token *issuer_token; /* no-card mode (tok_issuer_token.c); else NULL */
} tok_module;

extern tok_module tok_g;

/* Life cycle pieces C_Initialize and C_Finalize put together. */
void tok_cards_open(void); /* the configured transports; failures are logged */
void tok_cards_close(void);
void tok_slots_free(void);
void tok_session_free(tok_session *s); /* after tok_session_ops_reset */
void tok_object_drop_all(void);
void tok_issuer_close(void);

/* Lookups used by every entry point (return the CKR to pass on). */
/*
 * A present slot (may scan and refresh the cards first): CKR_SLOT_ID_INVALID
 * for an unknown ID, CKR_TOKEN_NOT_PRESENT for a known slot whose token is gone.
 */
CK_RV tok_slot_get(CK_SLOT_ID id, tok_slot **out);
tok_slot *tok_slot_find(CK_SLOT_ID id); /* any known slot, no card I/O; or NULL */
/* The session and its slot (slot may be NULL). Never touches the card. */
CK_RV tok_session_get(CK_SESSION_HANDLE h, tok_session **out, tok_slot **slot);
/* Sessions (tok_session.c). */
CK_RV tok_session_open(tok_slot *slot, CK_FLAGS flags, CK_SESSION_HANDLE *out);
void tok_session_close(tok_session *s); /* also logs the slot out after its last session */
size_t tok_session_count(CK_SLOT_ID slot, int rw_only);
/* Is the user logged in on this slot (CKU_USER)? */
int tok_logged_in(const tok_slot *slot);
/* Is the session read/write? */
int tok_session_rw(const tok_session *s);

/*
 * The local issuer and the link it uses to reach `card` (tok_issuer.c):
 * opened from <state_dir>/issuer on first use. After a successful
 * provisioning call the caller invalidates the card cache.
 */
CK_RV tok_issuer_get(tok_card *card, sks_local_issuer **li, sks_card_link *link);

/*
 * C_InitToken on a policy token (tok_reinit.c): resetPINPolicy with the SO
 * PIN (the policy's PUK) and `label` as the new ID, then a cache refresh.
 * The caller checks the arguments and that no session is open on the slot.
 * CKR_FUNCTION_NOT_SUPPORTED for other slots.
 */
CK_RV tok_token_reinit(tok_slot *slot, const CK_UTF8CHAR *so_pin, CK_ULONG so_pin_len,
                       const char *label);

/* Configuration (tok_config.c): SKS_PKCS11_CONF or defaults. */
CK_RV tok_config_load(tok_config *cfg);
void tok_config_free(tok_config *cfg);

/* Logging (tok_log.c); never pass secrets. */
void tok_log_open(const tok_config *cfg);
void tok_log_close(void);
void tok_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The APDU trace hook installed on transports when apdu_trace is configured. */
void tok_log_apdu(void *ctx, const uint8_t *cmd, size_t n, const uint8_t *resp, size_t m);
int tok_log_apdu_enabled(void);
#define TOK_LOG_ERROR 0
#define TOK_LOG_WARN  1
#define TOK_LOG_INFO  2
#define TOK_LOG_DEBUG 3

/* Copy a string into a blank-padded PKCS#11 text field. */
void tok_pad(CK_UTF8CHAR *dst, size_t len, const char *src);

#endif
