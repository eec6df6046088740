"""Request bodies bounded before they are read: 413 past the limit, whether the client
declares the length up front or streams the body without one.

A pure ASGI middleware, so nothing (FastAPI's JSON parsing, a form, a CSV upload) ever
holds more than the limit of one request in memory.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from village.api.problems import problem_response


class BodyTooLarge(HTTPException):
    """A body grew past its limit while it was being read."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large(limit))


def too_large(limit: int) -> str:
    """The detail of a 413."""
    return f"the request body is larger than {limit} bytes"


class BodyLimit:
    """Refuse bodies over `default` bytes (or the limit of their path, for uploads)."""

    def __init__(self, app: ASGIApp, default: int, by_path: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        self.by_path = dict(by_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.default)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await problem_response(413, too_large(limit), "body")(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)
