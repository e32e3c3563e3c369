"""The configuration a simulator starts with, derived from its teams.

Global (forAll) reason codes and wrap-up reasons, global phone books and the DEFAULT media
properties layout appear in every team; each team also gets its own reason codes, wrap-up
reason, phone book, workflow and layout, so no two teams' TeamResource answers are equal.
Even-indexed teams also get the shared "Coaching" code, odd ones "Survey Offered" and a
custom desktop layout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from webproxy.sim.data import TeamSpec
from webproxy.sim.records import (
    ActionVariable,
    Assignable,
    BookType,
    Category,
    ChatConfig,
    Contact,
    EccVariable,
    LayoutEntry,
    MediaDomain,
    PhoneBook,
    PropertiesLayout,
    Queue,
    ReasonCode,
    TeamLayout,
    Workflow,
    WorkflowAction,
    WrapUpReason,
)

if TYPE_CHECKING:
    from webproxy.sim.state import SimState

GLOBAL_NOT_READY: Final = (("Break", 1), ("Lunch", 2), ("Meeting", 3), ("Training", 4))
GLOBAL_LOGOUT: Final = (("End of Shift", 10), ("Personal", 11))
GLOBAL_WRAP_UPS: Final = ("Resolved", "Escalated", "Callback Scheduled")
DIRECTORY: Final = (
    ("Front", "Desk", "1000", "Reception"),
    ("IT", "Helpdesk", "1100", "Internal IT support"),
    ("Facilities", "Desk", "1200", ""),
    ("HR", "Services", "1300", "Benefits and payroll"),
    ("Security", "Office", "1400", "24x7"),
)
ESCALATIONS: Final = (("Duty", "Manager", "1900", "Out of hours"), ("Legal", "Team", "1910", ""))
LAYOUT_XML: Final = """<finesseLayout xmlns="http://www.cisco.com/vtg/finesse">
  <configs><config key="title" value="{title}"/></configs>
  <layout>
    <role>Agent</role>
    <page><gadget>/desktop/scripts/js/callcontrol.js</gadget></page>
    <tabs><tab><id>home</id><label>{label}</label>
      <columns><column><gadgets>
        <gadget>/desktop/scripts/js/teamPerformance.js</gadget>
      </gadgets></column></columns>
    </tab></tabs>
  </layout>
