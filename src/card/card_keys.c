/* placeholder: card_keys.c is being written */
