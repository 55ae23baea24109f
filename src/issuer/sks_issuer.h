/* placeholder: sks_issuer.h is being written */
