"""Versioned action registry, extensible through Python entry points."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, overload

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

__all__ = ["ENTRY_POINT_GROUP", "ActionContext", "ActionFailure", "ActionHandler", "ActionRegistry", "ActionSpec"]

log = logging.getLogger(__name__)

#: Entry-point group through which installed packages add actions: each entry point names a
#: callable taking the registry (``def register(registry: ActionRegistry) -> None``).
ENTRY_POINT_GROUP = "runtime_core.actions"


@dataclass
class ActionContext:
    """What an action sees besides its input.

    ``session`` is an ORM session inside the attempt's transaction: what an action writes through
    it commits together with the attempt's ledger row and step row, or not at all. It is created
    on first use, so actions that never touch the database pay nothing for it.
    """

    tenant: str
    run_id: str
    step_id: str
    step_path: str
    seq: int
    item_index: int | None
    attempt: int
    idempotency_key: str
    connection: AsyncConnection
    extras: dict[str, Any] = field(default_factory=dict)
    #: Values of the secrets resolved into this attempt's input (never logged or stored).
    secret_values: list[str] = field(default_factory=list, repr=False)
    _session: AsyncSession | None = field(default=None, init=False, repr=False)

    def without_secrets(self, value: Any) -> Any:
        """``value`` with every string that contains a secret of this attempt redacted.

        Use it for anything the action stores: a resolved secret must never reach the data store
        or any other table (the runtime scrubs outputs and error messages itself).
        """
        from runtime_core.secrets import scrub

        return scrub(value, self.secret_values)

    @property
    def session(self) -> AsyncSession:
        """The attempt's ORM session (it joins the attempt's transaction; it never commits it)."""
        if self._session is None:
            self._session = AsyncSession(bind=self.connection, join_transaction_mode="conservative_savepoint", expire_on_commit=False)
        return self._session

    async def flush(self) -> None:
        """Write what the action left pending in its session, then release the session.

        Raises:
            sqlalchemy.exc.IntegrityError: A pending row broke a constraint.
        """
        if self._session is not None:
            try:
                await self._session.flush()
            finally:
                await self._session.close()
                self._session = None


class ActionFailure(Exception):
    """Raised by an action to report a structured failure.

    ``category`` is ``ActionError`` (default), ``TransientError`` (retryable by nature) or
    ``ValidationError``; any other exception an action raises is an ``ActionError`` carrying the
    exception's text.
    """

    def __init__(self, message: str, *, category: str = "ActionError", code: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Describe the failure.

        Args:
            message: The action's own text; stored as the error's ``message``.
            category: Error category.
            code: Optional machine-readable code, matched by ``retryOn``.
            details: Optional JSON details.
        """
        super().__init__(message)
        self.message = message
        self.category = category
        self.code = code
        self.details = details


ActionHandler = Callable[[ActionContext, Any], Awaitable[Any]]


@dataclass(frozen=True)
class ActionSpec:
    """A registered action version."""

    action_id: str
    version: int
    handler: ActionHandler
    description: str = ""
    #: Whether the handler uses ``ctx.connection``/``ctx.session``. Only then does an attempt
    #: hold a database connection (one transaction with its ledger row) while the handler runs;
    #: an action that calls out or sleeps should say ``False``, or a burst of slow calls holds
    #: every pooled connection.
    uses_database: bool = True
    #: A short action (well under a second, no waiting on the outside world) runs each attempt as
    #: a Temporal local activity in the workflow's own task: one history marker instead of six
    #: events and no round trip through the task queue. The idempotency ledger keeps it
    #: exactly-once when a crashed workflow task runs it again. Default ``False``.
    short: bool = False


class ActionRegistry:
    """Maps ``(action id, version)`` to handlers."""

    def __init__(self) -> None:
        """Create an empty registry."""
        self._actions: dict[tuple[str, int], ActionSpec] = {}

    def register(
        self, action_id: str, version: int, handler: ActionHandler, *, description: str = "", replace: bool = False, uses_database: bool = True, short: bool = False,
    ) -> None:
        """Register a handler.

        Args:
            action_id: The id definitions call (``crm.createTicket``).
            version: Its version.
            handler: ``async def handler(ctx, input) -> output``.
            description: Shown to authors.
            replace: Replace an already registered version.
            uses_database: The handler reads or writes the runtime database through the context
                (its writes then commit with the attempt's ledger row); ``False`` runs it without
                a connection held.
            short: The handler finishes well within a second and waits on nothing slow: its
                attempts run as Temporal local activities (see :attr:`ActionSpec.short`). Runs
                launched after the registration use it; a run keeps what it was launched with.

        Raises:
            ValueError: The version is already registered and ``replace`` is false.
        """
        key = (action_id, version)
        if key in self._actions and not replace:
            raise ValueError(f"action {action_id!r} version {version} is already registered")
        self._actions[key] = ActionSpec(action_id, version, handler, description, uses_database, short)

    @overload
    def action(self, action_id: str, version: int) -> Callable[[ActionHandler], ActionHandler]: ...
    @overload
    def action(self, action_id: str, version: int, *, description: str) -> Callable[[ActionHandler], ActionHandler]: ...

    def action(self, action_id: str, version: int, *, description: str = "") -> Callable[[ActionHandler], ActionHandler]:
        """Decorator form of :meth:`register`."""

        def decorate(handler: ActionHandler) -> ActionHandler:
            self.register(action_id, version, handler, description=description or (handler.__doc__ or "").strip())
            return handler

        return decorate

    def get(self, action_id: str, version: int) -> ActionSpec | None:
        """The registered spec, or ``None``."""
        return self._actions.get((action_id, version))

    def is_registered(self, action_id: str, version: int) -> bool:
        """Whether ``(action_id, version)`` is registered."""
        return (action_id, version) in self._actions

    def short_actions(self) -> list[str]:
        """``id@version`` of every action registered ``short``, sorted (what a launcher pins in :class:`RunOptions`)."""
        return [f"{spec.action_id}@{spec.version}" for spec in self.specs() if spec.short]

    def specs(self) -> list[ActionSpec]:
        """Every registered action, sorted by id and version."""
        return [self._actions[k] for k in sorted(self._actions)]

    def load_entry_points(self) -> None:
        """Run every installed ``runtime_core.actions`` entry point against this registry."""
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            register = ep.load()
            register(self)
            log.debug("loaded actions from entry point %s", ep.value)

    @classmethod
    def default(cls) -> ActionRegistry:
        """A registry with the built-in actions and every installed entry point."""
        from runtime_core.actions._builtins import register_builtins

        registry = cls()
        register_builtins(registry)
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.value == "runtime_core.actions._builtins:register_builtins":
                continue
            ep.load()(registry)
        return registry
