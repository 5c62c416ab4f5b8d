"""What the request being served carries beyond the handler's arguments."""

from __future__ import annotations

from contextvars import ContextVar

# The id of the request being served (set by middleware.request_id), for the log lines of its
# errors and its access line.
request_id: ContextVar[str] = ContextVar("request_id", default="-")
