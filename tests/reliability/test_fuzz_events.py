"""Fuzzing event ingress: every hostile event is refused with a reason or stored once, never half.

Ingress raised `IntegrityError`, `UnicodeEncodeError` and `TypeError` on fuzzed events, and one
unstorable event failed the other events sent with it. Here 1,200 events per backend (odd names,
keys, ids, tenants and payloads, sent concurrently so that they share group commits) must each end
as an `IngressError` with a message naming the field, or as one stored event; every stored event is
dispatched, and nothing else is stored. Cases are derandomized (the same on every run).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import Any

import pytest
from hypothesis import strategies as st
from sqlalchemy import func, select

from runtime_bootstrap._stack import Stack
from runtime_core.ingress import EventIngress, IngressError
from runtime_core.persistence import RuntimeEvent

from .test_fuzz_edges import JSON_VALUES, KEYS, ODD_STRINGS, _assert_message, _collect, _short, _summary

EVENTS = 1200

_EVENT_CASES: list[Any] = []


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.integers(0, 4).flatmap(lambda n: bad if n == 0 else good)


def _events() -> list[Any]:
    if not _EVENT_CASES:
        plain = st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True)
        _EVENT_CASES.extend(_collect(st.fixed_dictionaries({
            # each field well-formed four times in five, so that many events are stored, in the
            # same group commits as the bad ones
            "name": _mostly(plain, st.one_of(ODD_STRINGS, JSON_VALUES)),
            "key": _mostly(st.one_of(st.none(), plain), st.one_of(ODD_STRINGS, JSON_VALUES)),
            "id": _mostly(st.one_of(st.none(), st.sampled_from(["dup-1", "dup-2"])), st.one_of(ODD_STRINGS, JSON_VALUES)),
            "payload": _mostly(st.dictionaries(st.text(max_size=5), st.integers(-5, 5), max_size=3), st.one_of(JSON_VALUES, st.dictionaries(KEYS, JSON_VALUES, max_size=4))),
            "tenant": _mostly(st.just("own"), st.one_of(ODD_STRINGS, JSON_VALUES)),
            "source": _mostly(st.one_of(st.none(), st.just("fuzz")), ODD_STRINGS),
        }), EVENTS))
    return _EVENT_CASES


async def test_fuzz_events(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """1,200 hostile events per backend, 40 at a time: each refused with a reason or stored once."""
    cases = await asyncio.to_thread(_events)
    tenant = f"fz-{uuid.uuid4().hex[:8]}"
    ingress = EventIngress(stack.database)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    stored: set[str] = set()
    bound = asyncio.Semaphore(40)

    async def send(case: dict[str, Any]) -> None:
        who = tenant if case["tenant"] == "own" else case["tenant"]
        async with bound:
            try:
                result = await ingress.send(who, case["name"], case["key"], case["payload"], event_id=case["id"], source=case["source"], wait=None)
            except IngressError as err:
                _assert_message(err)
                outcomes["IngressError"] += 1
                return
            except Exception as err:
                failures.append(f"{type(err).__name__}: {err!s:.200} for {_short(case)}")
                return
        if who != tenant:
            outcomes["stored for another tenant"] += 1
            return
        if result.duplicate:
            outcomes["duplicate"] += 1
        else:
            outcomes["stored"] += 1
            stored.add(result.event_id)

    await asyncio.gather(*(send(case) for case in cases))
    assert not failures, f"{len(failures)} events did not end cleanly:\n" + "\n".join(failures[:20])
    async with stack.database.sessions() as session:
        rows = (await session.execute(select(RuntimeEvent.event_id, RuntimeEvent.dispatch_status).where(RuntimeEvent.tenant == tenant))).all()
    assert {r.event_id for r in rows} == stored, "what is stored differs from what was accepted"
    for _ in range(100):  # the stack's dispatcher handles every stored event
        async with stack.database.sessions() as session:
            pending = (await session.execute(select(func.count()).select_from(RuntimeEvent).where(RuntimeEvent.tenant == tenant, RuntimeEvent.dispatch_status == "PENDING"))).scalar_one()
        if pending == 0:
            break
        await asyncio.sleep(0.1)
    assert pending == 0, f"{pending} stored events were never dispatched"
    _summary(capsys, f"events [{stack.database.dialect}]: {len(cases)} events tried, 40 at a time; " + ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) + "; 0 other exceptions")
