"""TLS: serving wss:// directly, and verifying wss:// upstreams.

Serving: TLS_CERT_FILE and TLS_KEY_FILE (PEM; the certificate file may hold the chain) turn the
listener into HTTPS/WSS, TLS 1.2 at least. Without them wsrelay speaks plain HTTP and expects a
TLS-terminating ingress in front, the usual deployment.

Upstreams: `upstream_context` is what the outbound pool hands to its connects for wss:// URLs:
certificate and host name are always verified, against the system's CAs plus UPSTREAM_CA_FILE
(for upstreams whose certificates come from a private CA). There is no switch to skip
verification.
"""

from __future__ import annotations

import ssl


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """The listener's context; raises OSError or ssl.SSLError for unreadable or bad files."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context


def upstream_context(ca_file: str | None = None) -> ssl.SSLContext:
    """A verifying client context for wss:// upstreams: system CAs, plus `ca_file` if given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


def check_server_files(cert_file: str | None, key_file: str | None) -> None:
    """Settings validation: both files or neither, and they must load as a key pair."""
    if bool(cert_file) != bool(key_file):
        raise ValueError("TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither")
    if cert_file and key_file:
        try:
            server_context(cert_file, key_file)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(
                f"TLS_CERT_FILE/TLS_KEY_FILE: cannot load the certificate and key: {error}"
            ) from None


def check_ca_file(ca_file: str | None) -> None:
    """Settings validation: UPSTREAM_CA_FILE must load as PEM certificates."""
    if ca_file:
        try:
            upstream_context(ca_file)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(
                f"UPSTREAM_CA_FILE: cannot load CA certificates from {ca_file!r}: {error}"
            ) from None


def serving_context(cert_file: str | None, key_file: str | None) -> ssl.SSLContext | None:
    """The listener's context when TLS_CERT_FILE/TLS_KEY_FILE are set, else None (plain)."""
    if cert_file and key_file:
        return server_context(cert_file, key_file)
    return None
