/*
 * card_device.c - the card as a state directory: create one (master key,
 * database, attestation key, device certificate under a manufacturer CA),
 * open it into an sks_card, close it, and the card's clock.
 *
 *   <dir>/master.key               32 random bytes, 0600: seals card.db's secrets
 *   <dir>/card.db                  the credential database (card_store.h), 0600
 *   <dir>/manufacturer/ca-key.pem  development manufacturer CA (only when no CA
 *   <dir>/manufacturer/ca-cert.pem is given at initialisation)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../protocol/sks_keys.h"
#include "card_internal.h"
#include "card_keymat.h"
#include "card_seal.h"

#define MASTER_KEY_FILE    "master.key"
#define DB_FILE            "card.db"
#define DB_JOURNAL_FILE    "card.db-journal"
#define MANUFACTURER_DIR   "manufacturer"
#define CA_KEY_FILE        "ca-key.pem"
#define CA_CERT_FILE       "ca-cert.pem"
#define SERIAL_BYTES       8 /* printed as 16 uppercase hex digits */
#define DEVICE_CERT_DAYS   3650
#define DEV_CA_DAYS        7300
#define DEV_CA_NAME        "SKS Development Manufacturer CA"
#define DEVICE_NAME_PREFIX "SKS Device "

/* Metadata names (card_store meta table). */
#define META_SERIAL           "serial"
#define META_DEVICE_CERT_PATH "device_cert_path"
#define META_ATTESTATION_KEY  "attestation_key"
#define META_MAX_KEYS         "max_keys"
#define META_API_LEVEL        "api_level"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Write a readable message into the caller's error buffer (if any). */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* "<dir>/<name>" in a new allocation, or NULL. */
static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- Clock ------------------------------------------------------------ */

uint64_t card_now(const sks_card *card)
{
    if (card->now != NULL)
        return card->now(card->now_ctx);
    return (uint64_t)time(NULL);
}

void sks_card_set_clock(sks_card *card, uint64_t (*now)(void *ctx), void *ctx)
{
    card->now = now;
    card->now_ctx = ctx;
}

/* ---- Files ------------------------------------------------------------ */

/* mkdir -p with `mode` for the directories it creates. 0, or -1 with errno. */
static int mkdir_p(const char *path, mode_t mode)
{
    char *copy = strdup(path);
    struct stat sb;
    int rc = 0;

    if (copy == NULL)
        return -1;
    for (char *p = copy + 1; rc == 0; p++) {
        char saved = *p;

        if (saved != '/' && saved != '\0')
            continue;
        *p = '\0';
        if (mkdir(copy, mode) != 0 && errno != EEXIST)
            rc = -1;
        else if (stat(copy, &sb) != 0)
            rc = -1;
        else if (!S_ISDIR(sb.st_mode)) {
            errno = ENOTDIR;
            rc = -1;
        }
        *p = saved;
        if (saved == '\0')
            break;
    }
    free(copy);
    return rc;
}

/* Make a directory's entries durable (after creating files in it). */
static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/*
 * Create a new file (never replacing one) with exactly `mode`, write `data`
 * and fsync it. On failure the file is removed and err says why.
 */
