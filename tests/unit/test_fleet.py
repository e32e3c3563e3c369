"""Workers of one group tell one another what they forget (`webproxy.fleet`)."""

from __future__ import annotations

import os
import secrets

import pytest

from tests.conftest import ManualClock
from webproxy.cache.access import Identity
from webproxy.cache.rules import Resource, Scope
from webproxy.fleet import EventKind, IdentityEvents
from webproxy.identities import IdentityBook

AGENT = "Basic MTAwMDE6ZmluZXNzZQ=="
OTHER = "Basic MTAwMDI6ZmluZXNzZQ=="
WHO = Identity("10001", frozenset({"Agent"}), "5000")
ELSE = Identity("10002", frozenset({"Agent"}), "5001")
TEAM = Scope(Resource.TEAM_RESOURCE, "5000")
CHAT = Scope(Resource.CHAT_CONFIG)


def group(clock: ManualClock, slots: int = 16) -> tuple[IdentityBook, IdentityBook]:
    """Two workers' books, as the supervisor would give them: one key, one ring."""
    key, events = secrets.token_bytes(32), IdentityEvents(slots)
    first = IdentityBook(300, timer=clock, key=key, events=events)
    return first, IdentityBook(300, timer=clock, key=key, events=events)


def test_a_credential_one_worker_forgets_gets_nothing_from_another() -> None:
    clock = ManualClock()
    first, second = group(clock)
    for book in (first, second):
        book.bind(AGENT, WHO, asked_at=clock())
        book.approve(AGENT, CHAT, asked_at=clock())
        book.bind(OTHER, ELSE, asked_at=clock())
    first.forget(AGENT)  # Finesse said 401 through the first worker
    assert second.grants(AGENT, TEAM) is None
    assert second.grants(AGENT, CHAT) is None
    assert second.grants(OTHER, Scope(Resource.TEAM_RESOURCE, "5001")) is not None
    asked_before = clock()
    clock.advance(1)
    second.bind(AGENT, WHO, asked_at=asked_before - 1)  # an answer sent before the 401
    assert second.grants(AGENT, TEAM) is None


def test_admin_clears_of_a_team_or_of_everything_reach_every_worker() -> None:
    clock = ManualClock()
    first, second = group(clock)
    second.bind(AGENT, WHO, asked_at=clock())
    second.bind(OTHER, ELSE, asked_at=clock())
    first.forget_team("5000")
    assert second.grants(AGENT, TEAM) is None
    assert second.grants(OTHER, Scope(Resource.TEAM_RESOURCE, "5001")) is not None
    first.clear()
    assert second.grants(OTHER, Scope(Resource.TEAM_RESOURCE, "5001")) is None


def test_a_worker_that_missed_events_forgets_all_it_learned() -> None:
    clock = ManualClock()
    first, second = group(clock, slots=4)
    second.bind(OTHER, ELSE, asked_at=clock())
    for n in range(5):  # more than the ring holds before the second looks
        first.forget(f"Basic {n}")
    assert second.grants(OTHER, Scope(Resource.TEAM_RESOURCE, "5001")) is None


def test_a_digest_ending_in_zero_bytes_is_carried_whole() -> None:
    events = IdentityEvents(8)
    digest = b"\x01" * 14 + b"\0\0"
    sequence = events.publish(EventKind.FORGET, digest)
    seen, news = events.read(sequence - 1)
    assert seen == sequence and news is not None
    assert news[0].payload == digest


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the ring is shared across fork")
def test_an_event_published_in_a_forked_worker_is_read_by_its_sibling() -> None:
    events = IdentityEvents(8)
    pid = os.fork()
    if pid == 0:  # the child: a worker that saw a 401
        events.publish(EventKind.FORGET, b"d" * 16)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    seen, news = events.read(0)
    assert seen == 1 and news is not None and news[0].payload == b"d" * 16
