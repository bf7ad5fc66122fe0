#!/bin/sh
# Entrypoint of clerk-harness/reference-backend: trusts any extra CA certificates put in
# /usr/local/share/ca-certificates/ (files ending in .crt, PEM) before running the command.
#
# update-ca-certificates rebuilds /etc/ssl/certs/ca-certificates.crt, which OpenSSL's default
# paths (urllib, PyJWT's PyJWKClient) use; the image sets SSL_CERT_FILE to that bundle so that
# httpx (which otherwise uses certifi) trusts the same set. A harness may instead set
# SSL_CERT_FILE to its own CA file: then nothing needs to run here.
set -eu
if [ "$(id -u)" = 0 ] && find /usr/local/share/ca-certificates -name '*.crt' -type f 2>/dev/null | grep -q .; then
	echo "reference-entrypoint: trusting extra CA certificates from /usr/local/share/ca-certificates"
	update-ca-certificates
fi
exec "$@"
