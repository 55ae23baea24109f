/*
 * test-token-issuer.c - no-card mode (`transport = none`): the one slot and
 * its issuer token, its PINs, software key pairs and their persistence
 * across C_Finalize/C_Initialize (private objects encrypted at rest),
 * signatures, decryption and ECDH with software keys checked with OpenSSL
 * (default library context, independent of the module), key archival with
 * CKM_AES_KEY_WRAP_PAD checked by unwrapping with OpenSSL, the standard's
 * rules for sensitive and unextractable keys, and damaged files (an object
 * that does not open is skipped, a damaged token file leaves no slot).
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "test-token-issuer-util.h"

/* Does any file of the issuer token's directory contain `needle`? */
static int files_contain(const ti_ctx *c, const void *needle, size_t n)
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/issuer-token", c->env.state);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int found = 0;
    struct dirent *e;
    while (!found && (e = readdir(d)) != NULL) {
        char path[700];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        struct stat st;
        if (f == NULL || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            if (f != NULL)
                fclose(f);
            continue;
        }
        unsigned char *buf = malloc((size_t)st.st_size + 1);
        size_t got = fread(buf, 1, (size_t)st.st_size, f);
        fclose(f);
        for (size_t i = 0; !found && i + n <= got; i++)
            found = memcmp(buf + i, needle, n) == 0;
        free(buf);
    }
    closedir(d);
    return found;
}

/*
 * The object files (obj-*) in the issuer token's directory: their number;
 * the name of the last one found goes to `name` unless NULL.
 */
static int object_files(const ti_ctx *c, char name[300])
{
    char dir[400];
    snprintf(dir, sizeof(dir), "%s/issuer-token", c->env.state);
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "obj-", 4) == 0) {
            if (name != NULL)
                snprintf(name, 300, "%s", e->d_name);
            n++;
        }
    }
    closedir(d);
    return n;
}

static CK_ULONG count_objects(ti_ctx *c, CK_OBJECT_CLASS cls)
{
    return tt_count_id(c->f, c->s, cls, NULL, NULL);
}

