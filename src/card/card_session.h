/* placeholder: card_session.h is being written */
