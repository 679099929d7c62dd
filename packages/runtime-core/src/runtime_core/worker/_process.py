"""Process plumbing shared by the worker console scripts (they may not import each other)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

from runtime_core import tracing
from runtime_core.config import ConfigError, RuntimeSettings
from runtime_core.logs import configure_logging

__all__ = ["serve"]


def _arguments(name: str, argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=name, description=f"Run the {name} process; configured by WFR_* environment variables (docs/operations.md).")
    parser.add_argument(
        "--strict", action="store_true",
        help="exit 1 at start-up when a process that is not a workflow-worker polls workflow-runtime-v2 (same as WFR_STRICT_OWNERSHIP=1)",
    )
    return parser.parse_args(argv)


def serve(
    name: str,
    run: Callable[[RuntimeSettings, asyncio.Event], Awaitable[None]],
    check: Callable[[RuntimeSettings], None] | None = None,
    argv: Sequence[str] | None = None,
) -> None:
    """Configure from ``WFR_*`` variables and the command line, and run until SIGTERM or SIGINT.

    The first SIGTERM or SIGINT sets the stop event: the body stops polling and drains (running
    activities get ``WFR_SHUTDOWN_GRACE_SECONDS``). A second one exits at once with 128 + the
    signal number (143 for SIGTERM, 130 for SIGINT), abandoning in-flight work to Temporal's
    timeouts and retries.

    With tracing configured (``WFR_TRACING``, ``OTEL_EXPORTER_OTLP_ENDPOINT``) the process
    traces as service ``name``, and its last spans are flushed once it has drained.

    Exit codes: 0 after a clean stop, 2 for a configuration error (the message names the
    variable; tracing configured without the OpenTelemetry SDK is one), 1 when the process cannot start (Temporal unreachable, database not migrated,
    a foreign poller of workflow-runtime-v2 under ``--strict``), 143/130 on a second signal.

    Args:
        name: Process name used in messages.
        run: The process body; it returns once the stop event is set.
        check: Extra configuration check, raising ``ValueError`` subclasses with a fix.
        argv: Command-line arguments (``sys.argv[1:]`` when omitted); ``--strict`` is the only one.
    """
    arguments = _arguments(name, argv)
    try:
        settings = RuntimeSettings.from_env()
        if arguments.strict:
            settings = dataclasses.replace(settings, strict_ownership=True)
        if check is not None:
            check(settings)
    except (ConfigError, ValueError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        sys.exit(2)
    configure_logging(name, settings.log_level, settings.log_format)
    try:
        tracing.configure_from_settings(settings, name)
    except ConfigError as err:
        print(f"{name}: {err}", file=sys.stderr)
        sys.exit(2)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if stop.is_set():
                print(f"{name}: {signal.Signals(signum).name} again: exiting now without draining", file=sys.stderr, flush=True)
                os._exit(128 + signum)
            logging.getLogger(name).info(
                "%s: draining (no new tasks; running activities get %ss); send it again to exit at once",
                signal.Signals(signum).name, f"{settings.shutdown_grace_seconds:g}",
            )
            stop.set()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        await run(settings, stop)

    try:
        asyncio.run(main())
    except RuntimeError as err:
        logging.getLogger(name).error("%s", err)
        sys.exit(1)
    finally:
        tracing.shutdown()  # the drained process's last spans reach the collector
