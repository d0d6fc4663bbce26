"""One verifying TLS context for every httpx client the connectors make.

Building one loads the CA bundle (about 50 ms measured here); a client made per request or per
token refresh would pay that each time. The context is read-only once built, so sharing it
across clients, threads and event loops is safe.
"""

from __future__ import annotations

import ssl
from functools import cache

import certifi

__all__ = ["tls_context"]


@cache
def tls_context() -> ssl.SSLContext:
    """The process's verifying client context (certifi's CA bundle, as httpx uses by default)."""
    return ssl.create_default_context(cafile=certifi.where())
