"""XML in Finesse's shapes for configuration objects, built with ElementTree."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Final

from webproxy.sim.errors import ApiError
from webproxy.sim.records import (
    ChatConfig,
    Contact,
    EccVariable,
    LayoutEntry,
    MediaDomain,
    PhoneBook,
    PropertiesLayout,
    ReasonCode,
    TeamLayout,
    Workflow,
    WorkflowAction,
    WrapUpReason,
)

API: Final = "/finesse/api"
DECLARATION: Final = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
Value = str | int | bool | None


def leaf(tag: str, value: Value = None) -> ET.Element:
    """An element holding text; booleans as true/false, None as an empty element."""
    element = ET.Element(tag)
    if isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)
    return element


def node(tag: str, *children: ET.Element, **attrs: str) -> ET.Element:
    """An element holding other elements."""
    element = ET.Element(tag, attrs)
    element.extend(children)
    return element


def to_bytes(element: ET.Element) -> bytes:
    """The document as sent: declaration, then UTF-8 XML."""
    body: bytes = ET.tostring(element, encoding="utf-8")
    return DECLARATION + body


def api_errors(error: ApiError) -> ET.Element:
    return node(
        "ApiErrors",
        node(
            "ApiError",
            leaf("ErrorType", error.error_type),
            leaf("ErrorMessage", error.message),
            leaf("ErrorData", error.data),
        ),
    )


def reason_code(rc: ReasonCode) -> ET.Element:
    return node(
        "ReasonCode",
        leaf("uri", f"{API}/ReasonCode/{rc.id}"),
        leaf("category", rc.category.value),
        leaf("code", rc.code),
        leaf("label", rc.label),
        leaf("forAll", rc.for_all),
        leaf("systemCode", rc.system_code),
    )


def reason_codes(rows: Iterable[ReasonCode], category: str | None) -> ET.Element:
    attrs = {} if category is None else {"category": category}
    return node("ReasonCodes", *map(reason_code, rows), **attrs)


def wrap_up(row: WrapUpReason) -> ET.Element:
    return node(
        "WrapUpReason",
        leaf("uri", f"{API}/WrapUpReason/{row.id}"),
        leaf("label", row.label),
        leaf("forAll", row.for_all),
    )


def wrap_ups(rows: Iterable[WrapUpReason]) -> ET.Element:
    return node("WrapUpReasons", *map(wrap_up, rows))


def contact(row: Contact) -> ET.Element:
    return node(
        "Contact",
        leaf("firstName", row.first_name),
        leaf("lastName", row.last_name),
        leaf("phoneNumber", row.phone_number),
        leaf("description", row.description),
        leaf("uri", f"{API}/PhoneBook/{row.book_id}/Contact/{row.id}"),
    )


def contacts(rows: Iterable[Contact]) -> ET.Element:
    return node("Contacts", *map(contact, rows))


def phone_book(book: PhoneBook) -> ET.Element:
    """The config object: contacts by reference."""
    return node(
        "PhoneBook",
        leaf("uri", f"{API}/PhoneBook/{book.id}"),
        leaf("name", book.name),
        leaf("type", book.type.value),
        leaf("contacts", f"{API}/PhoneBook/{book.id}/Contacts"),
    )


def phone_books(rows: Iterable[PhoneBook]) -> ET.Element:
    return node("PhoneBooks", *map(phone_book, rows))


def inline_books(books: Sequence[tuple[PhoneBook, Sequence[Contact]]]) -> ET.Element:
    """TeamResource shape: each book with its contacts inline."""
    return node(
        "PhoneBooks",
        *(
            node(
                "PhoneBook",
                leaf("uri", f"{API}/PhoneBook/{book.id}"),
                leaf("name", book.name),
                leaf("type", book.type.value),
                contacts(rows),
            )
            for book, rows in books
        ),
    )


def workflow_action(row: WorkflowAction) -> ET.Element:
    params = (node("Param", leaf("name", n), leaf("value", v)) for n, v in row.params)
    variables = (
        node(
            "ActionVariable",
            leaf("name", v.name),
            leaf("node", v.node),
            leaf("type", v.type),
            leaf("testValue", v.test_value),
        )
        for v in row.variables
    )
    return node(
        "WorkflowAction",
        leaf("uri", f"{API}/WorkflowAction/{row.id}"),
        leaf("name", row.name),
        leaf("type", row.type),
        leaf("handledBy", row.handled_by),
        node("params", *params),
        node("actionVariables", *variables),
    )


def workflow_actions(rows: Iterable[WorkflowAction]) -> ET.Element:
    return node("WorkflowActions", *map(workflow_action, rows))


def workflow(row: Workflow, actions: Iterable[WorkflowAction]) -> ET.Element:
    trigger = node(
        "TriggerSet",
        leaf("type", "SYSTEM"),
        leaf("name", row.trigger),
        node("triggers"),
    )
    return node(
        "Workflow",
        leaf("uri", f"{API}/Workflow/{row.id}"),
        leaf("name", row.name),
        leaf("description", row.description),
        leaf("media", row.media),
        trigger,
        node("workflowActions", *map(workflow_action, actions)),
    )


def workflows(rows: Iterable[tuple[Workflow, Iterable[WorkflowAction]]]) -> ET.Element:
    return node("Workflows", *(workflow(row, actions) for row, actions in rows))


def layout_entry(entry: LayoutEntry) -> ET.Element:
    return node(
        "entry",
        leaf("displayName", entry.display_name),
        leaf("mediaProperty", entry.media_property),
        leaf("showInPopOver", entry.show_in_pop_over),
        leaf("uiEditable", entry.ui_editable),
    )


def layout(row: PropertiesLayout) -> ET.Element:
    return node(
        "MediaPropertiesLayout",
        leaf("uri", f"{API}/MediaPropertiesLayout/{row.id}"),
        leaf("name", row.name),
        leaf("description", row.description),
        leaf("type", row.type),
        node("header", *map(layout_entry, row.header)),
        *(node("column", *map(layout_entry, column)) for column in row.columns),
    )


def layouts(rows: Iterable[PropertiesLayout]) -> ET.Element:
    return node("MediaPropertiesLayouts", *map(layout, rows))


def layout_config(layout_xml: str) -> ET.Element:
    return node("LayoutConfig", leaf("layoutxml", layout_xml))


def team_layout(row: TeamLayout) -> ET.Element:
    return node(
        "TeamLayoutConfig",
        leaf("useDefault", row.use_default),
        leaf("layoutxml", row.layout_xml),
    )


def chat_config(row: ChatConfig) -> ET.Element:
    return node(
        "ChatConfig",
        leaf("uri", f"{API}/ChatConfig"),
        leaf("primaryNode", row.primary_node),
        leaf("secondaryNode", row.secondary_node),
    )


def ecc_config(rows: Iterable[EccVariable]) -> ET.Element:
    return node(
        "ECCVariableConfig",
        *(node("ECCVariable", leaf("name", v.name), leaf("length", v.length)) for v in rows),
    )


def media_domain(row: MediaDomain) -> ET.Element:
    return node(
        "MediaDomain",
        leaf("uri", f"{API}/MediaDomain/{row.id}"),
        leaf("id", row.id),
        leaf("name", row.name),
        leaf("description", row.description),
        leaf("interruptible", row.interruptible),
        leaf("maxDialogLimit", row.max_dialog_limit),
    )


def media_domains(rows: Iterable[MediaDomain]) -> ET.Element:
    return node("MediaDomains", *map(media_domain, rows))
