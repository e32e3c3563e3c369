"""Finesse User answers and credentials: parsing, Basic user names, and who a credential is."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest

from webproxy.cache.access import Identity
from webproxy.cache.users import (
    USER_PATH,
    FinesseUser,
    basic_username,
    binds_identity,
    identity_of,
    parse_user,
)

# The real sample from API.md 1.3 (Finesse 12.5 UCCE), with a loginName filled in.
AGENT_XML = (
    b"<User><uri>/finesse/api/User/6021</uri><loginId>6021</loginId><loginName>jsmith</loginName>"
    b"<firstName/><lastName/><extension>2830</extension><dialogs>/finesse/api/User/6021/Dialogs"
    b"</dialogs><mediaType>1</mediaType><pendingState/><reasonCodeId>-1</reasonCodeId>"
    b"<roles><role>Agent</role><role>Supervisor</role></roles><settings><wrapUpOnIncoming>"
    b"OPTIONAL</wrapUpOnIncoming><wrapUpOnOutgoing>OPTIONAL</wrapUpOnOutgoing></settings>"
    b"<state>NOT_READY</state><stateChangeTime>2023-01-13T11:21:47.026Z</stateChangeTime>"
    b"<teamId>5005</teamId><teamName>LPU_test</teamName><teams><Team><id>5005</id>"
    b"<name>LPU_test</name><uri>/finesse/api/Team/5005</uri></Team><Team><id>5099</id>"
    b"<name>Other</name><uri>/finesse/api/Team/5099</uri></Team></teams>"
    b"<wrapUpTimer>7200</wrapUpTimer></User>"
)
AGENT = FinesseUser("6021", "jsmith", frozenset({"Agent", "Supervisor"}), "5005")

BILLION_LAUGHS = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    "<User><loginId>&lol3;</loginId></User>"
)
# Harmless to a plain parser, so only the DOCTYPE refusal can reject it.
UTF16_DOCTYPE = (
    '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE User><User><loginId>1</loginId></User>'
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (AGENT_XML, AGENT),
        (
            b'<?xml version="1.0" encoding="UTF-8"?>\n<User>\n  <loginId> 1001 </loginId>\n'
            b"  <roles><role>Agent</role></roles>\n  <teamId>5000</teamId>\n</User>",
            FinesseUser("1001", None, frozenset({"Agent"}), "5000"),
        ),
        (
            b"<User><loginId>admin</loginId><loginName></loginName>"
            b"<roles><role>Administrator</role><role> </role></roles><teamId/></User>",
            FinesseUser("admin", None, frozenset({"Administrator"}), None),
        ),
        (
            "<User><loginId>1001</loginId></User>".encode("utf-16"),
            FinesseUser("1001", None, frozenset(), None),
        ),
        (b"<User><loginId>a&amp;b</loginId></User>", FinesseUser("a&b", None, frozenset(), None)),
        (b"<User><loginId/></User>", None),
        (b"<User><loginName>x</loginName></User>", None),
        (b"<Team><loginId>1</loginId></Team>", None),
        (b"<user><loginId>1</loginId></user>", None),
        (b'<User xmlns="urn:x"><loginId>1</loginId></User>', None),
        (b"<ApiErrors><ApiError><ErrorType>UNAUTHORIZED</ErrorType></ApiError></ApiErrors>", None),
        (b"<User><loginId>1</loginId>", None),
        (b"", None),
        (b"not xml", None),
        (BILLION_LAUGHS.encode(), None),
        (BILLION_LAUGHS.replace("<!DOCTYPE", "<!doctype").encode(), None),
        (BILLION_LAUGHS.encode("utf-16"), None),
        (UTF16_DOCTYPE.encode("utf-16"), None),
        (b"<User><loginId>1</loginId><x>" + b"a" * 300_000 + b"</x></User>", None),
    ],
    ids=[
        "api-md-sample",
        "whitespace-and-declaration",
        "admin-without-team",
        "utf16",
        "predefined-entity",
        "empty-login-id",
        "no-login-id",
        "other-root",
        "lower-case-root",
        "namespaced-root",
        "api-errors",
        "truncated",
        "empty",
        "not-xml",
        "billion-laughs",
        "lower-case-doctype",
        "billion-laughs-utf16",
        "harmless-doctype-utf16",
        "too-large",
    ],
)
def test_parse_user(body: bytes, expected: FinesseUser | None) -> None:
    assert parse_user(body) == expected


def test_a_plain_parser_would_accept_the_utf16_doctype() -> None:
    assert ET.fromstring(UTF16_DOCTYPE.encode("utf-16")).findtext("loginId") == "1"


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("authorization", "expected"),
    [
        (basic("agentbartowski:carmichael"), "agentbartowski"),
        (basic("6021:pa:ss:word"), "6021"),
        (basic("6021:"), "6021"),
        (basic("jörg:x"), "jörg"),
        ("basic " + base64.b64encode(b"a:b").decode(), "a"),
        ("BASIC  " + base64.b64encode(b"a:b").decode() + " ", "a"),
        (basic(":password"), None),
        (basic("nocolon"), None),
        ("Basic", None),
        ("Basic ", None),
        ("Basic !!!", None),
        ("Basic YTp", None),
        ("Basic " + base64.b64encode(b"\xff\xfe:x").decode(), None),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", None),
        ("Digest username=a", None),
        ("", None),
    ],
    ids=[
        "cisco-example",
        "colon-in-password",
        "empty-password",
        "utf8-name",
        "lower-case-scheme",
        "extra-spaces",
        "empty-name",
        "no-colon",
        "scheme-only",
        "scheme-and-space",
        "not-base64",
        "bad-padding",
        "not-utf8",
        "bearer",
        "digest",
        "empty",
    ],
)
def test_basic_username(authorization: str, expected: str | None) -> None:
    assert basic_username(authorization) == expected


SUPERVISOR_NAMED_AFTER_2001 = FinesseUser("6021", "2001", frozenset({"Agent"}), "5005")
"""Agent 6021 whose loginName is supervisor 2001's id: 2001 reading User/6021 binds nothing."""


