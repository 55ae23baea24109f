/*
 * sks_tool.c - sks-tool, the administrator's command line for an SKS card
 * kept in a state directory: create a card, show what it is and list the
 * keys it holds, and - with the verbs of sc-hsm-tool - set up its DKEK from
 * shares and back keys up and restore them (tool_dkek*.c, docs/dkek.md).
 *
 * Apart from creating a card, sks-tool asks the card through its own methods
 * (getDeviceInfo, enumerateKeys, getKeyAttributes), encoded and decoded
 * exactly as a middleware would, so what it prints is what clients see.
 */
#include "config.h"

#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "card/sks_card.h"
#include "protocol/sks_msg.h"
#include "protocol/sks_proto.h"
#include "tools/tool_card.h"
#include "tools/tool_common.h"
#include "tools/tool_dkek.h"
#include "tools/tool_paths.h"

#define prog tool_prog

enum action {
    ACT_NONE,
    ACT_INIT,
    ACT_INFO,
    ACT_LIST_KEYS,
    ACT_INITIALIZE,
    ACT_DKEK_STATUS,
    ACT_CREATE_SHARE,
    ACT_IMPORT_SHARE,
    ACT_WRAP,
    ACT_UNWRAP,
};

enum long_only {
    OPT_INIT = 256,
    OPT_INFO,
    OPT_LIST_KEYS,
    OPT_ATTESTATION_ALG,
    OPT_CA_KEY,
    OPT_CA_CERT,
    OPT_MAX_KEYS,
    OPT_DKEK_STATUS,
    OPT_PWD_THRESHOLD,
    OPT_PWD_TOTAL,
    OPT_PASSWORD_FD,
    OPT_ID,
    OPT_PIN,
    OPT_TOKEN,
};

static const struct option long_options[] = {
    {"state-dir", required_argument, NULL, 'd'},
    {"init", no_argument, NULL, OPT_INIT},
    {"info", no_argument, NULL, OPT_INFO},
    {"list-keys", no_argument, NULL, OPT_LIST_KEYS},
    {"attestation-alg", required_argument, NULL, OPT_ATTESTATION_ALG},
    {"ca-key", required_argument, NULL, OPT_CA_KEY},
    {"ca-cert", required_argument, NULL, OPT_CA_CERT},
    {"max-keys", required_argument, NULL, OPT_MAX_KEYS},
    {"initialize", no_argument, NULL, 'X'},
    {"dkek-shares", required_argument, NULL, 's'},
    {"dkek-status", no_argument, NULL, OPT_DKEK_STATUS},
    {"create-dkek-share", required_argument, NULL, 'C'},
    {"import-dkek-share", required_argument, NULL, 'I'},
    {"pwd-shares-threshold", required_argument, NULL, OPT_PWD_THRESHOLD},
    {"pwd-shares-total", required_argument, NULL, OPT_PWD_TOTAL},
    {"password-fd", required_argument, NULL, OPT_PASSWORD_FD},
    {"wrap-key", required_argument, NULL, 'W'},
    {"unwrap-key", required_argument, NULL, 'U'},
    {"key-reference", required_argument, NULL, 'i'},
    {"id", required_argument, NULL, OPT_ID},
    {"pin", required_argument, NULL, OPT_PIN},
    {"token", required_argument, NULL, OPT_TOKEN},
    {"force", no_argument, NULL, 'f'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s [--state-dir DIR] [ACTION] [OPTIONS]\n"
            "Administer an SKS card kept in a state directory. Without an action: --info\n"
            "and the DKEK status.\n"
            "\n"
            "Actions:\n"
            "      --init               create a new card in the state directory\n"
            "      --info               show the card's serial, API level, key count and\n"
            "                           device certificate\n"
            "      --list-keys          list the card's usable keys and their attributes\n"
            "  -X, --initialize         set up the card's DKEK anew (with --dkek-shares)\n"
            "      --dkek-status        DKEK shares, shares outstanding, key check value\n"
            "  -C, --create-dkek-share FILE\n"
            "                           a random DKEK share in FILE, encrypted under a\n"
            "                           password (no card needed)\n"
            "  -I, --import-dkek-share FILE\n"
            "                           decrypt a share file (also SmartCard-HSM ones) and\n"
            "                           give the share to the card\n"
            "  -W, --wrap-key FILE      back a key up into FILE (--key-reference or --id)\n"
            "  -U, --unwrap-key FILE    restore a key from FILE\n"
            "  -h, --help               show this help and exit\n"
            "  -V, --version            show the version and exit\n"
            "\n"
            "Options:\n"
            "%s"
            "      --attestation-alg ec|rsa\n"
            "                           with --init: device attestation key, EC P-256\n"
            "                           (default) or RSA-2048\n"
            "      --ca-key FILE        with --init: PEM private key of the manufacturer CA\n"
            "      --ca-cert FILE       with --init: PEM certificate of the manufacturer CA;\n"
            "                           without both, a development CA is created in\n"
            "                           DIR/manufacturer/\n"
            "      --max-keys N         with --init: most keys the card holds (default 100000)\n"
            "  -s, --dkek-shares N      with --init or --initialize: DKEK shares to expect\n"
            "                           (0: the card makes a DKEK of its own)\n"
            "      --pwd-shares-threshold N, --pwd-shares-total M\n"
            "                           with --create-dkek-share: a random password split\n"
            "                           among M custodians, any N of whom open the file;\n"
            "                           with --import-dkek-share: ask for password shares\n"
            "      --password-fd N      read passwords and password shares from descriptor\n"
            "                           N, one per line, instead of the terminal\n"
            "  -i, --key-reference H    the key's handle on the card (see --list-keys)\n"
            "      --id HEX             the key's ID in hex\n"
            "      --pin PIN            the PIN of the key's token (else asked)\n"
            "      --token LABEL        with --unwrap-key: the token (PIN policy ID) the key\n"
            "                           goes to (default: the one it came from); '' for\n"
            "                           none, only for a key that had no PIN\n"
            "  -f, --force              replace an existing file, or a key with the same ID\n"
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            prog, TOOL_STATE_DIR_HELP);
}

