/* issuer_sks.c - sks-issuer-demo's side of scenario (b): placeholder until its mechanisms land. */
#include "issuer_demo.h"

int issuer_sks(demo_issuer *d, int fd, const demo_msg *hello)
{
    (void)d;
    (void)hello;
    return issuer_fail(fd, "scenario sks: not available in this build");
}
