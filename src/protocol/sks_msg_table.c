/* placeholder: sks_msg_table.c is being written */
