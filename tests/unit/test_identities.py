"""IdentityBook: what Finesse said of each credential, for how long, and what a 401 undoes."""

from __future__ import annotations

from tests.conftest import ManualClock
from webproxy.cache.access import Identity
from webproxy.cache.rules import Resource, Scope
from webproxy.identities import IdentityBook

AGENT = "Basic MTAwMDE6ZmluZXNzZQ=="
OTHER = "Basic MTAwMDI6ZmluZXNzZQ=="
WHO = Identity("10001", frozenset({"Agent"}), "5000")
TEAM = Scope(Resource.TEAM_RESOURCE, "5000")
CHAT = Scope(Resource.CHAT_CONFIG)


def book(clock: ManualClock, maxsize: int = 100) -> IdentityBook:
    return IdentityBook(300, timer=clock, maxsize=maxsize)


def test_an_identity_lives_for_the_ttl() -> None:
    clock = ManualClock()
    identities = book(clock)
    identities.bind(AGENT, WHO, asked_at=clock())
    grants = identities.grants(AGENT, TEAM)
    assert grants is not None and grants.identity == WHO
    clock.advance(301)
    assert identities.grants(AGENT, TEAM) is None
    assert len(identities) == 0


def test_an_approval_is_for_its_scope_only() -> None:
    clock = ManualClock()
    identities = book(clock)
    identities.approve(AGENT, TEAM, asked_at=clock())
    grants = identities.grants(AGENT, TEAM)
    assert grants is not None and grants.approved == frozenset({TEAM})
    assert identities.grants(AGENT, CHAT) is None
    assert identities.grants(OTHER, TEAM) is None


def test_a_refusal_forgets_everything_and_an_older_answer_teaches_nothing() -> None:
    clock = ManualClock()
    identities = book(clock)
    identities.bind(AGENT, WHO, asked_at=clock())
    asked_before = clock()
    clock.advance(1)
    identities.forget(AGENT)  # a 401 arrives while an older request is still in flight
    identities.approve(AGENT, TEAM, asked_at=asked_before)  # ... whose 200 lands after it
    identities.bind(AGENT, WHO, asked_at=asked_before)
    assert identities.grants(AGENT, TEAM) is None
    clock.advance(1)
    identities.bind(AGENT, WHO, asked_at=clock())  # signing in again afterwards counts
    assert identities.grants(AGENT, TEAM) is not None


def test_the_book_is_bounded_and_drops_the_oldest() -> None:
    clock = ManualClock()
    identities = book(clock, maxsize=2)
    for user in ("a", "b", "c"):
        identities.bind(f"Basic {user}", WHO, asked_at=clock())
    assert identities.grants("Basic a", TEAM) is None
    assert identities.grants("Basic c", TEAM) is not None
    assert len(identities) == 2


def test_credentials_are_kept_only_as_keyed_digests() -> None:
    identities, other_book = book(ManualClock()), book(ManualClock())
    assert identities.digest(AGENT) != other_book.digest(AGENT)  # a secret key per book
    assert AGENT.encode() not in identities.digest(AGENT)


def test_an_answer_asked_before_the_newest_sign_in_teaches_nothing() -> None:
    clock = ManualClock()
    identities = book(clock)
    old_team = Scope(Resource.TEAM_RESOURCE, "5000")
    moved = Identity("10001", frozenset({"Agent"}), "5001")
    identities.bind(AGENT, WHO, asked_at=clock())
    slow_read_asked = clock()  # a read of team 5000's codes, slow to come back
    clock.advance(1)
    identities.bind(AGENT, moved, asked_at=clock())  # moved to team 5001, signed in again
    clock.advance(1)
    identities.approve(AGENT, old_team, asked_at=slow_read_asked)  # the slow 200 lands
    identities.bind(AGENT, WHO, asked_at=slow_read_asked)  # and a slow old sign-in too
    grants = identities.grants(AGENT, old_team)
    assert grants is not None and grants.identity == moved  # the new team's facts stand
    assert old_team not in grants.approved


def test_learn_reads_an_answer_once_for_all_callers() -> None:
    clock = ManualClock()
    identities = book(clock)
    identities.learn(AGENT, 200, scope=CHAT, asked_at=clock())
    assert identities.grants(AGENT, CHAT) is not None  # a 2xx to the scope's URL approves
    identities.learn(OTHER, 200, asked_at=clock())
    assert identities.grants(OTHER, CHAT) is None  # no scope: nothing to approve
    identities.learn(None, 401)  # no credential: nothing to learn
    identities.learn(AGENT, 403, scope=CHAT, asked_at=clock())
    assert identities.grants(AGENT, CHAT) is not None  # a 403 teaches nothing
    clock.advance(1)
    identities.learn(AGENT, 401)
    assert identities.grants(AGENT, CHAT) is None  # a 401 forgets at once
