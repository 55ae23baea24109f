/* placeholder: card_pin.c is being written */
