/* placeholder: card_device.c is being written */