static int usage_error(const char *msg, const char *arg)
{
    return tool_usage_error(prog, msg, arg);
}

/* ---- Printing card data safely ---------------------------------------- */

static const char *alg_name(uint8_t alg)
{
    switch (alg) {
    case SKS_KEYALG_RSA2048:
        return "RSA-2048";
    case SKS_KEYALG_RSA3072:
        return "RSA-3072";
    case SKS_KEYALG_RSA4096:
        return "RSA-4096";
    case SKS_KEYALG_EC_P256:
        return "EC P-256";
    case SKS_KEYALG_EC_P384:
        return "EC P-384";
    default:
        return NULL;
    }
}

static void print_alg(uint8_t alg)
{
    const char *name = alg_name(alg);

    if (name != NULL)
        printf("%s", name);
    else
        printf("unknown (0x%02x)", alg);
}

/* Print the names of the bits set in `bits`, comma separated; `none` if no bit is. */
static void print_bits(uint8_t bits, const char *const names[8], const char *none)
{
    int first = 1;

    for (int i = 0; i < 8; i++) {
        if (!(bits & (1u << i)))
            continue;
        printf("%s", first ? "" : ", ");
        if (names[i] != NULL)
            printf("%s", names[i]);
        else
            printf("0x%02x", 1u << i);
        first = 0;
    }
    if (first)
        printf("%s", none);
}

static const char *const usage_names[8] = {"sign", "decrypt", "key-agreement"};
static const char *const flag_names[8] = {
    "private-key-backup", "migratable",        "updatable", "delete-protected",
    "imported",           "generated-on-card", "complete"};

/* Names in reading order, "CN=..., O=...", UTF-8 kept (print_text escapes controls). */
#define NAME_FLAGS (XN_FLAG_ONELINE & ~XN_FLAG_SPC_EQ & ~ASN1_STRFLGS_ESC_MSB)

/* A certificate's name as one line (malloc'ed), or NULL. */
static char *name_line(const X509_NAME *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *line = NULL;
    BUF_MEM *mem;

    if (bio != NULL && X509_NAME_print_ex(bio, name, 0, NAME_FLAGS) >= 0 &&
        BIO_get_mem_ptr(bio, &mem) == 1) {
        line = malloc(mem->length + 1);
        if (line != NULL) {
            memcpy(line, mem->data, mem->length);
            line[mem->length] = '\0';
        }
    }
    BIO_free(bio);
    return line;
}

static void print_name(const char *label, const X509_NAME *name)
{
    char *line = name_line(name);

    printf("%s", label);
    if (line != NULL)
        tool_print_text(stdout, (const uint8_t *)line, strlen(line));
    else
        printf("(unreadable)");
    putchar('\n');
    free(line);
}

