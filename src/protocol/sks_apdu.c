/* placeholder: sks_apdu.c is being written */
