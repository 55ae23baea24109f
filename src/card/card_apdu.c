/* placeholder: card_apdu.c is being written */