static X509 *parse_cert(sks_view der)
{
    const unsigned char *p = der.ptr;
    X509 *cert = d2i_X509(NULL, &p, (long)der.len);

    if (cert != NULL && p != der.ptr + der.len) {
        X509_free(cert);
        cert = NULL;
    }
    return cert;
}

/* "EC P-256", "RSA-2048"... for a certificate's public key. */
static void print_key_type(EVP_PKEY *key)
{
    char group[64];

    if (key == NULL) {
        printf("(unreadable)");
    } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        printf("RSA-%d", EVP_PKEY_get_bits(key));
    } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
               EVP_PKEY_get_group_name(key, group, sizeof group, NULL) == 1) {
        const char *nist = EC_curve_nid2nist(OBJ_sn2nid(group));
        printf("EC %s", nist != NULL ? nist : group);
    } else {
        printf("%s", OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
    }
}

/* ---- Actions ---------------------------------------------------------- */

static void print_fingerprint(X509 *cert)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    printf("  SHA-256:           ");
    if (X509_digest(cert, EVP_sha256(), md, &n) != 1)
        n = 0;
    for (unsigned int i = 0; i < n; i++)
        printf("%02X%s", md[i], i + 1 < n ? ":" : "");
    printf("%s\n", n ? "" : "(unavailable)");
}

static void print_device_cert(const sks_certpath *path)
{
    X509 *cert = path->count > 0 ? parse_cert(path->cert[0]) : NULL;
    BIO *out;

    printf("Device certificate:  %u in path\n", path->count);
    if (cert == NULL) {
        printf("  (missing or unreadable)\n");
        return;
    }
    print_name("  Subject:           ", X509_get_subject_name(cert));
    print_name("  Issuer:            ", X509_get_issuer_name(cert));
    print_fingerprint(cert);
    printf("  Attestation key:   ");
    print_key_type(X509_get0_pubkey(cert));
    printf("\n  Valid until:       ");
    fflush(stdout);
    out = BIO_new_fp(stdout, BIO_NOCLOSE);
    if (out != NULL)
        ASN1_TIME_print(out, X509_get0_notAfter(cert));
    BIO_free(out);
    printf("\n");
    X509_free(cert);
}

static int do_info(const char *dir)
{
    sks_card *card = tool_open_card(dir);
    sks_resp_get_device_info info;
    sks_writer answer;
    int none = 0, rc = EXIT_FAIL;

    if (card == NULL)
        return EXIT_FAIL;
    sks_writer_init(&answer);
    memset(&info, 0, sizeof info);
    if (tool_card_rpc(card, SKS_M_GET_DEVICE_INFO, &none, &info, &answer) == 0) {
        printf("State directory:     %s\n", dir);
        printf("Serial:              ");
        tool_print_text(stdout, info.serial.ptr, info.serial.len);
        printf("\nAPI level:           %u\n", info.api_level);
        printf("Keys:                %lu used of %lu\n", (unsigned long)info.used_keys,
               (unsigned long)info.max_keys);
        printf("Key algorithms:      ");
        for (size_t i = 0; i < info.key_algorithms.len; i++) {
            printf("%s", i ? ", " : "");
            print_alg(info.key_algorithms.ptr[i]);
        }
        printf("\n");
        print_device_cert(&info.device_certificate_path);
        rc = EXIT_OK;
    }
    sks_writer_free(&answer);
    sks_card_close(card);
    return rc;
}

/* Print one key's attributes; 0, or -1 if the card refused. */
static int print_key(sks_card *card, uint32_t handle, sks_writer *answer)
{
    sks_req_key_handle req = {handle};
    sks_resp_get_key_attributes a;
    X509 *cert;

    memset(&a, 0, sizeof a);
    if (tool_card_rpc(card, SKS_M_GET_KEY_ATTRIBUTES, &req, &a, answer) != 0)
        return -1;
    printf("Key %lu\n", (unsigned long)handle);
    printf("  ID:                ");
    tool_print_id(stdout, a.id);
    printf("\n  Friendly name:     ");
    tool_print_text(stdout, a.friendly_name.ptr, a.friendly_name.len);
    printf("\n  Algorithm:         ");
    print_alg(a.algorithm);
    printf("\n  Usage:             ");
    print_bits(a.key_usage, usage_names, "none");
    printf("\n  Flags:             ");
    print_bits(a.flags, flag_names, "none");
    if (a.pin_policy_handle != SKS_HANDLE_NONE)
        printf("\n  PIN policy:        %lu\n", (unsigned long)a.pin_policy_handle);
    else
        printf("\n  PIN policy:        none\n");
    printf("  Provisioned by:    session %lu\n", (unsigned long)a.provisioning_handle);
    cert = a.certificate_path.count > 0 ? parse_cert(a.certificate_path.cert[0]) : NULL;
    if (cert != NULL)
        print_name("  Certificate:       ", X509_get_subject_name(cert));
    else if (a.certificate_path.count > 0)
        printf("  Certificate:       (unreadable)\n");
    else
        printf("  Certificate:       none\n");
    X509_free(cert);
    return 0;
}