@pytest.mark.parametrize(
    ("authorization", "path_user_id", "user", "expected"),
    [
        (basic("6021:pw"), "6021", AGENT, True),
        (basic("jsmith:pw"), "6021", AGENT, False),
        (basic("jsmith:pw"), "jsmith", AGENT, False),
        (basic("6021:pw"), "jsmith", AGENT, False),
        (basic("2001:pw"), "6021", SUPERVISOR_NAMED_AFTER_2001, False),
        (basic("2001:pw"), "6021", AGENT, False),
        (basic("admin:pw"), "6021", AGENT, False),
        (basic("6021:pw"), "6022", AGENT, False),
        (basic("6022:pw"), "6022", AGENT, False),
        (basic("JSMITH:pw"), "6021", AGENT, False),
        (basic("6021:pw"), "6021", FinesseUser("6021", None, frozenset({"Agent"}), "5000"), True),
        ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoiNjAyMSJ9.x", "6021", AGENT, False),
        ("Basic !!!", "6021", AGENT, False),
        ("", "6021", AGENT, False),
    ],
    ids=[
        "agent-reading-self-by-id",
        "login-name-credential-never-binds",
        "login-name-path-never-binds",
        "id-credential-login-name-path-never-binds",
        "supervisor-whose-id-is-the-agents-login-name",
        "supervisor-reading-an-agent",
        "admin-reading-an-agent",
        "answer-about-someone-else",
        "caller-matches-path-but-answer-is-another-user",
        "names-are-case-sensitive",
        "no-login-name",
        "bearer-never-binds",
        "malformed-basic",
        "no-credential",
    ],
)
def test_binds_identity(
    authorization: str, path_user_id: str, user: FinesseUser, expected: bool
) -> None:
    assert binds_identity(authorization, path_user_id, user) is expected


def test_identity_of() -> None:
    assert identity_of(AGENT) == Identity("6021", frozenset({"Agent", "Supervisor"}), "5005")


@pytest.mark.parametrize(
    ("path", "user_id"),
    [
        ("/finesse/api/User/6021", "6021"),
        ("/finesse/api/User/jsmith", "jsmith"),
        ("/finesse/api/User/6021/Dialogs", None),
        ("/finesse/api/User/", None),
        ("/finesse/api/Users", None),
        ("/finesse/api/User/6021\n", None),
    ],
    ids=["id", "name", "sub-resource", "no-id", "list", "trailing-newline"],
)
def test_user_path(path: str, user_id: str | None) -> None:
    match = USER_PATH.match(path)
    assert (match[1] if match else None) == user_id
