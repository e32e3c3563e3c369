"""Restricted XML for the simulator's XMPP server: streams read as they arrive, whole
documents (WebSocket frames, BOSH bodies), and stanzas written with plain `xmlns`.

RFC 6120 §11 forbids DTDs, comments and processing-instruction tricks in XMPP. Any `<!`
that does not open a CDATA section is refused before expat sees it, so no entity is ever
declared, let alone expanded; an undeclared `&name;` is expat's own not-well-formed error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

CDATA: Final = b"<![CDATA["
MAX_STANZA: Final = 256 * 1024


class XmlRefused(ValueError):
    """Input the server will not read; `condition` names the RFC 6120 stream error."""

    def __init__(self, condition: str) -> None:
        super().__init__(condition)
        self.condition = condition


class MarkupGuard:
    """Refuses `<!` unless it opens a CDATA section, across chunk boundaries."""

    def __init__(self) -> None:
        self.tail = b""

    def check(self, data: bytes) -> None:
        text = self.tail + data
        start = 0
        while (found := text.find(b"<!", start)) != -1:
            ahead = text[found : found + len(CDATA)]
            if len(ahead) < len(CDATA) and CDATA.startswith(ahead):
                break  # undecided until more arrives
            if ahead != CDATA:
                raise XmlRefused("restricted-xml")
            start = found + 2
        self.tail = text[-(len(CDATA) - 1) :]


@dataclass(frozen=True, slots=True)
class Opened:
    """The stream header (its children dropped once read)."""

    header: ET.Element


@dataclass(frozen=True, slots=True)
class Child:
    """One complete top-level element: a stanza, `<auth/>`, ..."""

    element: ET.Element


@dataclass(frozen=True, slots=True)
class Closed:
    """The stream's end tag."""


StreamEvent = Opened | Child | Closed


class StreamParser:
    """One XML stream (RFC 6120 over TCP), fed bytes as they come; XmlRefused on bad input.

    A stream restart (after SASL success) takes a new StreamParser.
    """

    def __init__(self, max_stanza: int = MAX_STANZA) -> None:
        self.parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
        self.guard = MarkupGuard()
        self.depth = 0
        self.root: ET.Element | None = None
        self.unread = 0
        self.max_stanza = max_stanza

    def feed(self, data: bytes) -> list[StreamEvent]:
        self.guard.check(data)
        self.unread += len(data)
        if self.unread > self.max_stanza:
            raise XmlRefused("policy-violation")
        try:
            self.parser.feed(data)
            raw = list(self.parser.read_events())
        except ET.ParseError as exc:
            raise XmlRefused("not-well-formed") from exc
        events = (self.event(item) for item in raw)
        return [event for event in events if event is not None]

    def event(self, item: tuple[object, ...]) -> StreamEvent | None:
        kind, element = item[0], item[-1]
        assert isinstance(element, ET.Element)
        if kind == "start":
            self.depth += 1
            if self.depth == 1:
                self.root = element
                return Opened(element)
            return None
        self.depth -= 1
        if self.depth == 0:
            return Closed()
        if self.depth == 1 and self.root is not None:
            self.root.remove(element)
            self.unread = 0
            return Child(element)
        return None


def parse_document(data: bytes) -> ET.Element:
    """One whole document (a WebSocket message, a BOSH body); XmlRefused on bad input."""
    MarkupGuard().check(data)
    parser = ET.XMLParser()
    try:
        parser.feed(data)
        root: ET.Element = parser.close()
    except ET.ParseError as exc:
        raise XmlRefused("not-well-formed") from exc
    return root


def split(tag: str) -> tuple[str, str]:
    """("namespace", "local") of a parsed tag; the namespace is "" when there is none."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def make(
    tag: str,
    xmlns: str | None = None,
    attrs: Mapping[str, str] | None = None,
    text: str | None = None,
) -> ET.Element:
    """An element to send: `tag` unqualified, its namespace an ordinary `xmlns` attribute;
    attributes whose value is "" are left out."""
    element = ET.Element(tag, {"xmlns": xmlns} if xmlns else {})
    element.attrib.update({k: v for k, v in (attrs or {}).items() if v})
    element.text = text
    return element


def add(parent: ET.Element, *children: ET.Element) -> ET.Element:
    parent.extend(children)
    return parent


def plain(element: ET.Element, parent_ns: str = "") -> ET.Element:
    """A parsed element rewritten for sending: local tags and `xmlns` where it changes."""
    namespace, local = split(element.tag)
    copy = make(local, namespace if namespace != parent_ns else None, text=element.text)
    copy.attrib.update(element.attrib)
    copy.tail = element.tail
    copy.extend(plain(child, namespace) for child in element)
    return copy


def to_text(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")
