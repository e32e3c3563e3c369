"""Frozen records of the simulated Finesse configuration and desktop state."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    """Reason code categories."""

    NOT_READY = "NOT_READY"
    LOGOUT = "LOGOUT"


class BookType(StrEnum):
    """Phone book visibility."""

    GLOBAL = "GLOBAL"
    TEAM = "TEAM"


class Assignable(StrEnum):
    """Config collections assigned to teams through /finesse/api/Team/{id}/<name>."""

    REASON_CODES = "ReasonCodes"
    WRAP_UP_REASONS = "WrapUpReasons"
    PHONE_BOOKS = "PhoneBooks"
    WORKFLOWS = "Workflows"
    LAYOUTS = "MediaPropertiesLayouts"


@dataclass(frozen=True, slots=True)
class ReasonCode:
    id: int
    category: Category
    code: int
    label: str
    for_all: bool
    system_code: bool = False


@dataclass(frozen=True, slots=True)
class WrapUpReason:
    id: int
    label: str
    for_all: bool


@dataclass(frozen=True, slots=True)
class PhoneBook:
    id: int
    name: str
    type: BookType


@dataclass(frozen=True, slots=True)
class Contact:
    id: int
    book_id: int
    first_name: str
    last_name: str
    phone_number: str
    description: str


@dataclass(frozen=True, slots=True)
class ActionVariable:
    name: str
    node: str
    type: str
    test_value: str


@dataclass(frozen=True, slots=True)
class WorkflowAction:
    id: int
    name: str
    type: str
    handled_by: str
    params: tuple[tuple[str, str], ...]
    variables: tuple[ActionVariable, ...]


@dataclass(frozen=True, slots=True)
class Workflow:
    id: int
    name: str
    description: str
    media: str
    trigger: str
    action_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LayoutEntry:
    display_name: str
    media_property: str
    show_in_pop_over: bool = False
    ui_editable: bool = False


@dataclass(frozen=True, slots=True)
class PropertiesLayout:
    """A MediaPropertiesLayout; `type` is DEFAULT or CUSTOM."""

    id: int
    name: str
    description: str
    type: str
    header: tuple[LayoutEntry, ...]
    columns: tuple[tuple[LayoutEntry, ...], ...]


@dataclass(frozen=True, slots=True)
class TeamLayout:
    use_default: bool
    layout_xml: str


@dataclass(frozen=True, slots=True)
class ChatConfig:
    primary_node: str
    secondary_node: str


@dataclass(frozen=True, slots=True)
class EccVariable:
    name: str
    length: int


@dataclass(frozen=True, slots=True)
class MediaDomain:
    id: str
    name: str
    description: str
    interruptible: bool
    max_dialog_limit: int


@dataclass(frozen=True, slots=True)
class Queue:
    id: str
    name: str
    team_id: str


@dataclass(frozen=True, slots=True)
class MobileAgent:
    mode: str
    dial_number: str


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """A user's live state, replaced on every state change."""

    state: str
    changed_at: str
    extension: str
    reason_code_id: int | None = None
    mobile_agent: MobileAgent | None = None


@dataclass(frozen=True, slots=True)
class MediaStatus:
    """A user's state in one non-voice media routing domain."""

    state: str
    changed_at: str
    reason_code_id: int | None = None


@dataclass(frozen=True, slots=True)
class Dialog:
    id: str
    owner: str
    from_address: str
    to_address: str
    state: str
    started_at: str


@dataclass(frozen=True, slots=True)
class TeamMessage:
    id: str
    created_by: str
    created_at: int
    duration: int
    content: str
    teams: tuple[str, ...]
