/* placeholder: card_session.c is being written */
