/* placeholder: card_keymat.c is being written */
