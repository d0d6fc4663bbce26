"""uvicorn's access log without callers' phone numbers and emails.

Platform tools may be called with their arguments in the query string (`GET
/voice/bland/tools/find_contact?contact_phone=%2B12125550142`), and uvicorn logs the full path.
This filter masks the phones and emails in the query of each access-log line; the path, method
and status stay as they were.
"""

from __future__ import annotations

import logging

from tool_server.redaction import mask_query

__all__ = ["MaskedQueryStrings"]

# uvicorn.protocols.http: access_logger.info('%s - "%s %s HTTP/%s" %d', client, method, path, version, status)
_PATH_ARGUMENT = 2


class MaskedQueryStrings(logging.Filter):
    """Masks phones and emails in the query string of uvicorn access-log records."""

    def filter(self, record: logging.LogRecord) -> bool:
        arguments = record.args
        if isinstance(arguments, tuple) and len(arguments) > _PATH_ARGUMENT:
            path = arguments[_PATH_ARGUMENT]
            if isinstance(path, str) and "?" in path:
                base, _, query = path.partition("?")
                masked = f"{base}?{mask_query(query)}"
                record.args = (*arguments[:_PATH_ARGUMENT], masked, *arguments[_PATH_ARGUMENT + 1 :])
        return True
