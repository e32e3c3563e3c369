"""Gadget specs as the simulator's Shindig reads and renders them: the XML parsed, the
features a spec requires resolved, its content for a view chosen, and its scripts and
stylesheets pointed at `/gadgets/concat`, as Shindig's rewriter does."""

from __future__ import annotations

import hashlib
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import quote, urlencode, urljoin

CONTAINER_FEATURES: Final = ("core", "rpc")
#: Each feature and the features it needs.
FEATURES: Final[Mapping[str, tuple[str, ...]]] = {
    "core": (),
    "rpc": ("core",),
    "pubsub": ("rpc",),
}
SCRIPT_SRC: Final = re.compile(r"(<script\b[^>]*?\bsrc\s*=\s*)([\"'])(.*?)\2", re.I | re.S)
LINK_TAG: Final = re.compile(r"<link\b[^>]*>", re.I | re.S)
STYLESHEET: Final = re.compile(r"\brel\s*=\s*[\"']?stylesheet\b", re.I)
HREF: Final = re.compile(r"(\bhref\s*=\s*)([\"'])(.*?)\2", re.I | re.S)


class SpecError(ValueError):
    """A gadget spec the simulator can't render (400)."""


@dataclass(frozen=True, slots=True)
class Content:
    views: frozenset[str]
    html: str


@dataclass(frozen=True, slots=True)
class Spec:
    title: str
    required: tuple[str, ...]
    contents: tuple[Content, ...]
    fingerprint: str


def resolve(requested: tuple[str, ...]) -> tuple[str, ...]:
    """Features with what each needs before it, each once; SpecError for an unknown one."""
    ordered: list[str] = []

    def add(name: str) -> None:
        if name not in FEATURES:
            raise SpecError(f"unknown feature: {name!r}")
        for needed in FEATURES[name]:
            add(needed)
        if name not in ordered:
            ordered.append(name)

    for name in requested:
        add(name)
    return tuple(ordered)


def parse_spec(body: bytes) -> Spec:
    """A gadget spec's title, required features and html contents; SpecError otherwise."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SpecError(f"malformed gadget spec: {exc}") from exc
    if root.tag != "Module":
        raise SpecError("not a gadget spec: the root is not <Module>")
    prefs = root.find("ModulePrefs")
    title = "" if prefs is None else prefs.get("title", "")
    required = () if prefs is None else tuple(r.get("feature", "") for r in prefs.iter("Require"))
    resolve(required)
    contents = []
    for node in root.iter("Content"):
        if node.get("type", "html") != "html":
            raise SpecError('the simulator renders only type="html" content')
        views = {view.strip() for view in node.get("view", "default").split(",")}
        contents.append(Content(frozenset(views), node.text or ""))
    if not contents:
        raise SpecError("the gadget spec has no <Content>")
    fingerprint = hashlib.blake2b(body, digest_size=8).hexdigest()
    return Spec(title, required, tuple(contents), fingerprint)


def choose(spec: Spec, view: str) -> str:
    """The content for `view`, else the default view's, else SpecError."""
    for wanted in (view, "default"):
        for content in spec.contents:
            if wanted in content.views:
                return content.html.strip()
    raise SpecError(f"the gadget has no content for view {view!r}")


def rewrite(body: str, spec_url: str, spec: Spec, nocache: bool) -> str:
    """Scripts' `src` and stylesheets' `href` pointed at /gadgets/concat, as Shindig does."""

    def concat(mime: str, match: re.Match[str]) -> str:
        resource = urljoin(spec_url, html.unescape(match[3]))
        params = [("rewriteMime", mime), ("gadget", spec_url), ("fp", spec.fingerprint)]
        params += [("nocache", "1")] if nocache else []
        params.append(("1", resource))
        url = "/gadgets/concat?" + urlencode(params, safe="/:", quote_via=quote)
        return f"{match[1]}{match[2]}{html.escape(url)}{match[2]}"

    def link(tag: re.Match[str]) -> str:
        if STYLESHEET.search(tag[0]) is None:
            return tag[0]
        return HREF.sub(lambda match: concat("text/css", match), tag[0], count=1)

    body = SCRIPT_SRC.sub(lambda match: concat("text/javascript", match), body)
    return LINK_TAG.sub(link, body)
