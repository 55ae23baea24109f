# src/token: sks-pkcs11.so, the PKCS#11 module (token layer). It exports
# only C_GetFunctionList; installed in $(libdir)/pkcs11 with a p11-kit
# registration (sks.module) in p11-kit's module directory.
pkcs11dir = $(libdir)/pkcs11
pkcs11_LTLIBRARIES = src/token/sks-pkcs11.la
src_token_sks_pkcs11_la_SOURCES = \
	src/token/tok.h src/token/p11_entry.h src/token/tok_lock.h src/token/tok_crypto.h \
	src/token/tok_try.h \
	src/token/p11_module.c \
	src/token/p11_slot.c \
	src/token/p11_session.c \
	src/token/p11_login.c \
	src/token/p11_object.c \
	src/token/p11_find.c \
	src/token/tok_lock.c \
	src/token/tok_config.c \
	src/token/tok_log.c \
	src/token/tok_util.c \
	src/token/tok_card.c \
	src/token/tok_cardtab.c \
	src/token/tok_readers.c \
	src/token/tok_wait.c \
	src/token/tok_status.c \
	src/token/tok_cache.c \
	src/token/tok_index.c \
	src/token/tok_slot.c \
	src/token/tok_reinit.c \
	src/token/tok_session.c \
	src/token/tok_object.c \
	src/token/tok_attrs.c \
	src/token/tok_attr_rules.c \
	src/token/tok_keyattrs.c \
	src/token/tok_pkey.c \
	src/token/tok_stored.c \
	src/token/tok_issuer.c \
	src/token/tok_ossl.h src/token/tok_ossl.c \
	src/token/p11_crypto.c \
	src/token/p11_keys.c \
	src/token/tok_mech.c \
	src/token/tok_ops.c \
	src/token/tok_sign.c \
	src/token/tok_cipher.c \
	src/token/tok_aes.c \
	src/token/tok_digest.c \
	src/token/tok_keypair.c \
	src/token/tok_secret.c \
	src/token/tok_derive.c \
	src/token/tok_vendor.h src/token/tok_vendor.c \
	src/token/tok_prov.h src/token/tok_prov.c \
	src/token/tok_prov_session.c \
	src/token/tok_prov_calls.c \
	src/token/tok_prov_keys.c \
	src/token/tok_post.c \
	src/token/tok_inject_unwrap.c \
	src/token/tok_inject_wrap.c \
	src/token/tok_dkek.h src/token/tok_dkek.c \
	src/token/tok_dkek_wrap.c \
	src/token/tok_issuer_prov.h src/token/tok_issuer_prov.c \
	src/token/tok_issuer_prov_core.h src/token/tok_issuer_prov_int.h \
	src/token/tok_issuer_prov_session.c \
	src/token/tok_issuer_prov_calls.c \
	src/token/tok_issuer_prov_post.c
# No-card mode: the issuer token and its software keys (tok_issuer_token.h, tok_soft.h).
src_token_sks_pkcs11_la_SOURCES += \
	src/token/tok_issuer_token.h src/token/tok_issuer_int.h \
	src/token/tok_issuer_token.c \
	src/token/tok_issuer_pin.c \
	src/token/tok_issuer_store.c \
	src/token/tok_issuer_objects.c \
	src/token/tok_soft.h \
	src/token/tok_soft_key.c \
	src/token/tok_soft_ops.c \
	src/token/tok_soft_gen.c \
	src/token/tok_soft_wrap.c \
	src/token/tok_soft_cache.c
# The other layers are compiled in from their sources: linking their
# convenience libraries, which contain one another, would duplicate objects.
src_token_sks_pkcs11_la_SOURCES += \
	$(SKS_TRANSPORT_SOURCES) \
	$(src_provision_libsksprovision_la_SOURCES) \
	$(src_issuer_libsksissuer_la_SOURCES) \
	$(src_card_libskscard_la_SOURCES) \
	$(src_protocol_libsksproto_la_SOURCES)
src_token_sks_pkcs11_la_CFLAGS = $(AM_CFLAGS) $(CRYPTO_CFLAGS) $(SQLITE_CFLAGS) $(P11KIT_CFLAGS) \
	$(PCSC_CFLAGS)
src_token_sks_pkcs11_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared \
	-export-symbols-regex '^C_GetFunctionList$$' -Wl,-z,nodelete
src_token_sks_pkcs11_la_LIBADD = $(CRYPTO_LIBS) $(SQLITE_LIBS) $(PCSC_LIBS) -lpthread

# sks.module names the module by its installed absolute path, so p11-kit
# finds it whatever the prefix; it is written at install time so that
# `make install prefix=...` is honoured too. libtool's .la file has no use
# in a PKCS#11 module directory.
p11kitmoduledir = $(P11_MODULE_CONFIGS)
EXTRA_DIST += src/token/sks.module.in
install-data-hook:
	rm -f $(DESTDIR)$(pkcs11dir)/sks-pkcs11.la
	$(MKDIR_P) $(DESTDIR)$(p11kitmoduledir)
	sed -e 's|@pkcs11dir@|$(pkcs11dir)|g' $(srcdir)/src/token/sks.module.in \
		> $(DESTDIR)$(p11kitmoduledir)/sks.module
uninstall-local:
	rm -f $(DESTDIR)$(p11kitmoduledir)/sks.module $(DESTDIR)$(pkcs11dir)/sks-pkcs11.so
dist_man_MANS += man/sks-pkcs11.7 man/sks-pkcs11.conf.5

# make distcheck installs under its own prefix, p11-kit registration included.
AM_DISTCHECK_CONFIGURE_FLAGS = --with-p11-kit-module-dir='$${dc_install_base}/share/p11-kit/modules'