static int write_new_file(const char *path, const void *data, size_t n, mode_t mode, char *err,
                          size_t errlen)
{
    const uint8_t *p = data;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);

    if (fd < 0) {
        set_err(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    if (fchmod(fd, mode) != 0)
        goto fail;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        p += w;
        n -= (size_t)w;
    }
    if (fsync(fd) != 0)
        goto fail;
    if (close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    return 0;
fail:
    set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(path);
    return -1;
}

/*
 * Read the 32-byte master key. The file must be a regular file that only its
 * owner can access: a group- or world-readable master key opens every secret
 * of the card.
 */
static int read_master_key(const char *dir, uint8_t key[CARD_MASTER_KEY_LEN], char *err,
                           size_t errlen)
{
    char *path = path_join(dir, MASTER_KEY_FILE);
    uint8_t extra;
    struct stat sb;
    ssize_t got;
    int fd = -1, rc = -1;

    if (path == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            set_err(err, errlen, "no card in %s: %s is missing (create one with sks-tool --init)",
                    dir, path);
        else
            set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        set_err(err, errlen, "%s is not a regular file", path);
        goto out;
    }
    if ((sb.st_mode & 077) != 0) {
        set_err(err, errlen,
                "%s is accessible by group or others (mode %04o); refusing to use it "
                "(run: chmod 600 %s)",
                path, (unsigned)(sb.st_mode & 07777), path);
        goto out;
    }
    do
        got = read(fd, key, CARD_MASTER_KEY_LEN);
    while (got < 0 && errno == EINTR);
    if (got != CARD_MASTER_KEY_LEN || read(fd, &extra, 1) != 0) {
        set_err(err, errlen, "%s is damaged: it must hold exactly %d bytes", path,
                CARD_MASTER_KEY_LEN);
        OPENSSL_cleanse(key, CARD_MASTER_KEY_LEN);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

/* ---- Keys and certificates -------------------------------------------- */

static EVP_PKEY *generate_key(uint8_t alg)
{
    if (alg == SKS_KEYALG_RSA2048)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* A positive, non-zero certificate serial number from random bytes. */
static ASN1_INTEGER *serial_from_bytes(const uint8_t *p, size_t n)
{
    BIGNUM *bn = BN_bin2bn(p, (int)n, NULL);
    ASN1_INTEGER *serial = NULL;

    if (bn != NULL && !BN_is_zero(bn))
        serial = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    return serial;
}

static int add_ext(X509 *cert, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(cert, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* The digest for signing with `key` (NULL for keys with a built-in one, e.g. Ed25519). */
static const EVP_MD *sign_digest(EVP_PKEY *key)
{
    int nid = NID_undef;

    if (EVP_PKEY_get_default_digest_nid(key, &nid) == 2 && nid == NID_undef)
        return NULL;
    return EVP_sha256();
}

/*
 * Issue an X.509 v3 certificate for `subject_key` named `subject`, signed by
 * `sign_key` as `issuer` (NULL: self-signed). `ca` selects the CA profile
 * (CA:TRUE, keyCertSign) or the device profile (CA:FALSE, digitalSignature).
 */
static X509 *issue_cert(X509_NAME *subject, ASN1_INTEGER *serial, long days, EVP_PKEY *subject_key,
                        EVP_PKEY *sign_key, X509 *issuer, int ca)
{
    X509 *cert = X509_new();
    X509V3_CTX ctx;
    int ok = 0;

    if (cert == NULL)
        return NULL;
    if (X509_set_version(cert, X509_VERSION_3) != 1 || X509_set_serialNumber(cert, serial) != 1 ||
        X509_set_subject_name(cert, subject) != 1 ||
        X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : subject) != 1 ||
        X509_gmtime_adj(X509_getm_notBefore(cert), 0) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(cert), (int)days, 0, NULL) == NULL ||
        X509_set_pubkey(cert, subject_key) != 1)
        goto out;
    X509V3_set_ctx(&ctx, issuer ? issuer : cert, cert, NULL, NULL, 0);
    if (add_ext(cert, &ctx, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
        add_ext(cert, &ctx, NID_key_usage,
                ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
        add_ext(cert, &ctx, NID_subject_key_identifier, "hash") ||
        add_ext(cert, &ctx, NID_authority_key_identifier, "keyid:always"))
        goto out;
    if (X509_sign(cert, sign_key, sign_digest(sign_key)) <= 0)
        goto out;
    ok = 1;
out:
    if (!ok) {
        X509_free(cert);
        cert = NULL;
    }
    return cert;
}

/* A name with a CN (and a serialNumber attribute when `serial` is not NULL). */
static X509_NAME *make_name(const char *cn, const char *serial)
{
    X509_NAME *name = X509_NAME_new();

    if (name == NULL ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        (serial != NULL &&
         X509_NAME_add_entry_by_txt(name, "serialNumber", MBSTRING_ASC,
                                    (const unsigned char *)serial, -1, -1, 0) != 1)) {
        X509_NAME_free(name);
        return NULL;
    }
    return name;
}

/* Encrypted PEM keys are not supported: never prompt on a terminal. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

/* Load the manufacturer CA given at initialisation. */
static int load_ca(const char *key_file, const char *cert_file, EVP_PKEY **key, X509 **cert,
                   char *err, size_t errlen)
{
    BIO *bio = BIO_new_file(key_file, "r");

    *key = NULL;
    *cert = NULL;
    if (bio == NULL) {
        set_err(err, errlen, "cannot open the CA key %s: %s", key_file, strerror(errno));
        return -1;
    }
    *key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (*key == NULL) {
        set_err(err, errlen, "%s holds no usable private key (unencrypted PEM expected)", key_file);
        return -1;
    }
    bio = BIO_new_file(cert_file, "r");
    if (bio == NULL) {
        set_err(err, errlen, "cannot open the CA certificate %s: %s", cert_file, strerror(errno));
        return -1;
    }
    *cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    BIO_free(bio);
    if (*cert == NULL) {
        set_err(err, errlen, "%s holds no PEM certificate", cert_file);
        return -1;
    }
    if (X509_check_ca(*cert) < 1) {
        set_err(err, errlen, "%s is not a CA certificate", cert_file);
        return -1;
    }
    if (X509_check_private_key(*cert, *key) != 1) {
        set_err(err, errlen, "the CA key %s does not belong to the certificate %s", key_file,
                cert_file);
        return -1;
    }
    return 0;
}

/* Create the development manufacturer CA in memory. */
static int make_dev_ca(EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
    uint8_t rnd[16];
    ASN1_INTEGER *serial = NULL;
    X509_NAME *name = make_name(DEV_CA_NAME, NULL);

    *cert = NULL;
    *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (RAND_bytes(rnd, sizeof rnd) == 1)
        serial = serial_from_bytes(rnd, sizeof rnd);
    if (*key != NULL && name != NULL && serial != NULL)
        *cert = issue_cert(name, serial, DEV_CA_DAYS, *key, *key, NULL, 1);
    ASN1_INTEGER_free(serial);
    X509_NAME_free(name);
    if (*cert == NULL) {
        set_err(err, errlen, "cannot create the development manufacturer CA");
        return -1;
    }
    return 0;
}

/* PEM text of a private key or a certificate, in a memory BIO. */
static int pem_of(EVP_PKEY *key, X509 *cert, BUF_MEM **out, BIO **bio)
{
    *bio = BIO_new(BIO_s_mem());
    if (*bio == NULL)
        return -1;
    if (key != NULL && PEM_write_bio_PrivateKey(*bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        return -1;
    if (cert != NULL && PEM_write_bio_X509(*bio, cert) != 1)
        return -1;
    return BIO_get_mem_ptr(*bio, out) == 1 ? 0 : -1;
}

/* Write the development CA: key 0600, certificate 0644. */
static int save_dev_ca(const char *dir, EVP_PKEY *key, X509 *cert, char *err, size_t errlen)
{
    char *mdir = path_join(dir, MANUFACTURER_DIR);
    char *key_path = mdir ? path_join(mdir, CA_KEY_FILE) : NULL;
    char *cert_path = mdir ? path_join(mdir, CA_CERT_FILE) : NULL;
    BUF_MEM *mem = NULL;
    BIO *bio = NULL;
    int rc = -1;

    if (key_path == NULL || cert_path == NULL) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    if (mkdir(mdir, 0700) != 0 && errno != EEXIST) {
        set_err(err, errlen, "cannot create %s: %s", mdir, strerror(errno));
        goto out;
    }
    if (pem_of(key, NULL, &mem, &bio) != 0) {
        set_err(err, errlen, "cannot encode the development CA key");
        goto out;
    }
    if (write_new_file(key_path, mem->data, mem->length, 0600, err, errlen) != 0)
        goto out;
    OPENSSL_cleanse(mem->data, mem->length);
    BIO_free(bio);
    if (pem_of(NULL, cert, &mem, &bio) != 0) {
        set_err(err, errlen, "cannot encode the development CA certificate");
        unlink(key_path);
        goto out;
    }
    if (write_new_file(cert_path, mem->data, mem->length, 0644, err, errlen) != 0) {
        unlink(key_path);
        goto out;
    }
    fsync_dir(mdir);
    rc = 0;
out:
    if (bio != NULL && mem != NULL)
        OPENSSL_cleanse(mem->data, mem->length);
    BIO_free(bio);
    free(key_path);
    free(cert_path);
    free(mdir);
    return rc;
}

/* Remove what a failed initialisation created (the development CA if made). */
static void remove_dev_ca(const char *dir)
{
    char *mdir = path_join(dir, MANUFACTURER_DIR);
    char *key_path = mdir ? path_join(mdir, CA_KEY_FILE) : NULL;
    char *cert_path = mdir ? path_join(mdir, CA_CERT_FILE) : NULL;

    if (key_path != NULL)
        unlink(key_path);
    if (cert_path != NULL)
        unlink(cert_path);
    if (mdir != NULL)
        rmdir(mdir); /* only if empty */
    free(key_path);
    free(cert_path);
    free(mdir);
}

/* DER of a certificate into a writer as an SKS byte[]. */
static void put_cert(sks_writer *w, X509 *cert)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);

    if (n <= 0 || (size_t)n > SKS_WIRE_BYTES_MAX)
        w->failed = 1;
    else
        sks_put_bytes(w, der, (size_t)n);
    OPENSSL_free(der);
}

/* Everything initialisation produces before it touches the disk. */
typedef struct {
    EVP_PKEY *ca_key;
    X509 *ca_cert;
    int dev_ca; /* the CA was made here and must be saved */
    EVP_PKEY *attestation_key;
    X509 *device_cert;
    char serial[2 * SERIAL_BYTES + 1];
} card_birth;

static void card_birth_free(card_birth *b)
{
    EVP_PKEY_free(b->ca_key);
    X509_free(b->ca_cert);
    EVP_PKEY_free(b->attestation_key);
    X509_free(b->device_cert);
}

/* Generate the device identity: serial, attestation key, device certificate. */
static int make_identity(card_birth *b, uint8_t alg, char *err, size_t errlen)
{
    uint8_t rnd[SERIAL_BYTES];
    char cn[sizeof DEVICE_NAME_PREFIX + sizeof b->serial];
    ASN1_INTEGER *serial = NULL;
    X509_NAME *name = NULL;

    /* The serial is also the certificate's serial number, so never zero. */
    do {
        if (RAND_bytes(rnd, sizeof rnd) != 1) {
            set_err(err, errlen, "the random generator failed");
            return -1;
        }
        ASN1_INTEGER_free(serial);
        serial = serial_from_bytes(rnd, sizeof rnd);
    } while (serial == NULL);
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(b->serial + 2 * i, 3, "%02X", rnd[i]);
    snprintf(cn, sizeof cn, "%s%s", DEVICE_NAME_PREFIX, b->serial);

    b->attestation_key = generate_key(alg);
    name = make_name(cn, b->serial);
    if (b->attestation_key != NULL && name != NULL)
        b->device_cert = issue_cert(name, serial, DEVICE_CERT_DAYS, b->attestation_key, b->ca_key,
                                    b->ca_cert, 0);
    ASN1_INTEGER_free(serial);
    X509_NAME_free(name);
    if (b->device_cert == NULL) {
        set_err(err, errlen, "cannot create the attestation key and device certificate");
        return -1;
    }
    return 0;
}

/* Write the identity into a new database, all in one transaction. */
static int store_identity(card_store *st, const card_birth *b, uint32_t max_keys)
{
    sks_writer path;
    uint8_t *p8 = NULL;
    size_t p8len = 0;
    uint8_t max_enc[4], api_enc[2];
    int rc = -1;

    sks_writer_init(&path);
    sks_put_byte(&path, 2);
    put_cert(&path, b->device_cert);
    put_cert(&path, b->ca_cert);
    sks_be32_put(max_enc, max_keys);
    sks_be16_put(api_enc, SKS_API_LEVEL);
    if (path.failed || sks_pkcs8_encode(b->attestation_key, &p8, &p8len) != 0)
        goto out;
    if (card_store_begin(st) != SKS_OK)
        goto out;
    if (card_store_meta_put(st, META_SERIAL, b->serial, strlen(b->serial), 0) != SKS_OK ||
        card_store_meta_put(st, META_DEVICE_CERT_PATH, path.buf, path.len, 0) != SKS_OK ||
        card_store_meta_put(st, META_ATTESTATION_KEY, p8, p8len, 1) != SKS_OK ||
        card_store_meta_put(st, META_MAX_KEYS, max_enc, sizeof max_enc, 0) != SKS_OK ||
        card_store_meta_put(st, META_API_LEVEL, api_enc, sizeof api_enc, 0) != SKS_OK) {
        card_store_rollback(st);
        goto out;
    }
    rc = card_store_commit(st);
out:
    if (p8 != NULL)
        OPENSSL_clear_free(p8, p8len);
    sks_writer_free(&path);
    return rc;
}

/* ---- Initialisation --------------------------------------------------- */

/* Create master.key, the CA files (if ours) and card.db; undo all on failure. */
static int write_card(const char *dir, const card_birth *b, uint32_t max_keys, char *err,
                      size_t errlen)
{
    char *key_path = path_join(dir, MASTER_KEY_FILE);
    char *db_path = path_join(dir, DB_FILE);
    char *journal_path = path_join(dir, DB_JOURNAL_FILE);
    uint8_t mk[CARD_MASTER_KEY_LEN];
    card_store *st = NULL;
    int key_made = 0, ca_made = 0, db_made = 0, rc = -1, fd;

    if (key_path == NULL || db_path == NULL || journal_path == NULL) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    if (RAND_priv_bytes(mk, sizeof mk) != 1) {
        set_err(err, errlen, "the random generator failed");
        goto out;
    }
    if (write_new_file(key_path, mk, sizeof mk, 0600, err, errlen) != 0)
        goto out;
    key_made = 1;
    if (b->dev_ca) {
        if (save_dev_ca(dir, b->ca_key, b->ca_cert, err, errlen) != 0)
            goto out;
        ca_made = 1;
    }
    /* Create card.db ourselves so that it is 0600 (SQLite's journal inherits it). */
    fd = open(db_path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        set_err(err, errlen, "cannot create %s: %s", db_path, strerror(errno));
        goto out;
    }
    close(fd);
    db_made = 1;
    if (card_store_open(&st, db_path, mk) != SKS_OK) {
        set_err(err, errlen, "cannot create the card database %s", db_path);
        goto out;
    }
    if (store_identity(st, b, max_keys) != 0) {
        set_err(err, errlen, "cannot write the card identity into %s", db_path);
        goto out;
    }
    fsync_dir(dir);
    rc = 0;
out:
    card_store_close(st);
    OPENSSL_cleanse(mk, sizeof mk);
    if (rc != 0) {
        if (db_made) {
            unlink(db_path);
            unlink(journal_path);
        }
        if (ca_made)
            remove_dev_ca(dir);
        if (key_made)
            unlink(key_path);
    }
    free(key_path);
    free(db_path);
    free(journal_path);
    return rc;
}

int sks_card_init_state(const char *dir, const sks_card_init_opts *opts, char *err, size_t errlen)
{
    sks_card_init_opts defaults = {0};
    card_birth b = {0};
    struct stat sb;
    char *db_path = NULL;
    uint8_t alg;
    int rc = -1;

    if (opts == NULL)
        opts = &defaults;
    alg = opts->attestation_alg ? opts->attestation_alg : SKS_KEYALG_EC_P256;
    if (alg != SKS_KEYALG_EC_P256 && alg != SKS_KEYALG_RSA2048) {
        set_err(err, errlen, "unsupported attestation key algorithm 0x%02x (EC P-256 or RSA-2048)",
                alg);
        return -1;
    }
    if ((opts->ca_key_file == NULL) != (opts->ca_cert_file == NULL)) {
        set_err(err, errlen, "a manufacturer CA needs both its key and its certificate");
        return -1;
    }
    if (dir == NULL || *dir == '\0') {
        set_err(err, errlen, "no state directory given");
        return -1;
    }
    if (mkdir_p(dir, 0700) != 0) {
        set_err(err, errlen, "cannot create the state directory %s: %s", dir, strerror(errno));
        return -1;
    }
    db_path = path_join(dir, DB_FILE);
    if (db_path == NULL) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    if (lstat(db_path, &sb) == 0 || errno != ENOENT) {
        set_err(err, errlen, "%s already holds a card (%s exists); refusing to overwrite it", dir,
                db_path);
        goto out;
    }
    if (opts->ca_key_file != NULL) {
        if (load_ca(opts->ca_key_file, opts->ca_cert_file, &b.ca_key, &b.ca_cert, err, errlen))
            goto out;
    } else {
        if (make_dev_ca(&b.ca_key, &b.ca_cert, err, errlen) != 0)
            goto out;
        b.dev_ca = 1;
    }
    if (make_identity(&b, alg, err, errlen) != 0)
        goto out;
    rc = write_card(dir, &b, opts->max_keys ? opts->max_keys : CARD_DEFAULT_MAX_KEYS, err, errlen);
out:
    card_birth_free(&b);
    free(db_path);
    return rc;
}

/* ---- Open and close --------------------------------------------------- */

/* Parse the sealed PKCS#8 attestation key. */
static EVP_PKEY *load_pkcs8(const card_buf *der)
{
    return der->len <= CARD_SEAL_MAX ? card_keymat_load(der->ptr, der->len) : NULL;
}

/* Load the identity from the database's metadata into the card. */
static int load_identity(sks_card *card, const char *db_path, char *err, size_t errlen)
{
    card_buf b = {NULL, 0};
    int rc;

    if (card_store_meta_get(card->store, META_SERIAL, &card->serial, 0) != 0 ||
        card_store_meta_get(card->store, META_DEVICE_CERT_PATH, &card->device_cert_path, 0) != 0 ||
        card_store_meta_get(card->store, META_MAX_KEYS, &b, 0) != 0 || b.len != 4) {
        set_err(err, errlen, "%s is incomplete or damaged (card identity missing)", db_path);
        card_buf_free(&b);
        return -1;
    }
    card->max_keys = sks_be32_get(b.ptr);
    card_buf_free(&b);
    rc = card_store_meta_get(card->store, META_ATTESTATION_KEY, &b, 1);
    if (rc == SKS_ERR_INTERNAL) {
        set_err(err, errlen,
                "cannot unseal the attestation key: master.key does not belong to %s, "
                "or the database was altered",
                db_path);
        return -1;
    }
    if (rc != 0) {
        set_err(err, errlen, "%s is incomplete or damaged (attestation key missing)", db_path);
        return -1;
    }
    card->attestation_key = load_pkcs8(&b);
    card_buf_free(&b);
    if (card->attestation_key == NULL) {
        set_err(err, errlen, "the attestation key in %s is damaged", db_path);
        return -1;
    }
    return 0;
}

sks_card *sks_card_open(const char *dir, char *err, size_t errlen)
{
    sks_card *card = calloc(1, sizeof *card);
    char *db_path = NULL;
    struct stat sb;
    int ok = 0;

    if (card == NULL || dir == NULL) {
        set_err(err, errlen, card ? "no state directory given" : "out of memory");
        free(card);
        return NULL;
    }
    sks_writer_init(&card->chain);
    sks_writer_init(&card->pending);
    card->puk_delay_ms = CARD_PUK_DELAY_MS;
    card->dir = strdup(dir);
    db_path = path_join(dir, DB_FILE);
    if (card->dir == NULL || db_path == NULL) {
        set_err(err, errlen, "out of memory");
        goto out;
    }
    if (read_master_key(dir, card->master_key, err, errlen) != 0)
        goto out;
    /* Never let SQLite create an empty database in place of a missing card. */
    if (stat(db_path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        set_err(err, errlen, "no card in %s: %s is missing", dir, db_path);
        goto out;
    }
    if (card_store_open(&card->store, db_path, card->master_key) != SKS_OK) {
        set_err(err, errlen, "cannot open the card database %s", db_path);
        goto out;
    }
    if (load_identity(card, db_path, err, errlen) != 0)
        goto out;
    ok = 1;
out:
    free(db_path);
    if (!ok) {
        sks_card_close(card);
        return NULL;
    }
    return card;
}

void sks_card_close(sks_card *card)
{
    if (card == NULL)
        return;
    card_keyuse_cache_free(card);
    card_session_keys_free(card);
    card_store_close(card->store);
    EVP_PKEY_free(card->attestation_key);
    card_buf_free(&card->device_cert_path);
    card_buf_free(&card->serial);
    sks_writer_free(&card->chain);
    sks_writer_free(&card->pending);
    free(card->dir);
    OPENSSL_cleanse(card, sizeof *card);
    free(card);
}
