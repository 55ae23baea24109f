/* placeholder: card_seal.c is being written */
