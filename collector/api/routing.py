"""The collector's route class: the caller is authenticated first, then the request's body is
read with a bound on its size and, when it is gzip (``Content-Encoding: gzip``, as door units
send their batches), inflated with a bound too.

FastAPI reads a body before it solves a route's dependencies, so authentication cannot wait
for them: an unauthenticated request must never have its body read or inflated.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any, Final

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from appliance.errors import BodyError
from collector.api import errors
from collector.api.deps import authenticators

MAX_BODY: Final = 8 * 1024 * 1024  # compressed, as sent
MAX_INFLATED: Final = 32 * 1024 * 1024  # after gzip: a small bomb must not fill the server's memory
BODY_METHODS: Final = ("POST", "PUT", "PATCH")
ENCODINGS: Final = ("gzip", "identity")


class GzipRequest(Request):
    """A request whose body may be gzip (``Content-Encoding: gzip``), inflated with a bound."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            self._body = _decoded(await self._raw_body(), self.headers.get("content-encoding"))
        return self._body

    async def _raw_body(self) -> bytes:
        too_big = BodyError(413, f"request body over {MAX_BODY} bytes: send smaller batches")
        length = self.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.stream():  # counted as it comes: chunked bodies too
            size += len(chunk)
            if size > MAX_BODY:
                raise too_big
            chunks.append(chunk)
        return b"".join(chunks)


def _decoded(raw: bytes, content_encoding: str | None) -> bytes:
    encoding = "identity" if content_encoding is None else content_encoding
    if encoding not in ENCODINGS:
        # Exactly the document's enum: a value it does not list is refused, not guessed at.
        raise BodyError(415, f"Content-Encoding {encoding!r} is not supported (use gzip)")
    if encoding == "gzip":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(raw, MAX_INFLATED)
        except zlib.error as exc:
            raise BodyError(400, f"request body is not valid gzip: {exc}") from None
        if inflater.unconsumed_tail:
            raise BodyError(413, f"request body inflates past {MAX_INFLATED} bytes")
        if not inflater.eof:
            raise BodyError(400, "request body is truncated gzip")
    return raw


def _no_credentials() -> JSONResponse:
    return errors.reply(
        401,
        "no bearer token: enroll the unit, or ask for a role token",
        headers={"WWW-Authenticate": "Bearer"},
    )


# The body routes' ``openapi_extra``: the header ``_decoded`` takes, exactly these values.
CONTENT_ENCODING: Final[dict[str, Any]] = {
    "parameters": [
        {
            "name": "Content-Encoding",
            "in": "header",
            "required": False,
            "schema": {"type": "string", "enum": list(ENCODINGS)},
            "description": "gzip, as units send their batches (at most 8 MiB compressed and 32"
            " MiB inflated), or identity; any other value is refused with 415",
        }
    ]
}


class GzipRoute(APIRoute):
    """Authenticate (through the route's own authenticators), then read and inflate the body,
    then run the route. A refusal on the way is raised for the app's exception handlers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()
        checks = authenticators(self.dependant.dependencies)

        async def handler(request: Request) -> Response:
            wrapped = GzipRequest(request.scope, request.receive)
            has_body = request.method in BODY_METHODS
            if checks and has_body and "authorization" not in request.headers:
                return _no_credentials()  # said before anything is looked up or read
            for check in checks:
                await check.authenticate(wrapped)
            if has_body:
                await wrapped.body()  # inflate now, so a bad body gets its own message
            return await original(wrapped)

        return handler