static int do_list_keys(const char *dir)
{
    sks_card *card = tool_open_card(dir);
    sks_writer page_answer, key_answer;
    uint32_t after = 0;
    unsigned long count = 0;
    int rc = EXIT_OK, more;

    if (card == NULL)
        return EXIT_FAIL;
    sks_writer_init(&page_answer);
    sks_writer_init(&key_answer);
    do {
        sks_req_enumerate_keys req = {after};
        sks_resp_enumerate_keys page;
        size_t n;

        memset(&page, 0, sizeof page);
        if (tool_card_rpc(card, SKS_M_ENUMERATE_KEYS, &req, &page, &page_answer) != 0) {
            rc = EXIT_FAIL;
            break;
        }
        n = page.handles.len / 4;
        if (page.handles.len % 4 != 0 || (page.more && n == 0)) {
            fprintf(stderr, "%s: enumerateKeys: the card's answer is malformed\n", prog);
            rc = EXIT_FAIL;
            break;
        }
        for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
            uint32_t handle = sks_be32_get(page.handles.ptr + 4 * i);

            if (handle <= after) {
                fprintf(stderr, "%s: enumerateKeys: handles out of order\n", prog);
                rc = EXIT_FAIL;
                break;
            }
            printf("%s", count++ ? "\n" : "");
            if (print_key(card, handle, &key_answer) != 0)
                rc = EXIT_FAIL;
            after = handle;
        }
        more = page.more;
    } while (more && rc == EXIT_OK);
    if (rc == EXIT_OK && count == 0)
        printf("No keys.\n");
    else if (rc == EXIT_OK)
        printf("\n%lu key%s\n", count, count == 1 ? "" : "s");
    sks_writer_free(&page_answer);
    sks_writer_free(&key_answer);
    sks_card_close(card);
    return rc;
}

static int do_init(const char *dir, const sks_card_init_opts *opts)
{
    char err[512];

    if (sks_card_init_state(dir, opts, err, sizeof err) != 0) {
        fprintf(stderr, "%s: cannot create the card: %s\n", prog, err);
        return EXIT_FAIL;
    }
    printf("Created a new SKS card in %s\n", dir);
    printf("Attestation key:     %s\n",
           opts->attestation_alg == SKS_KEYALG_RSA2048 ? "RSA-2048" : "EC P-256");
    if (opts->ca_cert_file != NULL)
        printf("Manufacturer CA:     %s\n", opts->ca_cert_file);
    else
        printf("Manufacturer CA:     %s/manufacturer/ca-cert.pem (development CA: issuers\n"
               "                     must trust it to accept this card)\n",
               dir);
    printf("Run '%s --state-dir %s --info' to see the card.\n", prog, dir);
    return EXIT_OK;
}

/* ---- Command line ----------------------------------------------------- */