START_TEST(t_one_slot_no_card)
{
    ti_ctx c;
    ti_open(&c);
    CK_SLOT_INFO si;
    TT_OK(c.f->C_GetSlotInfo(c.slot, &si));
    ck_assert(si.flags & CKF_TOKEN_PRESENT);
    ck_assert(!(si.flags & CKF_REMOVABLE_DEVICE));
    CK_TOKEN_INFO ti;
    TT_OK(c.f->C_GetTokenInfo(c.slot, &ti));
    ck_assert(memcmp(ti.label, "SKS issuer                      ", 32) == 0);
    ck_assert(memcmp(ti.model, "issuer          ", 16) == 0);
    ck_assert(!(ti.flags & CKF_TOKEN_INITIALIZED));
    ck_assert(ti.flags & CKF_LOGIN_REQUIRED);
    for (int i = 0; i < 16; i++)
        ck_assert(strchr("0123456789ABCDEF", ti.serialNumber[i]) != NULL);
    unsigned char serial[16];
    memcpy(serial, ti.serialNumber, 16);
    /* No card was made: the state directory has the issuer token only. */
    char path[400];
    struct stat st;
    snprintf(path, sizeof(path), "%s/card", c.env.state);
    ck_assert_int_ne(stat(path, &st), 0);
    snprintf(path, sizeof(path), "%s/issuer-token", c.env.state);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/issuer-token/token", c.env.state);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    /* The serial is kept in the state directory. */
    TT_OK(c.f->C_Finalize(NULL));
    TT_OK(c.f->C_Initialize(NULL));
    CK_SLOT_ID ids[4];
    CK_ULONG n;
    tt_slots(c.f, ids, 4, &n);
    ck_assert_uint_eq(n, 1);
    TT_OK(c.f->C_GetTokenInfo(ids[0], &ti));
    ck_assert(memcmp(ti.serialNumber, serial, 16) == 0);
    /* The issuer token wraps with the injection mechanisms; the card side unwraps. */
    CK_MECHANISM_INFO mi;
    TT_OK(c.f->C_GetMechanismInfo(ids[0], CKM_VENDOR_SKS_INJECT_KEY, &mi));
    ck_assert(mi.flags & CKF_WRAP);
    ck_assert(!(mi.flags & (CKF_UNWRAP | CKF_HW)));
    TT_OK(c.f->C_GetMechanismInfo(ids[0], CKM_SHA256_RSA_PKCS, &mi));
    ck_assert(mi.flags & CKF_SIGN);
    ck_assert(!(mi.flags & CKF_HW));
    /* Every listed mechanism has its information; the injection and issuer ones are listed. */
    CK_ULONG nm = 0;
    TT_OK(c.f->C_GetMechanismList(ids[0], NULL, &nm));
    CK_MECHANISM_TYPE *mechs = calloc(nm, sizeof(*mechs));
    CK_ULONG short_n = nm - 1;
    TT_RV(c.f->C_GetMechanismList(ids[0], mechs, &short_n), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(short_n, nm);
    TT_OK(c.f->C_GetMechanismList(ids[0], mechs, &nm));
    int inject = 0, accept = 0;
    for (CK_ULONG i = 0; i < nm; i++) {
        TT_OK(c.f->C_GetMechanismInfo(ids[0], mechs[i], &mi));
        inject += mechs[i] == CKM_VENDOR_SKS_INJECT_KEY;
        accept += mechs[i] == CKM_VENDOR_SKS_SESSION_ACCEPT;
    }
    ck_assert_int_eq(inject, 1);
    ck_assert_int_eq(accept, 1);
    free(mechs);
    ti_finish(&c);
}
END_TEST

START_TEST(t_pins)
{
    ti_ctx c;
    ti_open(&c);
    CK_SESSION_HANDLE s = tt_open(c.f, c.slot);
    /* Nothing can log in before C_InitToken; no token object can be made. */
    TT_RV(c.f->C_Login(s, CKU_SO, TI_U(TI_SO_PIN), strlen(TI_SO_PIN)),
          CKR_USER_PIN_NOT_INITIALIZED);
    TT_OK(c.f->C_CloseSession(s));
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof(label));
    memcpy(label, "ca-server", 9);
    TT_RV(c.f->C_InitToken(c.slot, TI_U("abc"), 3, label), CKR_PIN_LEN_RANGE);
    TT_OK(c.f->C_InitToken(c.slot, TI_U(TI_SO_PIN), strlen(TI_SO_PIN), label));
    CK_TOKEN_INFO ti;
    TT_OK(c.f->C_GetTokenInfo(c.slot, &ti));
    ck_assert(memcmp(ti.label, label, 32) == 0);
    ck_assert(ti.flags & CKF_TOKEN_INITIALIZED);
    ck_assert(!(ti.flags & CKF_USER_PIN_INITIALIZED));

    s = tt_open(c.f, c.slot);
    TT_RV(c.f->C_Login(s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)),
          CKR_USER_PIN_NOT_INITIALIZED);
    TT_RV(c.f->C_Login(s, CKU_SO, TI_U("wrong-pin"), 9), CKR_PIN_INCORRECT);
    TT_OK(c.f->C_Login(s, CKU_SO, TI_U(TI_SO_PIN), strlen(TI_SO_PIN)));
    TT_OK(c.f->C_InitPIN(s, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
    TT_OK(c.f->C_Logout(s));
    TT_RV(c.f->C_Login(s, CKU_USER, TI_U("wrong-pin"), 9), CKR_PIN_INCORRECT);
    TT_OK(c.f->C_Login(s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
    TT_RV(c.f->C_Login(s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)),
          CKR_USER_ALREADY_LOGGED_IN);

    /* A private token object, then a new user PIN: the object stays readable. */
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE data[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_TOKEN, (void *)&ti_yes, 1},
                           {CKA_PRIVATE, (void *)&ti_yes, 1},
                           {CKA_LABEL, "private data", 12},
                           {CKA_VALUE, "issuer secret note", 18}};
    TT_OK(c.f->C_CreateObject(s, data, 5, &h));
    ck_assert_int_eq(object_files(&c, NULL), 1);
    TT_RV(c.f->C_SetPIN(s, TI_U("wrong-pin"), 9, TI_U("new-user-pin"), 12), CKR_PIN_INCORRECT);
    TT_OK(c.f->C_SetPIN(s, TI_U(TI_USER_PIN), strlen(TI_USER_PIN), TI_U("new-user-pin"), 12));
    TT_OK(c.f->C_Logout(s));
    c.s = s;
    ck_assert_uint_eq(count_objects(&c, CKO_DATA), 0);
    TT_RV(c.f->C_Login(s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)), CKR_PIN_INCORRECT);
    TT_OK(c.f->C_Login(s, CKU_USER, TI_U("new-user-pin"), 12));
    ck_assert_uint_eq(count_objects(&c, CKO_DATA), 1);

    /* A new user PIN set by the SO reaches the same objects (the SO holds the master key too). */
    TT_OK(c.f->C_Logout(s));
    TT_OK(c.f->C_Login(s, CKU_SO, TI_U(TI_SO_PIN), strlen(TI_SO_PIN)));
    TT_OK(c.f->C_InitPIN(s, TI_U("reset-pin"), 9));
    TT_OK(c.f->C_Logout(s));
    TT_OK(c.f->C_Finalize(NULL));
    TT_OK(c.f->C_Initialize(NULL));
    s = c.s = tt_open(c.f, c.slot);
    TT_RV(c.f->C_Login(s, CKU_USER, TI_U("new-user-pin"), 12), CKR_PIN_INCORRECT);
    TT_OK(c.f->C_Login(s, CKU_USER, TI_U("reset-pin"), 9));
    ck_assert_uint_eq(count_objects(&c, CKO_DATA), 1);
    TT_OK(c.f->C_CloseSession(s));

    /* C_InitToken again: only with the SO PIN, and it empties the token. */
    TT_RV(c.f->C_InitToken(c.slot, TI_U("wrong-pin"), 9, label), CKR_PIN_INCORRECT);
    TT_OK(c.f->C_InitToken(c.slot, TI_U(TI_SO_PIN), strlen(TI_SO_PIN), label));
    TT_OK(c.f->C_GetTokenInfo(c.slot, &ti));
    ck_assert(!(ti.flags & CKF_USER_PIN_INITIALIZED));
    s = c.s = tt_open(c.f, c.slot);
    TT_OK(c.f->C_Login(s, CKU_SO, TI_U(TI_SO_PIN), strlen(TI_SO_PIN)));
    TT_OK(c.f->C_InitPIN(s, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
    TT_OK(c.f->C_Logout(s));
    TT_OK(c.f->C_Login(s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
    ck_assert_uint_eq(count_objects(&c, CKO_DATA), 0);
    ck_assert_int_eq(object_files(&c, NULL), 0);
    ti_finish(&c);
}
END_TEST

START_TEST(t_key_pairs_persist)
{
    ti_ctx c;
    ti_start(&c);
    CK_OBJECT_HANDLE rpub, rpriv, epub, epriv;
    ti_rsa_pair(&c, 2048, CK_TRUE, CK_FALSE, "rsa1", &rpub, &rpriv);
    ti_ec_pair(&c, 1, CK_TRUE, CK_FALSE, "ec1", &epub, &epriv);
    /* The attributes a later session must see again, values included. */
    static const CK_ATTRIBUTE_TYPE kept[] = {
        CKA_CLASS,
        CKA_KEY_TYPE,
        CKA_ID,
        CKA_LABEL,
        CKA_TOKEN,
        CKA_PRIVATE,
        CKA_SENSITIVE,
        CKA_EXTRACTABLE,
        CKA_SIGN,
        CKA_LOCAL,
        CKA_KEY_GEN_MECHANISM,
        CKA_ALWAYS_SENSITIVE,
        CKA_NEVER_EXTRACTABLE,
        CKA_PUBLIC_KEY_INFO,
    };
    enum { NK = sizeof(kept) / sizeof(kept[0]) };
    CK_OBJECT_HANDLE privs[2] = {rpriv, epriv};
    unsigned char *before[2][NK];
    size_t before_len[2][NK];
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < NK; i++)
            before[k][i] = ti_attr(&c, privs[k], kept[i], &before_len[k][i]);
    ck_assert(ti_bool(&c, rpriv, CKA_ALWAYS_SENSITIVE));
    ck_assert(ti_bool(&c, rpriv, CKA_NEVER_EXTRACTABLE));
    ck_assert(ti_bool(&c, rpriv, CKA_LOCAL));
    ck_assert(!ti_bool(&c, rpub, CKA_PRIVATE));

    /* Gone from memory with C_Finalize, back from the files. */
    TT_OK(c.f->C_Finalize(NULL));
    TT_OK(c.f->C_Initialize(NULL));
    c.s = tt_open(c.f, c.slot);
    /* Before login: the public keys only. */
    ck_assert_uint_eq(count_objects(&c, CKO_PUBLIC_KEY), 2);
    ck_assert_uint_eq(count_objects(&c, CKO_PRIVATE_KEY), 0);
    TT_OK(c.f->C_Login(c.s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
    ck_assert_uint_eq(count_objects(&c, CKO_PRIVATE_KEY), 2);
    const char *ids[2] = {"rsa1", "ec1"};
    for (int k = 0; k < 2; k++) {
        CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
        CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
                            {CKA_ID, (void *)ids[k], strlen(ids[k])}};
        CK_OBJECT_HANDLE h = ti_find_one(&c, t, 2);
        for (int i = 0; i < NK; i++) {
            size_t len;
            unsigned char *now = ti_attr(&c, h, kept[i], &len);
            ck_assert_msg(len == before_len[k][i] && memcmp(now, before[k][i], len) == 0,
                          "key %s: attribute 0x%lx changed", ids[k], (unsigned long)kept[i]);
            free(now);
            free(before[k][i]);
        }
    }
    /* Logout drops the private objects again; the private key's label is not on disk. */
    TT_OK(c.f->C_Logout(c.s));
    ck_assert_uint_eq(count_objects(&c, CKO_PRIVATE_KEY), 0);
    ck_assert(files_contain(&c, "rsa1", 4)); /* the public key is stored in the clear */
    ck_assert(!files_contain(&c, "rsa key", 7));
    ti_finish(&c);
}
END_TEST

/* Sign with the module, verify with OpenSSL and with the module. */
static void sign_and_check(ti_ctx *c, CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub, CK_MECHANISM *m,
                           int pss)
{
    static const unsigned char msg[] = "issued by the issuer token";
    unsigned char sig[512];
    CK_ULONG sig_len = sizeof(sig);
    TT_OK(c->f->C_SignInit(c->s, m, priv));
    TT_OK(c->f->C_Sign(c->s, (CK_BYTE_PTR)msg, sizeof(msg), sig, &sig_len));
    EVP_PKEY *pk = ti_public_key(c, pub);
    ck_assert(tl_signature_ok(pk, pss, msg, sizeof(msg), sig, sig_len));
    EVP_PKEY_free(pk);
    TT_OK(c->f->C_VerifyInit(c->s, m, pub));
    TT_OK(c->f->C_Verify(c->s, (CK_BYTE_PTR)msg, sizeof(msg), sig, sig_len));
    sig[3] ^= 1;
    TT_OK(c->f->C_VerifyInit(c->s, m, pub));
    TT_RV(c->f->C_Verify(c->s, (CK_BYTE_PTR)msg, sizeof(msg), sig, sig_len), CKR_SIGNATURE_INVALID);
}

/* RSA-OAEP (SHA-256, MGF1-SHA-256) of `n` bytes by OpenSSL to the token's public key `pub`. */
static void oaep_encrypt(ti_ctx *c, CK_OBJECT_HANDLE pub, const unsigned char *in, size_t n,
                         unsigned char *out, size_t *out_len)
{
    EVP_PKEY *pk = ti_public_key(c, pub);
    EVP_PKEY_CTX *ectx = EVP_PKEY_CTX_new(pk, NULL);
    ck_assert_int_eq(EVP_PKEY_encrypt_init(ectx), 1);
    EVP_PKEY_CTX_set_rsa_padding(ectx, RSA_PKCS1_OAEP_PADDING);
    EVP_PKEY_CTX_set_rsa_oaep_md(ectx, EVP_sha256());
    EVP_PKEY_CTX_set_rsa_mgf1_md(ectx, EVP_sha256());
    ck_assert_int_eq(EVP_PKEY_encrypt(ectx, out, out_len, in, n), 1);
    EVP_PKEY_CTX_free(ectx);
    EVP_PKEY_free(pk);
}

START_TEST(t_sign_decrypt_derive)
{
    ti_ctx c;
    ti_start(&c);
    CK_OBJECT_HANDLE rpub, rpriv, epub, epriv;
    ti_rsa_pair(&c, 2048, CK_FALSE, CK_FALSE, "r", &rpub, &rpriv);
    ti_ec_pair(&c, 0, CK_FALSE, CK_FALSE, "e", &epub, &epriv);
    CK_MECHANISM pkcs1 = {CKM_SHA256_RSA_PKCS, NULL, 0};
    sign_and_check(&c, rpriv, rpub, &pkcs1, 0);
    CK_RSA_PKCS_PSS_PARAMS pp = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM pss = {CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof(pp)};
    sign_and_check(&c, rpriv, rpub, &pss, 1);
    CK_MECHANISM ecdsa = {CKM_ECDSA_SHA256, NULL, 0};
    sign_and_check(&c, epriv, epub, &ecdsa, 0);

    /* RSA-OAEP: OpenSSL encrypts to the public key, the token decrypts. */
    static const unsigned char secret[] = "a secret for the issuer";
    unsigned char ct[256], pt[256];
    size_t ct_len = sizeof(ct);
    oaep_encrypt(&c, rpub, secret, sizeof(secret), ct, &ct_len);
    CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
    CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
    CK_ULONG pt_len = sizeof(pt);
    TT_OK(c.f->C_DecryptInit(c.s, &oaep, rpriv));
    TT_OK(c.f->C_Decrypt(c.s, ct, ct_len, pt, &pt_len));
    ck_assert_uint_eq(pt_len, sizeof(secret));
    ck_assert_mem_eq(pt, secret, sizeof(secret));

    /* The same padding unwraps an AES key OpenSSL encrypted to the public key. */
    unsigned char aes[32];
    for (int i = 0; i < 32; i++)
        aes[i] = (unsigned char)(3 * i + 1);
    ct_len = sizeof(ct);
    oaep_encrypt(&c, rpub, aes, sizeof(aes), ct, &ct_len);
    CK_OBJECT_CLASS sk_cls = CKO_SECRET_KEY;
    CK_KEY_TYPE aes_kt = CKK_AES;
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &sk_cls, sizeof(sk_cls)},
                         {CKA_KEY_TYPE, &aes_kt, sizeof(aes_kt)},
                         {CKA_SENSITIVE, (void *)&ti_no, 1},
                         {CKA_EXTRACTABLE, (void *)&ti_yes, 1}};
    CK_OBJECT_HANDLE uk;
    TT_OK(c.f->C_UnwrapKey(c.s, &oaep, rpriv, ct, ct_len, ut, 4, &uk));
    size_t uk_len;
    unsigned char *uk_value = ti_attr(&c, uk, CKA_VALUE, &uk_len);
    ck_assert_uint_eq(uk_len, 32);
    ck_assert_mem_eq(uk_value, aes, 32);
    free(uk_value);

    /* ECDH: the derived secret (CKD_NULL) is the x coordinate OpenSSL computes. */
    EVP_PKEY *peer = ti_openssl_p256();
    unsigned char point[65], z[32], got[32];
    size_t plen = 0, zlen = sizeof(z);
    ck_assert(EVP_PKEY_get_octet_string_param(peer, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
                                              sizeof(point), &plen));
    CK_ECDH1_DERIVE_PARAMS dp = {CKD_NULL, 0, NULL, plen, point};
    CK_MECHANISM derive = {CKM_ECDH1_DERIVE, &dp, sizeof(dp)};
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE dt[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_KEY_TYPE, &kt, sizeof(kt)},
                         {CKA_SENSITIVE, (void *)&ti_no, 1},
                         {CKA_EXTRACTABLE, (void *)&ti_yes, 1}};
    CK_OBJECT_HANDLE dk;
    TT_OK(c.f->C_DeriveKey(c.s, &derive, epriv, dt, 4, &dk));
    EVP_PKEY *mine = ti_public_key(&c, epub);
    EVP_PKEY_CTX *x = EVP_PKEY_CTX_new(peer, NULL);
    ck_assert_int_eq(EVP_PKEY_derive_init(x), 1);
    ck_assert_int_eq(EVP_PKEY_derive_set_peer(x, mine), 1);
    ck_assert_int_eq(EVP_PKEY_derive(x, z, &zlen), 1);
    CK_ATTRIBUTE v = {CKA_VALUE, got, sizeof(got)};
    TT_OK(c.f->C_GetAttributeValue(c.s, dk, &v, 1));
    ck_assert_uint_eq(v.ulValueLen, 32);
    ck_assert_mem_eq(got, z, 32);
    /* A point on another curve is a bad parameter. */
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    unsigned char point384[97];
    ck_assert(EVP_PKEY_get_octet_string_param(p384, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point384,
                                              sizeof(point384), &plen));
    dp.ulPublicDataLen = plen;
    dp.pPublicData = point384;
    TT_RV(c.f->C_DeriveKey(c.s, &derive, epriv, dt, 4, &dk), CKR_MECHANISM_PARAM_INVALID);
    EVP_PKEY_free(p384);
    EVP_PKEY_CTX_free(x);
    EVP_PKEY_free(mine);
    EVP_PKEY_free(peer);
    ti_finish(&c);
}
END_TEST

START_TEST(t_archival_wrap)
{
    ti_ctx c;
    ti_start(&c);
    /* The archive key: AES-256 of a value the test knows. */
    unsigned char kek[32];
    for (int i = 0; i < 32; i++)
        kek[i] = (unsigned char)(0xA0 + i);
    CK_OBJECT_HANDLE ak = ti_aes_key(&c, kek, 32, CK_FALSE, CK_TRUE);
    CK_OBJECT_HANDLE pub, priv, pub2, priv2;
    ti_ec_pair(&c, 0, CK_TRUE, CK_TRUE, "k2", &pub, &priv);
    ti_rsa_pair(&c, 2048, CK_FALSE, CK_FALSE, "fixed", &pub2, &priv2);

    /* Sensitive values are never readable; the key is still wrappable (extractable). */
    CK_ATTRIBUTE secret = {CKA_VALUE, NULL, 0};
    TT_RV(c.f->C_GetAttributeValue(c.s, priv, &secret, 1), CKR_ATTRIBUTE_SENSITIVE);
    ck_assert_uint_eq(secret.ulValueLen, CK_UNAVAILABLE_INFORMATION);
    CK_ATTRIBUTE d = {CKA_PRIVATE_EXPONENT, NULL, 0};
    TT_RV(c.f->C_GetAttributeValue(c.s, priv2, &d, 1), CKR_ATTRIBUTE_SENSITIVE);
    CK_BBOOL f = CK_FALSE;
    CK_ATTRIBUTE unsensitive = {CKA_SENSITIVE, &f, 1};
    TT_RV(c.f->C_SetAttributeValue(c.s, priv, &unsensitive, 1), CKR_ATTRIBUTE_READ_ONLY);

    CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    unsigned char blob[4096];
    CK_ULONG blob_len = 0;
    TT_OK(c.f->C_WrapKey(c.s, &kwp, ak, priv, NULL, &blob_len));
    CK_ULONG need = blob_len;
    blob_len = need - 1;
    TT_RV(c.f->C_WrapKey(c.s, &kwp, ak, priv, blob, &blob_len), CKR_BUFFER_TOO_SMALL);
    ck_assert_uint_eq(blob_len, need);
    blob_len = sizeof(blob);
    TT_OK(c.f->C_WrapKey(c.s, &kwp, ak, priv, blob, &blob_len));
    ck_assert_uint_eq(blob_len, need);
    /* Not extractable: not wrappable either. */
    CK_ULONG l2 = sizeof(blob);
    TT_RV(c.f->C_WrapKey(c.s, &kwp, ak, priv2, blob + 2048, &l2), CKR_KEY_UNEXTRACTABLE);

    /* OpenSSL unwraps it to the PKCS#8 of the same key. */
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER_CTX_set_flags(ctx, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
    unsigned char p8[4096];
    int n1 = 0, n2 = 0;
    ck_assert_int_eq(EVP_DecryptInit_ex(ctx, EVP_aes_256_wrap_pad(), NULL, kek, NULL), 1);
    ck_assert_int_eq(EVP_DecryptUpdate(ctx, p8, &n1, blob, (int)blob_len), 1);
    ck_assert_int_eq(EVP_DecryptFinal_ex(ctx, p8 + n1, &n2), 1);
    EVP_CIPHER_CTX_free(ctx);
    const unsigned char *p = p8;
    PKCS8_PRIV_KEY_INFO *info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, n1 + n2);
    ck_assert_ptr_nonnull(info);
    ck_assert_ptr_eq(p, p8 + n1 + n2);
    EVP_PKEY *k2 = EVP_PKCS82PKEY(info);
    PKCS8_PRIV_KEY_INFO_free(info);
    EVP_PKEY *k2pub = ti_public_key(&c, pub);
    ck_assert_int_eq(EVP_PKEY_eq(k2, k2pub), 1);

    /* Unwrapped again on the token: a private key that signs for the same public key. */
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &cls, sizeof(cls)},
                         {CKA_KEY_TYPE, &kt, sizeof(kt)},
                         {CKA_ID, "restored", 8},
                         {CKA_SIGN, (void *)&ti_yes, 1}};
    CK_OBJECT_HANDLE restored;
    TT_OK(c.f->C_UnwrapKey(c.s, &kwp, ak, blob, blob_len, ut, 4, &restored));
    ck_assert(!ti_bool(&c, restored, CKA_LOCAL));
    ck_assert(!ti_bool(&c, restored, CKA_ALWAYS_SENSITIVE));
    ck_assert(ti_bool(&c, restored, CKA_SENSITIVE));
    tt_sign_and_verify(c.f, c.s, restored, k2pub);
    /* The wrong key type in the template, a damaged blob. */
    kt = CKK_RSA;
    TT_RV(c.f->C_UnwrapKey(c.s, &kwp, ak, blob, blob_len, ut, 4, &restored),
          CKR_TEMPLATE_INCONSISTENT);
    kt = CKK_EC;
    blob[5] ^= 1;
    TT_RV(c.f->C_UnwrapKey(c.s, &kwp, ak, blob, blob_len, ut, 4, &restored),
          CKR_WRAPPED_KEY_INVALID);
    EVP_PKEY_free(k2);
    EVP_PKEY_free(k2pub);
    ti_finish(&c);
}
END_TEST

