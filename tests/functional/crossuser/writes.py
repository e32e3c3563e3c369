"""The admin's writes: each changes what some cached reads answer, as the simulator allows.

A write is composed when it runs, from the configuration the simulator holds then (read
straight from it, as the admin): which reason codes exist, which are global, and so on.
Labels and codes carry the write's number, so nothing a write creates collides.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final
from xml.sax.saxutils import escape

API: Final = "/finesse/api"
LAYOUT: Final = (
    '<finesseLayout xmlns="http://www.cisco.com/vtg/finesse"><configs>'
    '<config key="title" value="Drill {number}"/></configs><layout><role>Agent</role>'
    "<page><gadget>/desktop/scripts/js/callcontrol.js</gadget></page></layout></finesseLayout>"
)
CODES: Final = "ReasonCodes?category=ALL"
CREATED: Final = "Drill new"  # the label prefix of rows the drill creates (edits: "Drill")

Lister = Callable[[str], Awaitable[bytes]]
"""An admin GET of a configuration list (a path under /finesse/api), straight from Finesse."""


class WriteKind(StrEnum):
    TEAM_REASON_CODES = "team-reason-codes"
    TEAM_WRAP_UPS = "team-wrap-ups"
    TEAM_PHONE_BOOKS = "team-phone-books"
    TEAM_WORKFLOWS = "team-workflows"
    TEAM_LAYOUTS = "team-layouts"
    TEAM_LAYOUT_CONFIG = "team-layout-config"
    DEFAULT_LAYOUT = "default-layout"
    NEW_REASON_CODE = "new-reason-code"
    EDIT_REASON_CODE = "edit-reason-code"
    DELETE_REASON_CODE = "delete-reason-code"
    NEW_WRAP_UP = "new-wrap-up"
    EDIT_WRAP_UP = "edit-wrap-up"
    DELETE_WRAP_UP = "delete-wrap-up"
    NEW_CONTACT = "new-contact"
    EDIT_WORKFLOW_ACTION = "edit-workflow-action"
    EDIT_LAYOUT = "edit-layout"
    CHAT_CONFIG = "chat-config"
    REFUSED = "refused"  # a malformed body: Finesse answers 400 and changes nothing


@dataclass(frozen=True, slots=True)
class WriteRequest:
    method: str
    target: str  # canonical path and query; the runner spells it
    body: str


@dataclass(frozen=True, slots=True)
class Composer:
    """Composes one write: its random choices, its number, the teams, a way to read lists."""

    rng: random.Random
    number: int
    teams: tuple[str, ...]
    read: Lister

    async def compose(self, kind: WriteKind) -> WriteRequest:
        return await COMPOSERS[kind](self)

    async def rows(self, path: str, tag: str) -> list[ET.Element]:
        return ET.fromstring(await self.read(path)).findall(tag)

    async def assign(
        self, collection: str, item: str, keep: Callable[[ET.Element], bool] = lambda r: True
    ) -> WriteRequest:
        """PUT Team/{id}/<collection>: a random subset of the `keep` rows, replacing the list."""
        rows = [r for r in await self.rows(collection, item) if keep(r)]
        ids = [row_id(r) for r in rows]
        chosen = self.rng.sample(ids, self.rng.randint(0, len(ids)))
        return WriteRequest("PUT", f"{API}/Team/{self.team()}/{collection}", uris(item, chosen))

    def team(self) -> str:
        return self.rng.choice(self.teams)

    def for_all(self) -> str:
        return "true" if self.rng.random() < 0.3 else "false"

    async def team_reason_codes(self) -> WriteRequest:
        category = self.rng.choice(("NOT_READY", "LOGOUT"))
        rows = await self.rows(CODES, "ReasonCode")
        ids = [row_id(r) for r in rows if r.findtext("category") == category and not_for_all(r)]
        chosen = self.rng.sample(ids, self.rng.randint(0, len(ids)))
        target = f"{API}/Team/{self.team()}/ReasonCodes?category={category}"
        return WriteRequest("PUT", target, uris("ReasonCode", chosen, "ReasonCodes"))

    async def team_layout_config(self) -> WriteRequest:
        default = self.rng.random() < 0.3
        xml = "" if default else escape(LAYOUT.format(number=self.number))
        body = (
            f"<TeamLayoutConfig><useDefault>{str(default).lower()}</useDefault>"
            f"<layoutxml>{xml}</layoutxml></TeamLayoutConfig>"
        )
        return WriteRequest("PUT", f"{API}/Team/{self.team()}/LayoutConfig", body)

    async def default_layout(self) -> WriteRequest:
        xml = escape(LAYOUT.format(number=self.number))
        body = f"<LayoutConfig><layoutxml>{xml}</layoutxml></LayoutConfig>"
        return WriteRequest("PUT", f"{API}/LayoutConfig/default", body)

    async def new_reason_code(self) -> WriteRequest:
        n, category = self.number, self.rng.choice(("NOT_READY", "LOGOUT"))
        body = (
            f"<ReasonCode><category>{category}</category><code>{1000 + n}</code>"
            f"<label>{CREATED} {n}</label><forAll>{self.for_all()}</forAll></ReasonCode>"
        )
        return WriteRequest("POST", f"{API}/ReasonCode", body)

    async def edit_reason_code(self) -> WriteRequest:
        code = row_id(self.rng.choice(await self.rows(CODES, "ReasonCode")))
        label = f"<label>Drill {self.number}</label><forAll>{self.for_all()}</forAll>"
        return WriteRequest("PUT", f"{API}/ReasonCode/{code}", f"<ReasonCode>{label}</ReasonCode>")

    async def new_wrap_up(self) -> WriteRequest:
        label = f"<label>{CREATED} {self.number}</label><forAll>{self.for_all()}</forAll>"
        return WriteRequest("POST", f"{API}/WrapUpReason", f"<WrapUpReason>{label}</WrapUpReason>")

    async def edit_wrap_up(self) -> WriteRequest:
        row = row_id(self.rng.choice(await self.rows("WrapUpReasons", "WrapUpReason")))
        label = f"<label>Drill {self.number}</label><forAll>{self.for_all()}</forAll>"
        body = f"<WrapUpReason>{label}</WrapUpReason>"
        return WriteRequest("PUT", f"{API}/WrapUpReason/{row}", body)

    async def delete(self, item: str, plural: str, instead: WriteKind) -> WriteRequest:
        """Delete one the drill created and did not relabel since (the seeded ones stay:
        edits always have a row to change), or create one if there is none."""
        path = CODES if item == "ReasonCode" else plural
        rows = await self.rows(path, item)
        drills = [r for r in rows if (r.findtext("label") or "").startswith(CREATED)]
        if not drills:
            return await self.compose(instead)
        return WriteRequest("DELETE", f"{API}/{item}/{row_id(self.rng.choice(drills))}", "")

    async def new_contact(self) -> WriteRequest:
        book = row_id(self.rng.choice(await self.rows("PhoneBooks", "PhoneBook")))
        n = self.number
        body = (
            f"<Contact><firstName>Drill</firstName><lastName>{n}</lastName>"
            f"<phoneNumber>555{n:05d}</phoneNumber></Contact>"
        )
        return WriteRequest("POST", f"{API}/PhoneBook/{book}/Contact", body)

    async def edit_workflow_action(self) -> WriteRequest:
        action = row_id(self.rng.choice(await self.rows("WorkflowActions", "WorkflowAction")))
        body = f"<WorkflowAction><name>Drill action {self.number}</name></WorkflowAction>"
        return WriteRequest("PUT", f"{API}/WorkflowAction/{action}", body)

    async def edit_layout(self) -> WriteRequest:
        rows = await self.rows("MediaPropertiesLayouts", "MediaPropertiesLayout")
        about = f"<description>Drill {self.number}</description>"
        body = f"<MediaPropertiesLayout>{about}</MediaPropertiesLayout>"
        layout = row_id(self.rng.choice(rows))
        return WriteRequest("PUT", f"{API}/MediaPropertiesLayout/{layout}", body)

    async def chat_config(self) -> WriteRequest:
        node = f"https://chat-{self.number}.example.com:5280"
        body = f"<ChatConfig><primaryNode>{node}</primaryNode></ChatConfig>"
        return WriteRequest("PUT", f"{API}/ChatConfig", body)

    async def refused(self) -> WriteRequest:
        return WriteRequest("PUT", f"{API}/Team/{self.team()}/WrapUpReasons", "<WrapUpReasons")


COMPOSERS: Final[dict[WriteKind, Callable[[Composer], Awaitable[WriteRequest]]]] = {
    WriteKind.TEAM_REASON_CODES: Composer.team_reason_codes,
    WriteKind.TEAM_WRAP_UPS: lambda c: c.assign("WrapUpReasons", "WrapUpReason", not_for_all),
    WriteKind.TEAM_PHONE_BOOKS: lambda c: c.assign("PhoneBooks", "PhoneBook", of_type("TEAM")),
    WriteKind.TEAM_WORKFLOWS: lambda c: c.assign("Workflows", "Workflow"),
    WriteKind.TEAM_LAYOUTS: lambda c: c.assign(
        "MediaPropertiesLayouts", "MediaPropertiesLayout", of_type("CUSTOM")
    ),
    WriteKind.TEAM_LAYOUT_CONFIG: Composer.team_layout_config,
    WriteKind.DEFAULT_LAYOUT: Composer.default_layout,
    WriteKind.NEW_REASON_CODE: Composer.new_reason_code,
    WriteKind.EDIT_REASON_CODE: Composer.edit_reason_code,
    WriteKind.DELETE_REASON_CODE: lambda c: c.delete(
        "ReasonCode", "ReasonCodes", WriteKind.NEW_REASON_CODE
    ),
    WriteKind.NEW_WRAP_UP: Composer.new_wrap_up,
    WriteKind.EDIT_WRAP_UP: Composer.edit_wrap_up,
    WriteKind.DELETE_WRAP_UP: lambda c: c.delete(
        "WrapUpReason", "WrapUpReasons", WriteKind.NEW_WRAP_UP
    ),
    WriteKind.NEW_CONTACT: Composer.new_contact,
    WriteKind.EDIT_WORKFLOW_ACTION: Composer.edit_workflow_action,
    WriteKind.EDIT_LAYOUT: Composer.edit_layout,
    WriteKind.CHAT_CONFIG: Composer.chat_config,
    WriteKind.REFUSED: Composer.refused,
}


def row_id(row: ET.Element) -> int:
    return int((row.findtext("uri") or "").rsplit("/", 1)[1])


def not_for_all(row: ET.Element) -> bool:
    return row.findtext("forAll") == "false"


def of_type(kind: str) -> Callable[[ET.Element], bool]:
    return lambda row: row.findtext("type") == kind


def uris(item: str, ids: list[int], collection: str | None = None) -> str:
    """An assignment body: `<Items><Item><uri>.../Item/id</uri></Item>...</Items>`."""
    plural = collection or f"{item}s"
    body = "".join(f"<{item}><uri>{API}/{item}/{i}</uri></{item}>" for i in ids)
    return f"<{plural}>{body}</{plural}>"
