/* placeholder: sks_wire.c is being written */
