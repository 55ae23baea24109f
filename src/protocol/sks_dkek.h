/*
 * sks_dkek.h - the key backup format under a DKEK (Device Key Encryption
 * Key), shared by the card (which makes and opens blobs), the middleware
 * and sks-tool (which read a blob's clear header) and the tests.
 * docs/dkek.md describes the format byte by byte.
 *
 *   KCV  = first 8 bytes of SHA-256(DKEK)
 *   KENC = SHA-256(DKEK | 00 00 00 01)   (AES-256 key of the key material)
 *   KMAC = SHA-256(DKEK | 00 00 00 02)   (AES-256 key of the CMAC)
 *
 * Blob, version 1 (SKS wire types, big-endian lengths):
 *   KCV(8) | Version(1) | AlgorithmData(1) | KeyUsage(1) | Flags(1) |
 *   L(ID) | L(FriendlyName) | L(PolicyID) | B(CertificatePath) |
 *   B(IV(16) | AES-256-CBC(KENC, IV, PKCS#7(PKCS#8 private key))) |
 *   CMAC(16) = AES-CMAC(KMAC, every byte before it)
 */
#ifndef SKS_DKEK_H
#define SKS_DKEK_H

#include <stddef.h>
#include <stdint.h>

#include "sks_proto.h"
#include "sks_wire.h"

#define SKS_DKEK_BLOB_VERSION 1
#define SKS_DKEK_CMAC_LEN     16
#define SKS_DKEK_IV_LEN       16
/*
 * The shortest possible blob: KCV, the four fixed bytes, a 1-byte ID, empty
 * name and policy ID, no path, an IV and one block, the CMAC.
 */
#define SKS_DKEK_BLOB_MIN (SKS_DKEK_KCV_LEN + 4 + 3 + 2 + 2 + 4 + 4 + 32 + SKS_DKEK_CMAC_LEN)

/* KCV of a DKEK. 0 or -1. */
int sks_dkek_kcv(const uint8_t dkek[SKS_DKEK_LEN], uint8_t kcv[SKS_DKEK_KCV_LEN]);
/* KENC and KMAC of a DKEK. 0 or -1. */
int sks_dkek_kenc(const uint8_t dkek[SKS_DKEK_LEN], uint8_t kenc[32]);
int sks_dkek_kmac(const uint8_t dkek[SKS_DKEK_LEN], uint8_t kmac[32]);
/* AES-CMAC with AES-256 (NIST SP 800-38B) of n bytes. 0 or -1. */
int sks_dkek_cmac(const uint8_t key[32], const uint8_t *p, size_t n,
                  uint8_t mac[SKS_DKEK_CMAC_LEN]);

/* The fields of a blob; views point into the parsed bytes. */
typedef struct {
    sks_view kcv;
    uint8_t version;
    uint8_t algorithm;      /* enum sks_key_alg */
    uint8_t usage;          /* SKS_USAGE_* */
    uint8_t flags;          /* SKS_KEYFLAG_* of the key when it was wrapped */
    sks_view id;            /* 1..SKS_ID_MAX */
    sks_view friendly_name; /* 0..SKS_FRIENDLY_NAME_MAX */
    sks_view policy_id;     /* the PIN policy's ID on the card it came from; empty: no PIN */
    sks_view cert_path;     /* wire form: count byte, then L(certificate) each; empty: none */
    sks_view encrypted_key; /* IV | ciphertext */
    sks_view cmac;
    size_t mac_data_len; /* bytes the CMAC covers (all before it) */
} sks_dkek_blob;

/*
 * Parse a blob's structure (no cryptography): every length within the
 * data and its bounds, the version known, no trailing bytes, the
 * certificate path well formed. 0, or -1 with *why set.
 */
int sks_dkek_blob_parse(const uint8_t *p, size_t n, sks_dkek_blob *b, const char **why);

enum sks_dkek_verdict {
    SKS_DKEK_BLOB_OK = 0,
    SKS_DKEK_BLOB_SHORT = 1,     /* shorter than any blob */
    SKS_DKEK_BLOB_OTHER_KEK = 2, /* the KCV is not this DKEK's */
    SKS_DKEK_BLOB_BAD_MAC = 3,   /* the CMAC does not match: altered or damaged */
    SKS_DKEK_BLOB_FAILED = 4,    /* a cryptographic primitive failed */
};
/*
 * Check a blob under a DKEK before anything else is read from it: its
 * length, then the KCV, then the CMAC (compared in constant time).
 */
int sks_dkek_blob_verify(const uint8_t dkek[SKS_DKEK_LEN], const uint8_t *p, size_t n);

/*
 * Append a blob to `out`: the header fields of `hdr` (kcv, version,
 * encrypted_key, cmac and mac_data_len are ignored), the PKCS#8 key
 * encrypted under KENC with `iv` (NULL: random), the CMAC. 0 or -1.
 */
int sks_dkek_blob_build(const uint8_t dkek[SKS_DKEK_LEN], const sks_dkek_blob *hdr,
                        const uint8_t *pkcs8, size_t n, const uint8_t *iv, sks_writer *out);

/*
 * Decrypt the key material of a verified, parsed blob into `pt` (room for
 * b->encrypted_key.len bytes); *ptlen gets its length. 0 or -1.
 */
int sks_dkek_blob_decrypt(const uint8_t dkek[SKS_DKEK_LEN], const sks_dkek_blob *b, uint8_t *pt,
                          size_t *ptlen);

#endif
