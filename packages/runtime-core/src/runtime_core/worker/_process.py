"""Process plumbing shared by the worker console scripts (they may not import each other)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Awaitable, Callable

from runtime_core.config import ConfigError, RuntimeSettings
from runtime_core.logs import configure_logging

__all__ = ["serve"]


def serve(name: str, run: Callable[[RuntimeSettings, asyncio.Event], Awaitable[None]], check: Callable[[RuntimeSettings], None] | None = None) -> None:
    """Configure from ``WFR_*`` variables and run until SIGTERM or SIGINT.

    Exit codes: 0 after a clean stop, 2 for a configuration error (the message names the
    variable), 1 when the process cannot start (Temporal unreachable, database not migrated).

    Args:
        name: Process name used in messages.
        run: The process body; it returns once the stop event is set.
        check: Extra configuration check, raising ``ValueError`` subclasses with a fix.
    """
    try:
        settings = RuntimeSettings.from_env()
        if check is not None:
            check(settings)
    except (ConfigError, ValueError) as err:
        print(f"{name}: {err}", file=sys.stderr)
        sys.exit(2)
    configure_logging(name, settings.log_level, settings.log_format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(settings, stop)

    try:
        asyncio.run(main())
    except RuntimeError as err:
        logging.getLogger(name).error("%s", err)
        sys.exit(1)
