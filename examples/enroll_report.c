/*
 * enroll_report.c - what sks-enroll shows the user once a session is done:
 * for each key the card created, the token it is on and the subject of its
 * certificate, read back through PKCS#11 like any application would (the
 * key lives on the token of its PIN policy, usually not the one the
 * session was opened on, so every token is looked at).
 */
#include <stdio.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "enroll.h"

/* The token label without PKCS#11's blank padding. */
static void print_label(const CK_UTF8CHAR label[32])
{
    int n = 32;
    while (n > 0 && label[n - 1] == ' ')
        n--;
    printf("%.*s", n, (const char *)label);
}

/* An ID as text when it is printable ASCII, else in hex. */
static void print_id(const CK_BYTE *id, CK_ULONG len)
{
    int text = len > 0;
    for (CK_ULONG i = 0; text && i < len; i++)
        text = id[i] >= 0x20 && id[i] < 0x7F;
    for (CK_ULONG i = 0; i < len; i++) {
        if (text)
            putchar(id[i]);
        else
            printf("%02x", id[i]);
    }
}

/* The certificate with this CKA_ID in the token of `slot`, printed; 0 if found. */
static int show_in_slot(demo_p11 *p, CK_SLOT_ID slot, const CK_BYTE *id, CK_ULONG id_len)
{
    CK_SESSION_HANDLE s;
    if (p->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK)
        return -1;
    CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, (void *)id, id_len}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    CK_ULONG n = 0;
    int found = -1;
    if (p->f->C_FindObjectsInit(s, t, 2) == CKR_OK) {
        if (p->f->C_FindObjects(s, &h, 1, &n) != CKR_OK)
            n = 0;
        p->f->C_FindObjectsFinal(s);
    }
    demo_p11 in_slot = *p;
    in_slot.session = s;
    size_t len = 0;
    unsigned char *der = n == 1 ? demo_p11_attr(&in_slot, h, CKA_VALUE, &len) : NULL;
    const unsigned char *q = der;
    X509 *cert = der != NULL ? d2i_X509(NULL, &q, (long)len) : NULL;
    CK_TOKEN_INFO ti;
    if (cert != NULL && p->f->C_GetTokenInfo(slot, &ti) == CKR_OK) {
        char subject[256];
        X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof(subject));
        printf("[client] key ");
        print_id(id, id_len);
        printf(" is on token \"");
        print_label(ti.label);
        printf("\", certificate %s\n", subject);
        found = 0;
    }
    X509_free(cert);
    free(der);
    p->f->C_CloseSession(s);
    return found;
}

void enroll_report_key(demo_p11 *p, const CK_BYTE *id, CK_ULONG id_len)
{
    CK_SLOT_ID slots[64];
    CK_ULONG n = sizeof(slots) / sizeof(slots[0]);
    if (p->f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        n = 0;
    for (CK_ULONG i = 0; i < n; i++) {
        if (show_in_slot(p, slots[i], id, id_len) == 0)
            return;
    }
    printf("[client] key ");
    print_id(id, id_len);
    printf(": no certificate found on any token\n");
}
