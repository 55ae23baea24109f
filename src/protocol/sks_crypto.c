/* placeholder: sks_crypto.c is being written */
