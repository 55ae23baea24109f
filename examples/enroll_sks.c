/* enroll_sks.c - sks-enroll's side of scenario (b): placeholder until the issuer side lands. */
#include "enroll.h"

int enroll_sks(demo_enroll *e)
{
    return enroll_fail(e, "scenario sks: not available in this build");
}
