"""Request bodies: XML in, config records out; Finesse's 400s for what is missing or wrong."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Container
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlsplit

from aiohttp import web

from webproxy.sim.errors import invalid_input, malformed, missing
from webproxy.sim.records import (
    ActionVariable,
    BookType,
    Category,
    ChatConfig,
    Contact,
    LayoutEntry,
    PhoneBook,
    PropertiesLayout,
    ReasonCode,
    TeamLayout,
    Workflow,
    WorkflowAction,
    WrapUpReason,
)

EnumT = TypeVar("EnumT", bound=StrEnum)


async def read_xml(request: web.Request, root: str) -> ET.Element:
    """The request's XML document; 400 if it is empty, malformed or not a <root>."""
    raw = await request.read()
    if not raw.strip():
        raise missing(root)
    try:
        element = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise malformed(str(exc)) from exc
    if element.tag != root:
        raise invalid_input(root)
    return element


def text(element: ET.Element, tag: str) -> str | None:
    """A child's text ('' when empty); the last one wins when a tag repeats."""
    found = element.findall(tag)
    return None if not found else (found[-1].text or "").strip()


def want(element: ET.Element, tag: str, current: str | None = None, limit: int = 0) -> str:
    """A required field; on updates, `current` stands in for an absent tag."""
    value = text(element, tag)
    if value is None:
        if current is None:
            raise missing(tag)
        return current
    if limit and len(value.encode()) > limit:
        raise invalid_input(tag)
    return value


def want_int(element: ET.Element, tag: str, current: int | None, low: int, high: int) -> int:
    value = want(element, tag, None if current is None else str(current))
    if not value.isdigit() or not low <= int(value) <= high:
        raise invalid_input(tag)
    return int(value)


def want_bool(element: ET.Element, tag: str, current: bool | None) -> bool:
    value = want(element, tag, None if current is None else str(current).lower()).lower()
    if value not in ("true", "false"):
        raise invalid_input(tag)
    return value == "true"


def want_enum(element: ET.Element, tag: str, kind: type[EnumT], current: EnumT | None) -> EnumT:
    value = want(element, tag, None if current is None else current.value)
    try:
        return kind(value)
    except ValueError as exc:
        raise invalid_input(tag) from exc


def uri_id(uri: str, kind: str) -> int | None:
    """12 from '/finesse/api/ReasonCode/12' (or a full URL of it), else None."""
    path = urlsplit(uri.strip()).path
    prefix = f"/finesse/api/{kind}/"
    tail = path.removeprefix(prefix)
    return int(tail) if path.startswith(prefix) and tail.isdigit() else None


def uri_ids(element: ET.Element, kind: str, known: Container[int]) -> list[int]:
    """Ids of `<kind><uri>...</uri></kind>` children, each required to exist."""
    ids: list[int] = []
    for item in element.findall(kind):
        row_id = uri_id(text(item, "uri") or "", kind)
        if row_id is None or row_id not in known:
            raise invalid_input("uri")
        ids.append(row_id)
    return ids


def reason_code(element: ET.Element, row_id: int, old: ReasonCode | None) -> ReasonCode:
    if old is not None and all(element.find(t) is None for t in ("code", "label", "forAll")):
        raise missing("code")
    return ReasonCode(
        row_id,
        want_enum(element, "category", Category, None if old is None else old.category),
        want_int(element, "code", None if old is None else old.code, 1, 65535),
        want(element, "label", None if old is None else old.label, 40),
        want_bool(element, "forAll", None if old is None else old.for_all),
    )


def wrap_up(element: ET.Element, row_id: int, old: WrapUpReason | None) -> WrapUpReason:
    return WrapUpReason(
        row_id,
        want(element, "label", None if old is None else old.label, 39),
        want_bool(element, "forAll", None if old is None else old.for_all),
    )


def phone_book(element: ET.Element, row_id: int, old: PhoneBook | None) -> PhoneBook:
    return PhoneBook(
        row_id,
        want(element, "name", None if old is None else old.name, 64),
        want_enum(element, "type", BookType, None if old is None else old.type),
    )


