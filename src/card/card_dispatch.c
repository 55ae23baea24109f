/* placeholder: card_dispatch.c is being written */
