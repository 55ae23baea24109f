/* placeholder: issuer_session.c is being written */