</finesseLayout>"""


def seed_config(state: SimState) -> None:
    """Fill an empty SimState with the starting configuration."""
    teams = list(state.teams.values())
    seed_reason_codes(state, teams)
    seed_wrap_ups(state, teams)
    seed_books(state, teams)
    seed_workflows(state, teams)
    seed_layouts(state, teams)
    seed_system(state, teams)


def seed_reason_codes(state: SimState, teams: list[TeamSpec]) -> None:
    table = state.reason_codes
    for label, code in GLOBAL_NOT_READY:
        table.insert(ReasonCode, Category.NOT_READY, code, label, True)
    for label, code in GLOBAL_LOGOUT:
        table.insert(ReasonCode, Category.LOGOUT, code, label, True)
    coaching = table.insert(ReasonCode, Category.NOT_READY, 20, "Coaching", False)
    for index, team in enumerate(teams):
        mine = state.assigned(team.id, Assignable.REASON_CODES)
        if index % 2 == 0:
            mine.append(coaching)
        for category, label in ((Category.NOT_READY, "huddle"), (Category.LOGOUT, "early leave")):
            text = f"{team.name} {label}"[:40]
            mine.append(table.insert(ReasonCode, category, 100 + index, text, False))


def seed_wrap_ups(state: SimState, teams: list[TeamSpec]) -> None:
    table = state.wrap_ups
    for label in GLOBAL_WRAP_UPS:
        table.insert(WrapUpReason, label, True)
    survey = table.insert(WrapUpReason, "Survey Offered", False)
    for index, team in enumerate(teams):
        mine = state.assigned(team.id, Assignable.WRAP_UP_REASONS)
        if index % 2 == 1:
            mine.append(survey)
        mine.append(table.insert(WrapUpReason, f"{team.name} follow-up"[:39], False))


def seed_books(state: SimState, teams: list[TeamSpec]) -> None:
    for name, people in (("Company Directory", DIRECTORY), ("Escalation Desk", ESCALATIONS)):
        book = state.books.insert(PhoneBook, name, BookType.GLOBAL)
        for person in people:
            state.contacts.insert(Contact, book, *person)
    for index, team in enumerate(teams):
        book = state.books.insert(PhoneBook, f"{team.name} Contacts", BookType.TEAM)
        state.assigned(team.id, Assignable.PHONE_BOOKS).append(book)
        for k, role in enumerate(("Team Lead", "Backup Lead", "Floor Walker")):
            number, note = f"4{index:03d}{k}", f"{role} for {team.name}"
            state.contacts.insert(Contact, book, team.name, role, number, note)


def seed_workflows(state: SimState, teams: list[TeamSpec]) -> None:
    ani = (ActionVariable("fromAddress", "//Dialog/fromAddress", "SYSTEM", "5551234"),)
    crm_params = (
        ("path", "https://crm.example.com/lookup?ani=${fromAddress}"),
        ("windowName", "crm"),
    )
    log_params = (
        ("method", "POST"),
        ("location", "OTHER"),
        ("contentType", "application/json"),
        ("path", "https://logger.example.com/calls"),
        ("body", '{"ani": "${fromAddress}"}'),
    )
    desk = "FINESSE_DESKTOP"
    crm = state.actions.insert(WorkflowAction, "Open CRM", "BROWSER_POP", desk, crm_params, ani)
    log = state.actions.insert(WorkflowAction, "Log Call", "HTTP_REQUEST", desk, log_params, ani)
    flows = state.workflows
    every = flows.insert(Workflow, "Log every call", "Logs calls", "Voice", "CALL_ARRIVES", (log,))
    for index, team in enumerate(teams):
        name, about = f"{team.name} screen pop", f"CRM pop for {team.name}"
        steps = (crm,) if index % 2 == 0 else (crm, log)
        own = flows.insert(Workflow, name, about, "Voice", "CALL_ANSWERED", steps)
        state.assigned(team.id, Assignable.WORKFLOWS).extend((every, own))


def seed_layouts(state: SimState, teams: list[TeamSpec]) -> None:
    header = (LayoutEntry("Customer", "callVariable1", True),)
    columns = (
        (LayoutEntry("Account", "callVariable2"), LayoutEntry("Order", "callVariable3", True)),
        (LayoutEntry("Language", "user.microapp.locale", False, True),),
    )
    layouts = state.layouts
    layouts.insert(PropertiesLayout, "Default Layout", "For every team", "DEFAULT", header, columns)
    state.default_layout_xml = LAYOUT_XML.format(title="Cisco Finesse", label="Home")
    for index, team in enumerate(teams):
        name, about = f"{team.name} Layout"[:40], f"Calls of {team.name}"
        entries = ((LayoutEntry(f"{team.name} case", f"callVariable{4 + index % 6}"),),)
        own = layouts.insert(PropertiesLayout, name, about, "CUSTOM", header, entries)
        state.assigned(team.id, Assignable.LAYOUTS).append(own)
        if index % 2 == 1:
            xml = LAYOUT_XML.format(title=f"{team.name} desktop", label=team.name)
            state.team_config[team.id].layout = TeamLayout(use_default=False, layout_xml=xml)


def seed_system(state: SimState, teams: list[TeamSpec]) -> None:
    state.chat = ChatConfig("https://chat-a.example.com:5280", "https://chat-b.example.com:5280")
    state.ecc = (
        EccVariable("user.microapp.locale", 5),
        EccVariable("user.customer.id", 40),
        EccVariable("user.case.number", 20),
        EccVariable("user.cisco.cmplus.id", 40),
    )
    state.media_domains = (
        MediaDomain("1", "Cisco_Voice", "Voice calls", False, 1),
        MediaDomain("2", "Chat", "Web chat tasks", True, 3),
        MediaDomain("3", "Email", "Email tasks", True, 5),
    )
    state.queues = {
        str(i + 1): Queue(str(i + 1), f"{team.name} Queue", team.id) for i, team in enumerate(teams)
    }
