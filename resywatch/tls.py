"""The process's one TLS context for outgoing HTTPS (Resy, webhooks)."""

from __future__ import annotations

import functools
import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default verification (its CA bundle, SSL_CERT_FILE/SSL_CERT_DIR honoured),
    built once: loading the certificates costs ~30 ms of CPU, which every new client paid,
    and a discovery pass, a cron pass and each channel make a new client."""
    import httpx

    return httpx.create_ssl_context()
