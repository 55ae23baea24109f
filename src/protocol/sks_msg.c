/* placeholder: sks_msg.c is being written */