START_TEST(t_created_objects)
{
    ti_ctx c;
    ti_start(&c);
    /* An EC private key of a scalar OpenSSL made: the token's signature verifies with it. */
    EVP_PKEY *ossl = ti_openssl_p256();
    BIGNUM *bn = NULL;
    unsigned char scalar[32];
    ck_assert(EVP_PKEY_get_bn_param(ossl, OSSL_PKEY_PARAM_PRIV_KEY, &bn));
    BN_bn2binpad(bn, scalar, 32);
    BN_clear_free(bn);
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE kt = CKK_EC;
    CK_ATTRIBUTE pt[] = {
        {CKA_CLASS, &cls, sizeof(cls)},  {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_TOKEN, (void *)&ti_yes, 1}, {CKA_EC_PARAMS, (void *)ti_p256_oid, sizeof(ti_p256_oid)},
        {CKA_VALUE, scalar, 32},         {CKA_SIGN, (void *)&ti_yes, 1},
        {CKA_LABEL, "imported", 8}};
    CK_OBJECT_HANDLE h;
    TT_OK(c.f->C_CreateObject(c.s, pt, 7, &h));
    EVP_PKEY *as_stored = ti_public_key(&c, h);
    ck_assert_int_eq(EVP_PKEY_eq(as_stored, ossl), 1);
    ck_assert(!ti_bool(&c, h, CKA_LOCAL));

    /* Token AES key from C_GenerateKey, a certificate-free data object; changes persist. */
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG len = 32;
    CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
    CK_ATTRIBUTE at[] = {{CKA_CLASS, &sk, sizeof(sk)},
                         {CKA_TOKEN, (void *)&ti_yes, 1},
                         {CKA_PRIVATE, (void *)&ti_yes, 1},
                         {CKA_VALUE_LEN, &len, sizeof(len)},
                         {CKA_LABEL, "archive", 7}};
    CK_OBJECT_HANDLE aes;
    TT_OK(c.f->C_GenerateKey(c.s, &gen, at, 5, &aes));
    ck_assert(ti_bool(&c, aes, CKA_TOKEN));
    CK_ATTRIBUTE relabel = {CKA_LABEL, "archive-2025", 12};
    TT_OK(c.f->C_SetAttributeValue(c.s, aes, &relabel, 1));

    /* A read-only session may read but not change token objects. */
    CK_SESSION_HANDLE ro;
    TT_OK(c.f->C_OpenSession(c.slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    TT_RV(c.f->C_SetAttributeValue(ro, aes, &relabel, 1), CKR_SESSION_READ_ONLY);
    TT_RV(c.f->C_DestroyObject(ro, aes), CKR_SESSION_READ_ONLY);
    TT_OK(c.f->C_CloseSession(ro));

    ti_restart(&c);
    CK_ATTRIBUTE byl[] = {{CKA_CLASS, &sk, sizeof(sk)}, {CKA_LABEL, "archive-2025", 12}};
    aes = ti_find_one(&c, byl, 2);
    ck_assert(ti_bool(&c, aes, CKA_TOKEN));
    CK_ATTRIBUTE imp[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, "imported", 8}};
    h = ti_find_one(&c, imp, 2);
    tt_sign_and_verify(c.f, c.s, h, ossl);
    /* Its private scalar is not on disk in the clear. */
    ck_assert(!files_contain(&c, scalar, sizeof(scalar)));
    /* Nor is a secret key's value when the key is not CKA_PRIVATE. */
    CK_KEY_TYPE aes_type = CKK_AES;
    CK_BBOOL on = CK_TRUE, off = CK_FALSE;
    uint8_t value[32];
    for (size_t i = 0; i < sizeof(value); i++)
        value[i] = (uint8_t)(0xA5 ^ (i * 7));
    CK_ATTRIBUTE plain_key[] = {{CKA_CLASS, &sk, sizeof(sk)},
                                {CKA_KEY_TYPE, &aes_type, sizeof(aes_type)},
                                {CKA_TOKEN, &on, sizeof(on)},
                                {CKA_PRIVATE, &off, sizeof(off)},
                                {CKA_VALUE, value, sizeof(value)}};
    CK_OBJECT_HANDLE plain;
    TT_OK(c.f->C_CreateObject(c.s, plain_key, 5, &plain));
    ck_assert(!files_contain(&c, value, sizeof(value)));
    TT_OK(c.f->C_DestroyObject(c.s, plain));

    /* Destroyed: gone after a restart too. */
    TT_OK(c.f->C_DestroyObject(c.s, aes));
    TT_OK(c.f->C_DestroyObject(c.s, h));
    ti_restart(&c);
    ck_assert_uint_eq(count_objects(&c, CKO_SECRET_KEY), 0);
    ck_assert_uint_eq(count_objects(&c, CKO_PRIVATE_KEY), 0);
    EVP_PKEY_free(as_stored);
    EVP_PKEY_free(ossl);
    ti_finish(&c);
}
END_TEST

START_TEST(t_access_rules)
{
    ti_ctx c;
    ti_start(&c);
    CK_SESSION_HANDLE ro;
    TT_OK(c.f->C_OpenSession(c.slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE tok[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, (void *)&ti_yes, 1}};
    CK_OBJECT_HANDLE h;
    TT_RV(c.f->C_CreateObject(ro, tok, 2, &h), CKR_SESSION_READ_ONLY);
    TT_OK(c.f->C_Logout(c.s));
    /* Logged out: no token objects, no private objects; public session objects are fine. */
    TT_RV(c.f->C_CreateObject(c.s, tok, 2, &h), CKR_USER_NOT_LOGGED_IN);
    CK_OBJECT_HANDLE pub, priv;
    CK_MECHANISM m = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pt[] = {{CKA_EC_PARAMS, (void *)ti_p256_oid, sizeof(ti_p256_oid)}};
    TT_RV(c.f->C_GenerateKeyPair(c.s, &m, pt, 1, NULL, 0, &pub, &priv), CKR_USER_NOT_LOGGED_IN);
    CK_ATTRIBUTE ses[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_TOKEN, (void *)&ti_no, 1}};
    TT_OK(c.f->C_CreateObject(c.s, ses, 2, &h));
    /* Unsupported curves and sizes. */
    TT_OK(c.f->C_Login(c.s, CKU_USER, TI_U(TI_USER_PIN), strlen(TI_USER_PIN)));
    static const unsigned char p521[] = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23};
    CK_ATTRIBUTE bad_curve[] = {{CKA_EC_PARAMS, (void *)p521, sizeof(p521)}};
    TT_RV(c.f->C_GenerateKeyPair(c.s, &m, bad_curve, 1, NULL, 0, &pub, &priv),
          CKR_CURVE_NOT_SUPPORTED);
    CK_MECHANISM rm = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG bits = 1024;
    CK_ATTRIBUTE small[] = {{CKA_MODULUS_BITS, &bits, sizeof(bits)}};
    TT_RV(c.f->C_GenerateKeyPair(c.s, &rm, small, 1, NULL, 0, &pub, &priv), CKR_KEY_SIZE_RANGE);
    TT_OK(c.f->C_CloseSession(ro));
    ti_finish(&c);
}
END_TEST

