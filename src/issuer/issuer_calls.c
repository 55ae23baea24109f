/* placeholder: issuer_calls.c is being written */
