/*
 * sks_tool.c - sks-tool, the administrator's command line for an SKS card
 * kept in a state directory: create a card, show what it is and list the
 * keys it holds.
 *
 * Apart from creating a card, sks-tool asks the card through its own methods
 * (getDeviceInfo, enumerateKeys, getKeyAttributes), encoded and decoded
 * exactly as a middleware would, so what it prints is what clients see.
 */
#include "config.h"

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
#include "tools/tool_common.h"
#include "tools/tool_paths.h"

static const char *prog = "sks-tool";

enum action { ACT_NONE, ACT_INIT, ACT_INFO, ACT_LIST_KEYS };

enum long_only {
    OPT_INIT = 256,
    OPT_INFO,
    OPT_LIST_KEYS,
    OPT_ATTESTATION_ALG,
    OPT_CA_KEY,
    OPT_CA_CERT,
    OPT_MAX_KEYS,
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
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: %s [--state-dir DIR] ACTION [OPTIONS]\n"
            "Administer an SKS card kept in a state directory.\n"
            "\n"
            "Actions:\n"
            "      --init               create a new card in the state directory\n"
            "      --info               show the card's serial, API level, key count and\n"
            "                           device certificate\n"
            "      --list-keys          list the card's usable keys and their attributes\n"
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
            "\n"
            "Exit status: 0 success, 1 failure, 2 usage error.\n",
            prog, TOOL_STATE_DIR_HELP);
}

static int usage_error(const char *msg, const char *arg)
{
    return tool_usage_error(prog, msg, arg);
}

/* ---- Printing card data safely ---------------------------------------- */

/* Length of a valid UTF-8 sequence at p for a printable code point >= U+00A0, else 0. */
static size_t utf8_printable(const uint8_t *p, size_t n)
{
    uint32_t cp;
    size_t len;

    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        len = 2;
        cp = p[0] & 0x1F;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        len = 3;
        cp = p[0] & 0x0F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp < 0xA0)
        return 0;
    return len;
}

/*
 * Print bytes that came from the card: printable ASCII and UTF-8 as they
 * are, anything else (control characters, stray bytes) as \xNN, so card
 * data can never drive the terminal.
 */
static void print_text(FILE *out, const uint8_t *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t len = utf8_printable(p + i, n - i);

        if (len > 0) {
            fwrite(p + i, 1, len, out);
            i += len;
        } else if (p[i] >= 0x20 && p[i] < 0x7F && p[i] != '\\') {
            fputc(p[i++], out);
        } else {
            fprintf(out, "\\x%02x", p[i++]);
        }
    }
}

/* An ID: quoted when it is printable ASCII, hex otherwise. */
static void print_id(sks_view id)
{
    int printable = id.len > 0;

    for (size_t i = 0; i < id.len; i++)
        if (id.ptr[i] < 0x20 || id.ptr[i] >= 0x7F || id.ptr[i] == '"' || id.ptr[i] == '\\')
            printable = 0;
    if (printable) {
        printf("\"%.*s\"", (int)id.len, (const char *)id.ptr);
        return;
    }
    for (size_t i = 0; i < id.len; i++)
        printf("%02x", id.ptr[i]);
    if (id.len == 0)
        printf("(empty)");
}

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
        print_text(stdout, (const uint8_t *)line, strlen(line));
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

/* ---- Talking to the card ---------------------------------------------- */

/*
 * Run one method on the card: encode `req`, call, decode into `resp` (whose
 * views point into `answer`). 0 on success; otherwise prints the card's
 * status and message and returns -1.
 */
