/* placeholder: card_keyuse.c is being written */
