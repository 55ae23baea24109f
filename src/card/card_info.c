/* placeholder: card_info.c is being written */
