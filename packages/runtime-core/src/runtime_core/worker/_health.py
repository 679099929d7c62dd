"""``/healthz`` and ``/readyz`` for the worker processes, on asyncio's own TCP server.

runtime-core may not import a web framework (importlinter), and two GET routes do not need one:
this is a tiny HTTP/1.1 responder (GET and HEAD only, one request per connection,
``Connection: close``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

__all__ = ["HealthState", "serving_health"]

log = logging.getLogger("runtime_core.worker.health")

#: How long a client may take to send its request line and headers.
_READ_SECONDS = 5.0
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}

Problems = Callable[[], Awaitable[list[dict[str, str]]]]


class HealthState:
    """What the process knows about itself: has polling started, is it draining.

    Args:
        checks: Returns every failing dependency check as ``{path, code, message}``
            (:meth:`runtime_core.operations.HealthChecks.readiness_problems`).
    """

    def __init__(self, checks: Problems) -> None:
        self.checks = checks
        self.polling = False
        self.draining = False

    async def problems(self) -> list[dict[str, str]]:
        """Every reason the process is not ready; empty when it is."""
        found: list[dict[str, str]] = []
        if self.draining:
            found.append({"path": "worker", "code": "DRAINING", "message": "the worker received SIGTERM and is finishing in-flight tasks"})
        elif not self.polling:
            found.append({"path": "worker", "code": "NOT_POLLING", "message": "the worker has not started polling yet"})
        try:
            found.extend(await self.checks())
        except Exception as err:  # a check that raises is a failing check, never a crashed endpoint
            found.append({"path": "checks", "code": "ERROR", "message": f"the readiness checks failed ({type(err).__name__})"})
        return found


async def _respond(writer: asyncio.StreamWriter, status: int, body: dict[str, object], *, head: bool = False) -> None:
    payload = json.dumps(body).encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
        "Cache-Control: no-store",
        "Connection: close",
    ]
    if status == 405:
        lines.append("Allow: GET, HEAD")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (b"" if head else payload))
    await writer.drain()


async def _handle(state: HealthState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _READ_SECONDS)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            await _respond(writer, 400, {"status": "bad request"})
            return
        method, target = parts[0], parts[1].split("?", 1)[0]
        if target not in ("/healthz", "/readyz"):
            await _respond(writer, 404, {"status": "not found", "paths": ["/healthz", "/readyz"]})
            return
        if method not in ("GET", "HEAD"):
            await _respond(writer, 405, {"status": "method not allowed"})
            return
        if target == "/healthz":
            await _respond(writer, 200, {"status": "ok"}, head=method == "HEAD")
            return
        problems = await state.problems()
        if problems:
            await _respond(writer, 503, {"status": "unavailable", "errors": problems}, head=method == "HEAD")
        else:
            await _respond(writer, 200, {"status": "ready"}, head=method == "HEAD")
    except (ConnectionError, OSError):
        pass  # the client went away; nothing to answer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


@contextlib.asynccontextmanager
async def serving_health(port: int | None, state: HealthState, *, host: str = "0.0.0.0") -> AsyncIterator[None]:
    """Serve ``GET /healthz`` (200 while the process runs) and ``GET /readyz`` on ``port`` while the block runs.

    ``/readyz`` answers 200 ``{"status": "ready"}`` when ``state`` is polling, not draining and
    every check passes, else 503 ``{"status": "unavailable", "errors": [{path, code, message}]}``.
    Nothing is served when ``port`` is ``None``.

    Raises:
        RuntimeError: The port cannot be bound; the message names WFR_HEALTH_PORT.
    """
    if port is None:
        yield
        return
    try:
        server = await asyncio.start_server(lambda r, w: _handle(state, r, w), host, port)
    except OSError as err:
        raise RuntimeError(f"cannot serve health endpoints on port {port}: {err}. Set WFR_HEALTH_PORT to a free port, or unset it") from err
    log.info("health endpoints on port %d: GET /healthz, GET /readyz", port)
    try:
        yield
    finally:
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)
