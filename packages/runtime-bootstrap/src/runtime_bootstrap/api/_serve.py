"""Serving the app with uvicorn inside an event loop the caller owns (``wfr serve``, ``wfr dev``).

The caller opens the stack (database, Temporal client) and keeps it open around :func:`serving`;
uvicorn runs as a task beside whatever else the process does (``wfr dev``'s worker). The caller
handles SIGINT/SIGTERM: uvicorn's own signal capture is turned off, so a stop is one clean
shutdown of everything, not uvicorn re-raising the signal after its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import click
import uvicorn

from runtime_bootstrap._stack import Stack
from runtime_bootstrap.api._app import create_app
from runtime_core.metrics import serving_metrics
from runtime_core.operations import Operations

__all__ = ["serve_until_stopped", "serving", "serving_operations"]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the command that runs the server handles signals


def _bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        raise click.ClickException(f"cannot serve the API on {host}:{port}: {err.strerror or err}; choose another host or port") from None
    sock.set_inheritable(True)
    return sock


@contextlib.asynccontextmanager
async def serving(stack: Stack, host: str, port: int, *, access_log: bool = False, metrics_port: int | None = None) -> AsyncIterator[str]:
    """Serve the API and Run Studio over ``stack`` until the block ends; yields the base URL (``port`` 0 picks a free port).

    With ``metrics_port`` (``WFR_METRICS_PORT``) the runtime's metrics are served at ``/metrics``
    on that port and on the API's.

    Raises:
        click.ClickException: The address or the metrics port cannot be bound (in use, not local).
    """
    operations = Operations(stack.database, stack.client, registry=stack.registry, domain_task_queue=stack.domain_task_queue)
    async with contextlib.AsyncExitStack() as exits:
        try:
            await exits.enter_async_context(serving_metrics(metrics_port, stack.database))
        except RuntimeError as err:  # the metrics port is taken
            raise click.ClickException(str(err)) from None
        yield await exits.enter_async_context(serving_operations(operations, host, port, access_log=access_log, metrics_route=metrics_port is not None))


@contextlib.asynccontextmanager
async def serving_operations(operations: Operations, host: str, port: int, *, access_log: bool = False, metrics_route: bool = False) -> AsyncIterator[str]:
    """Serve the app over ``operations`` until the block ends; yields its base URL (``port`` 0 picks a free port).

    ``metrics_route`` adds ``/metrics`` (see :func:`create_app`).

    Raises:
        click.ClickException: The address cannot be bound (in use, not local).
    """
    sock = _bind(host, port)
    # log_config=None: uvicorn's lines go through the process's handler (its format, secrets scrubbed)
    config = uvicorn.Config(create_app(operations, metrics_route=metrics_route), lifespan="off", access_log=access_log, log_level="info" if access_log else "warning", log_config=None,
                            timeout_graceful_shutdown=10)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                await task
                raise click.ClickException(f"the API server on {host}:{port} stopped while starting")
            await asyncio.sleep(0.02)
        bound_host, bound_port = sock.getsockname()[:2]
        yield f"http://{f'[{bound_host}]' if ':' in bound_host else bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()


async def serve_until_stopped(stack: Stack, host: str, port: int, announce: Callable[[str], None], *, metrics_port: int | None = None) -> None:
    """Serve the API (with an access log) until SIGINT or SIGTERM; ``announce`` is told the URLs.

    ``metrics_port`` (``WFR_METRICS_PORT``) turns the runtime's metrics on (see :func:`serving`).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serving(stack, host, port, access_log=True, metrics_port=metrics_port) as url:
            announce(f"Studio:   {url}/")
            if metrics_port is not None:
                announce(f"Metrics:  {url}/metrics and port {metrics_port}")
            announce(f"API:      {url}/api/v1   (OpenAPI {url}/api/v1/openapi.json, docs {url}/api/docs)")
            announce("Ctrl-C to stop.")
            await stop.wait()
            announce("stopping …")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
