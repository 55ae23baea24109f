/* placeholder: card_seal.h is being written */
