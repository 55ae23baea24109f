/* placeholder: testlib.c is being written */
