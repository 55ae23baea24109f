/* placeholder: card_provision.c is being written */
