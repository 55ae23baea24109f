/* placeholder: card_store.c is being written */