def contact(element: ET.Element, row_id: int, book_id: int, old: Contact | None) -> Contact:
    def optional(tag: str, current: str | None) -> str:
        return want(element, tag, current if current is not None else "", 255)

    return Contact(
        row_id,
        book_id,
        optional("firstName", None if old is None else old.first_name),
        optional("lastName", None if old is None else old.last_name),
        want(element, "phoneNumber", None if old is None else old.phone_number, 32),
        optional("description", None if old is None else old.description),
    )


def workflow_action(element: ET.Element, row_id: int, old: WorkflowAction | None) -> WorkflowAction:
    params = old.params if old else ()
    if (found := element.find("params")) is not None:
        params = tuple((want(p, "name"), want(p, "value", "")) for p in found.findall("Param"))
    variables = old.variables if old else ()
    if (found := element.find("actionVariables")) is not None:
        variables = tuple(
            ActionVariable(want(v, "name"), want(v, "node", ""), want(v, "type", "CUSTOM"),
                           want(v, "testValue", ""))
            for v in found.findall("ActionVariable")
        )  # fmt: skip
    action_type = want(element, "type", None if old is None else old.type)
    if action_type not in ("BROWSER_POP", "HTTP_REQUEST"):
        raise invalid_input("type")
    return WorkflowAction(
        row_id,
        want(element, "name", None if old is None else old.name, 64),
        action_type,
        want(element, "handledBy", old.handled_by if old else "FINESSE_DESKTOP"),
        params,
        variables,
    )


def workflow(
    element: ET.Element, row_id: int, old: Workflow | None, actions: Container[int]
) -> Workflow:
    trigger = old.trigger if old else None
    if (found := element.find("TriggerSet")) is not None:
        trigger = want(found, "name")
    if trigger is None:
        raise missing("TriggerSet")
    action_ids = old.action_ids if old else ()
    if (found := element.find("workflowActions")) is not None:
        action_ids = tuple(uri_ids(found, "WorkflowAction", actions))
    return Workflow(
        row_id,
        want(element, "name", None if old is None else old.name, 40),
        want(element, "description", old.description if old else "", 128),
        want(element, "media", old.media if old else "Voice"),
        trigger,
        action_ids,
    )


def layout_entries(parent: ET.Element) -> tuple[LayoutEntry, ...]:
    entries = tuple(
        LayoutEntry(
            want(e, "displayName", ""),
            want(e, "mediaProperty"),
            want_bool(e, "showInPopOver", False),
            want_bool(e, "uiEditable", False),
        )
        for e in parent.findall("entry")
    )
    if len(entries) > 10:
        raise invalid_input("entry")
    return entries


def layout(element: ET.Element, row_id: int, old: PropertiesLayout | None) -> PropertiesLayout:
    header = old.header if old else ()
    if (found := element.find("header")) is not None:
        header = layout_entries(found)
    columns = old.columns if old else ()
    if element.find("column") is not None:
        columns = tuple(layout_entries(c) for c in element.findall("column"))
    if len(columns) > 2:
        raise invalid_input("column")
    kind = want(element, "type", old.type if old else "CUSTOM")
    if kind not in ("DEFAULT", "CUSTOM"):
        raise invalid_input("type")
    return PropertiesLayout(
        row_id,
        want(element, "name", None if old is None else old.name, 40),
        want(element, "description", old.description if old else "", 128),
        kind,
        header,
        columns,
    )


def chat_config(element: ET.Element, old: ChatConfig) -> ChatConfig:
    if element.find("primaryNode") is None and element.find("secondaryNode") is None:
        raise missing("primaryNode")
    return ChatConfig(
        want(element, "primaryNode", old.primary_node),
        want(element, "secondaryNode", old.secondary_node),
    )


def team_layout(element: ET.Element) -> TeamLayout:
    use_default = want_bool(element, "useDefault", None)
    return TeamLayout(use_default, want(element, "layoutxml", "" if use_default else None))
