/* placeholder: testlib.h is being written */