static int parse_max_keys(const char *s, uint32_t *out)
{
    char *end;
    unsigned long long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    v = strtoull(s, &end, 10);
    if (*end != '\0' || v == 0 || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* Record the action; only one per run. */
static int set_action(enum action *action, enum action a)
{
    if (*action != ACT_NONE && *action != a)
        return -1;
    *action = a;
    return 0;
}

/* A small decimal number in lo..hi; -1 otherwise. */
static long parse_small(const char *s, long lo, long hi)
{
    char *end;
    long v;
    if (s[0] < '0' || s[0] > '9')
        return -1;
    v = strtol(s, &end, 10);
    return *end == '\0' && v >= lo && v <= hi ? v : -1;
}

/* --id: 1..SKS_ID_MAX bytes in hex. */
static int parse_id(const char *hex, tool_dkek_opts *o)
{
    size_t n = strlen(hex);
    if (n == 0 || n % 2 != 0 || n / 2 > SKS_ID_MAX)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (!isxdigit((unsigned char)hex[2 * i]) || !isxdigit((unsigned char)hex[2 * i + 1]) ||
            sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        o->id[i] = (uint8_t)v;
    }
    o->id_len = n / 2;
    return 0;
}

/* The combinations of options each action takes. NULL, or what is wrong. */
static const char *check_options(enum action action, const tool_dkek_opts *o, int init_options)
{
    int pwd = o->pwd_threshold >= 0 || o->pwd_total >= 0;
    if (init_options && action != ACT_INIT)
        return "--attestation-alg, --ca-key, --ca-cert and --max-keys go with --init";
    if (o->dkek_shares >= 0 && action != ACT_INIT && action != ACT_INITIALIZE)
        return "--dkek-shares goes with --init or --initialize";
    if (action == ACT_INITIALIZE && o->dkek_shares < 0)
        return "--initialize needs --dkek-shares N";
    if (pwd && action != ACT_CREATE_SHARE && action != ACT_IMPORT_SHARE)
        return "--pwd-shares-threshold and --pwd-shares-total go with --create-dkek-share or "
               "--import-dkek-share";
    if (action == ACT_CREATE_SHARE && pwd &&
        (o->pwd_threshold < 1 || o->pwd_total < o->pwd_threshold))
        return "give --pwd-shares-threshold N and --pwd-shares-total M with 1 <= N <= M";
    if (o->input.fd >= 0 && action != ACT_CREATE_SHARE && action != ACT_IMPORT_SHARE)
        return "--password-fd goes with --create-dkek-share or --import-dkek-share";
    if ((o->key_reference >= 0 || o->id_len > 0) && action != ACT_WRAP)
        return "--key-reference and --id go with --wrap-key";
    if (action == ACT_WRAP && (o->key_reference >= 0) == (o->id_len > 0))
        return "--wrap-key needs one of --key-reference and --id";
    if (o->pin != NULL && action != ACT_WRAP && action != ACT_UNWRAP)
        return "--pin goes with --wrap-key or --unwrap-key";
    if (o->token != NULL && action != ACT_UNWRAP)
        return "--token goes with --unwrap-key";
    if (o->force && action != ACT_CREATE_SHARE && action != ACT_WRAP && action != ACT_UNWRAP)
        return "--force goes with --create-dkek-share, --wrap-key or --unwrap-key";
    return NULL;
}

/* Set the action of an option that names a file. */
static int file_action(enum action *action, enum action a, tool_dkek_opts *o, const char *file)
{
    o->file = file;
    return set_action(action, a);
}

static int run(enum action action, const char *state_dir, const sks_card_init_opts *opts,
               tool_dkek_opts *o)
{
    o->state_dir = state_dir;
    switch (action) {
    case ACT_INIT: {
        int rc = do_init(state_dir, opts);
        if (rc == EXIT_OK && o->dkek_shares >= 0)
            rc = tool_dkek_initialize(o);
        return rc;
    }
    case ACT_INFO:
        return do_info(state_dir);
    case ACT_LIST_KEYS:
        return do_list_keys(state_dir);
    case ACT_INITIALIZE:
        return tool_dkek_initialize(o);
    case ACT_DKEK_STATUS:
        return tool_dkek_status(o);
    case ACT_CREATE_SHARE:
        return tool_dkek_create_share(o);
    case ACT_IMPORT_SHARE:
        return tool_dkek_import_share(o);
    case ACT_WRAP:
        return tool_dkek_wrap(o);
    case ACT_UNWRAP:
        return tool_dkek_unwrap(o);
    default: {
        int rc = do_info(state_dir);
        if (rc == EXIT_OK)
            rc = tool_dkek_status(o);
        return rc;
    }
    }
}

int main(int argc, char **argv)
{
    sks_card_init_opts opts;
    tool_dkek_opts dk;
    enum action action = ACT_NONE;
    const char *state_dir = NULL;
    char *default_dir = NULL;
    const char *bad = NULL;
    int init_options = 0, opt, rc;
    long v;

    memset(&opts, 0, sizeof opts);
    memset(&dk, 0, sizeof dk);
    dk.dkek_shares = dk.pwd_threshold = dk.pwd_total = -1;
    dk.input.fd = -1;
    dk.key_reference = -1;
    opts.attestation_alg = SKS_KEYALG_EC_P256;
    while ((opt = getopt_long(argc, argv, "d:hVXs:C:I:W:U:i:f", long_options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            state_dir = optarg;
            break;
        case OPT_INIT:
        case OPT_INFO:
        case OPT_LIST_KEYS:
        case 'X':
        case OPT_DKEK_STATUS:
            if (set_action(&action, opt == OPT_INIT        ? ACT_INIT
                                    : opt == OPT_INFO      ? ACT_INFO
                                    : opt == OPT_LIST_KEYS ? ACT_LIST_KEYS
                                    : opt == 'X'           ? ACT_INITIALIZE
                                                           : ACT_DKEK_STATUS) != 0)
                return usage_error("give only one action", NULL);
            break;
        case 'C':
        case 'I':
        case 'W':
        case 'U':
            if (file_action(&action,
                            opt == 'C'   ? ACT_CREATE_SHARE
                            : opt == 'I' ? ACT_IMPORT_SHARE
                            : opt == 'W' ? ACT_WRAP
                                         : ACT_UNWRAP,
                            &dk, optarg) != 0)
                return usage_error("give only one action", NULL);
            break;
        case 's':
            if ((v = parse_small(optarg, 0, SKS_DKEK_SHARES_MAX)) < 0)
                return usage_error("--dkek-shares must be a number from 0 to 16", optarg);
            dk.dkek_shares = (int)v;
            break;
        case OPT_PWD_THRESHOLD:
        case OPT_PWD_TOTAL:
            if ((v = parse_small(optarg, 1, 16)) < 0)
                return usage_error("password shares: a number from 1 to 16", optarg);
            *(opt == OPT_PWD_THRESHOLD ? &dk.pwd_threshold : &dk.pwd_total) = (int)v;
            break;
        case OPT_PASSWORD_FD:
            if ((v = parse_small(optarg, 0, 1 << 20)) < 0)
                return usage_error("--password-fd needs a file descriptor number", optarg);
            dk.input.fd = (int)v;
            break;
        case 'i':
            if ((v = parse_small(optarg, 1, 0x7FFFFFFFL)) < 0)
                return usage_error("--key-reference needs a key handle", optarg);
            dk.key_reference = v;
            break;
        case OPT_ID:
            if (parse_id(optarg, &dk) != 0)
                return usage_error("--id needs 1 to 32 bytes in hex", optarg);
            break;
        case OPT_PIN:
            dk.pin = optarg;
            break;
        case OPT_TOKEN:
            dk.token = optarg;
            break;
        case 'f':
            dk.force = 1;
            break;
        case OPT_ATTESTATION_ALG:
            if (strcmp(optarg, "ec") == 0)
                opts.attestation_alg = SKS_KEYALG_EC_P256;
            else if (strcmp(optarg, "rsa") == 0)
                opts.attestation_alg = SKS_KEYALG_RSA2048;
            else
                return usage_error("--attestation-alg must be ec or rsa", optarg);
            init_options = 1;
            break;
        case OPT_CA_KEY:
            opts.ca_key_file = optarg;
            init_options = 1;
            break;
        case OPT_CA_CERT:
            opts.ca_cert_file = optarg;
            init_options = 1;
            break;
        case OPT_MAX_KEYS:
            if (parse_max_keys(optarg, &opts.max_keys) != 0)
                return usage_error("--max-keys must be a number from 1 to 4294967295", optarg);
            init_options = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_OK;
        case 'V':
            return tool_print_version(prog);
        default:
            return usage_error("invalid command line", NULL);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument", argv[optind]);
    if ((bad = check_options(action, &dk, init_options)) != NULL)
        return usage_error(bad, NULL);
    if ((opts.ca_key_file == NULL) != (opts.ca_cert_file == NULL))
        return usage_error("--ca-key and --ca-cert must be given together", NULL);
    if (action != ACT_CREATE_SHARE && (state_dir == NULL || state_dir[0] == '\0')) {
        default_dir = tool_default_state_dir();
        if (default_dir == NULL) {
            fprintf(stderr, "%s: no state directory: set HOME or use --state-dir\n", prog);
            return EXIT_FAIL;
        }
        state_dir = default_dir;
    }
    rc = run(action, state_dir, &opts, &dk);
    free(default_dir);
    return rc;
}