static int card_rpc(sks_card *card, uint8_t method, const void *req, void *resp, sks_writer *answer)
{
    const sks_msgdesc *d = sks_msg_find(method);
    sks_writer call;
    sks_view msg = {NULL, 0};
    uint8_t status = SKS_ERR_INTERNAL;
    int rc = -1;

    sks_writer_init(&call);
    sks_writer_reset(answer);
    if (d == NULL || sks_msg_encode_request(d, req, &call) != 0 || call.failed) {
        fprintf(stderr, "%s: cannot encode a call of method %u\n", prog, method);
        goto out;
    }
    sks_card_call(card, call.buf, call.len, answer);
    if (answer->failed ||
        sks_msg_decode_response(d, answer->buf, answer->len, resp, &status, &msg) != 0) {
        fprintf(stderr, "%s: %s: the card's answer is malformed\n", prog, d->name);
        goto out;
    }
    if (status != SKS_OK) {
        fflush(stdout);
        fprintf(stderr, "%s: %s failed: %s (%u): ", prog, d->name, sks_status_name(status), status);
        print_text(stderr, msg.ptr, msg.len);
        fputc('\n', stderr);
        goto out;
    }
    rc = 0;
out:
    sks_writer_free(&call);
    return rc;
}

static sks_card *open_card(const char *dir)
{
    char err[512];
    sks_card *card = sks_card_open(dir, err, sizeof err);

    if (card == NULL)
        fprintf(stderr, "%s: cannot open the card: %s\n", prog, err);
    return card;
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
    sks_card *card = open_card(dir);
    sks_resp_get_device_info info;
    sks_writer answer;
    int none = 0, rc = EXIT_FAIL;

    if (card == NULL)
        return EXIT_FAIL;
    sks_writer_init(&answer);
    memset(&info, 0, sizeof info);
    if (card_rpc(card, SKS_M_GET_DEVICE_INFO, &none, &info, &answer) == 0) {
        printf("State directory:     %s\n", dir);
        printf("Serial:              ");
        print_text(stdout, info.serial.ptr, info.serial.len);
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
    if (card_rpc(card, SKS_M_GET_KEY_ATTRIBUTES, &req, &a, answer) != 0)
        return -1;
    printf("Key %lu\n", (unsigned long)handle);
    printf("  ID:                ");
    print_id(a.id);
    printf("\n  Friendly name:     ");
    print_text(stdout, a.friendly_name.ptr, a.friendly_name.len);
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
    sks_card *card = open_card(dir);
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
        if (card_rpc(card, SKS_M_ENUMERATE_KEYS, &req, &page, &page_answer) != 0) {
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

int main(int argc, char **argv)
{
    sks_card_init_opts opts;
    enum action action = ACT_NONE;
    const char *state_dir = NULL;
    char *default_dir = NULL;
    int init_options = 0, opt, rc;

    memset(&opts, 0, sizeof opts);
    opts.attestation_alg = SKS_KEYALG_EC_P256;
    while ((opt = getopt_long(argc, argv, "d:hV", long_options, NULL)) != -1) {
        switch (opt) {
        case 'd':
            state_dir = optarg;
            break;
        case OPT_INIT:
        case OPT_INFO:
        case OPT_LIST_KEYS:
            if (set_action(&action, opt == OPT_INIT   ? ACT_INIT
                                    : opt == OPT_INFO ? ACT_INFO
                                                      : ACT_LIST_KEYS) != 0)
                return usage_error("give only one of --init, --info, --list-keys", NULL);
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
    if (action == ACT_NONE)
        return usage_error("no action given (--init, --info or --list-keys)", NULL);
    if (init_options && action != ACT_INIT)
        return usage_error("--attestation-alg, --ca-key, --ca-cert and --max-keys go with --init",
                           NULL);
    if ((opts.ca_key_file == NULL) != (opts.ca_cert_file == NULL))
        return usage_error("--ca-key and --ca-cert must be given together", NULL);
    if (state_dir == NULL || state_dir[0] == '\0') {
        default_dir = tool_default_state_dir();
        if (default_dir == NULL) {
            fprintf(stderr, "%s: no state directory: set HOME or use --state-dir\n", prog);
            return EXIT_FAIL;
        }
        state_dir = default_dir;
    }

    switch (action) {
    case ACT_INIT:
        rc = do_init(state_dir, &opts);
        break;
    case ACT_INFO:
        rc = do_info(state_dir);
        break;
    default:
        rc = do_list_keys(state_dir);
        break;
    }
    free(default_dir);
    return rc;
}
