"""Durable event delivery (signals to waiting runs, triggered starts); run by the workflow-worker.

May touch: ingress's tables, the launcher, persistence, the Temporal client. Never imported by
deterministic workflow code.
"""

from runtime_core.delivery._dispatcher import (
    NOTIFY_CHANNEL,
    Dispatcher,
    delivering,
    event_signal_payload,
    expect,
    forget,
    has_local_dispatcher,
    progress,
    trigger_key,
    wake_local,
)

__all__ = [
    "NOTIFY_CHANNEL", "Dispatcher", "delivering", "event_signal_payload", "expect", "forget", "has_local_dispatcher", "progress", "trigger_key", "wake_local",
]
