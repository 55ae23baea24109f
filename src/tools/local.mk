# src/tools: sks-tool, the administrator's command line.
bin_PROGRAMS += sks-tool
sks_tool_SOURCES = src/tools/sks_tool.c
sks_tool_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS)
sks_tool_LDADD = src/card/libskscard.la
dist_man_MANS += man/sks-tool.1