/* Flip one bit in the middle of a file of the issuer token. */
static void damage_file(const ti_ctx *c, const char *name)
{
    char path[800];
    snprintf(path, sizeof(path), "%s/issuer-token/%s", c->env.state, name);
    FILE *f = fopen(path, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_gt(size, 20);
    ck_assert_int_eq(fseek(f, size / 2, SEEK_SET), 0);
    int byte = fgetc(f);
    ck_assert_int_eq(fseek(f, size / 2, SEEK_SET), 0);
    fputc(byte ^ 0x20, f);
    fclose(f);
}

START_TEST(t_damaged_files)
{
    ti_ctx c;
    ti_start(&c);
    /* A private data object: its file is sealed; one flipped byte and it no longer opens. */
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_OBJECT_HANDLE h;
    CK_ATTRIBUTE data[] = {{CKA_CLASS, &cls, sizeof(cls)},
                           {CKA_TOKEN, (void *)&ti_yes, 1},
                           {CKA_PRIVATE, (void *)&ti_yes, 1},
                           {CKA_VALUE, "sealed note", 11}};
    TT_OK(c.f->C_CreateObject(c.s, data, 4, &h));
    char name[300];
    ck_assert_int_eq(object_files(&c, name), 1);
    damage_file(&c, name);
    ti_restart(&c);
    ck_assert_uint_eq(count_objects(&c, CKO_DATA), 0); /* skipped, not trusted */
    /* New objects still work beside it. */
    TT_OK(c.f->C_CreateObject(c.s, data, 4, &h));
    ck_assert_uint_eq(count_objects(&c, CKO_DATA), 1);
    /* A damaged token file: the module starts, without the slot. */
    TT_OK(c.f->C_Finalize(NULL));
    char path[400];
    snprintf(path, sizeof(path), "%s/issuer-token/token", c.env.state);
    ck_assert_int_eq(truncate(path, 7), 0);
    TT_OK(c.f->C_Initialize(NULL));
    CK_ULONG n = 9;
    TT_OK(c.f->C_GetSlotList(CK_TRUE, NULL, &n));
    ck_assert_uint_eq(n, 0);
    ti_finish(&c);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("token-issuer");
    TCase *tc = tcase_create("issuer");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, t_one_slot_no_card);
    tcase_add_test(tc, t_pins);
    tcase_add_test(tc, t_key_pairs_persist);
    tcase_add_test(tc, t_sign_decrypt_derive);
    tcase_add_test(tc, t_archival_wrap);
    tcase_add_test(tc, t_created_objects);
    tcase_add_test(tc, t_access_rules);
    tcase_add_test(tc, t_damaged_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tl_run_suite(suite());
}
