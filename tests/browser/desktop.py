"""The simulated Finesse desktop in a real browser, and what one load of it asks Finesse.

`Desktop` drives the page (blocking selenium calls: run them with `asyncio.to_thread`).
`signed_in_load` opens it and signs in, and returns a `Load`: what the page shows and the
simulator's request counts for that load alone; `load_desktop` does it in a browser of
its own, so a fresh profile (no browser cache).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, cast

from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser.chromium import browser
from webproxy.sim import FinesseSimulator

WAIT: Final = 15.0  # seconds: the deadline of every wait on the page
#: The REST reads the proxy caches (SPEC 4), as /sim/stats names them.
CACHED_REST: Final = re.compile(
    r"GET /finesse/api/(TeamResource/[^/?]+/[^/?]+|ChatConfig|ECCVariableConfig|MediaDomains)"
    r"(\?.*)?"
)
#: The desktop's files and the gadget paths (SPEC 4b's desktop and shindig caches).
DESKTOP_FILES: Final = re.compile(r"GET /(desktop|3rdpartygadget|gadgets)(/.*)?")

VIEW_SCRIPT: Final = """
const text = (id) => { const e = document.getElementById(id); return e ? e.textContent : ""; };
const items = (id) => Array.from(document.querySelectorAll(`#${id} > li`));
const gadget = document.getElementById("gadget");
return {
  status: text("status"),
  agentName: text("agent-name"),
  agentState: text("agent-state"),
  teamId: text("team-id"),
  reasonCodes: items("reason-codes").map((li) => li.textContent),
  resources: Object.fromEntries(
    items("resources").map((li) => [li.dataset.name, li.dataset.status])
  ),
  gadget: gadget ? gadget.dataset.state : null,
};
"""


@dataclass(frozen=True)
class DesktopView:
    """What the page shows."""

    status: str
    agent_name: str = ""
    agent_state: str = ""
    team_id: str = ""
    reason_codes: list[str] = field(default_factory=list)
    resources: dict[str, str] = field(default_factory=dict)  # name -> its read's status
    gadget: str | None = None  # the gadget frame's data-state, once embedded


class Desktop:
    """The container page in one browser."""

    def __init__(self, driver: WebDriver) -> None:
        self.driver = driver

    def view(self) -> DesktopView:
        raw = cast(dict[str, object], self.driver.execute_script(VIEW_SCRIPT))
        resources = cast(dict[str, object], raw["resources"])
        return DesktopView(
            status=str(raw["status"]),
            agent_name=str(raw["agentName"]),
            agent_state=str(raw["agentState"]),
            team_id=str(raw["teamId"]),
            reason_codes=[str(label) for label in cast(list[object], raw["reasonCodes"])],
            resources={str(name): str(status) for name, status in resources.items()},
            gadget=None if raw["gadget"] is None else str(raw["gadget"]),
        )

    def fetched(self) -> list[str]:
        """Every URL the page has fetched (its resource timing entries), in order."""
        script = "return performance.getEntriesByType('resource').map((e) => e.name);"
        return [str(name) for name in cast(list[object], self.driver.execute_script(script))]

    def wait_for(self, what: str, done: Callable[[DesktopView], bool]) -> DesktopView:
        """Poll the page until `done(view)` holds; fail after WAIT seconds, saying why."""
        seen = [DesktopView("(not read yet)")]

        def holds(_: WebDriver) -> bool:
            seen[0] = self.view()
            return done(seen[0])

        try:
            WebDriverWait(self.driver, WAIT, poll_frequency=0.05).until(holds)
        except TimeoutException:
            raise AssertionError(f"no {what} within {WAIT} s; the page shows {seen[0]}") from None
        return seen[0]

    def open(self, url: str) -> None:
        """Load the page and wait until its scripts can sign in."""
        self.driver.get(url)
        self.wait_for("signed-out page", lambda view: view.status == "signed-out")

    def sign_in(self, login: str, password: str) -> DesktopView:
        """Sign in; the view once signed in (and the gadget frame loaded) or failed."""
        self.driver.find_element(By.ID, "username").send_keys(login)
        self.driver.find_element(By.ID, "password").send_keys(password)
        self.driver.find_element(By.ID, "signin").click()
        return self.wait_for("sign-in outcome", settled)

    def go_ready(self) -> DesktopView:
        """Press Ready; the view once the state has been read again."""
        self.driver.find_element(By.ID, "ready").click()
        return self.wait_for("state change", lambda view: view.status != "changing-state")


def settled(view: DesktopView) -> bool:
    """Signed in with the gadget frame loaded, or an error."""
    return view.status.startswith("error:") or (
        view.status == "signed-in" and view.gadget == "loaded"
    )


@dataclass(frozen=True)
class Load:
    """One load of the desktop: what it showed, and what reached the simulator."""

    view: DesktopView
    counts: dict[str, int]  # "METHOD path" -> requests (sim.stats())
    urls: dict[str, int]  # "METHOD path?query" (nocache dropped) -> requests
    fetched: list[str]  # the URLs the page fetched, as the browser saw them

    def cached_rest(self) -> dict[str, int]:
        """The REST reads the proxy caches (by path and query) that reached Finesse."""
        return matching(self.urls, CACHED_REST)

    def desktop_files(self) -> dict[str, int]:
        """The desktop's files and gadget paths (by path) that reached Finesse."""
        return matching(self.counts, DESKTOP_FILES)

    def report(self, name: str) -> str:
        """The counts by path and query, one per line, for `pytest -s`."""
        lines = [f"  {count:3d}  {url}" for url, count in sorted(self.urls.items())]
        return "\n".join([f"{name}: {sum(self.urls.values())} requests reached Finesse", *lines])


def matching(counts: Mapping[str, int], pattern: re.Pattern[str]) -> dict[str, int]:
    return {key: n for key, n in counts.items() if pattern.fullmatch(key)}


async def load_desktop(
    sim: FinesseSimulator, url: str, login: str, password: str, ports: Iterable[int]
) -> Load:
    """`signed_in_load` in a browser of its own (a fresh profile), quit afterwards."""
    async with browser(ports) as driver:
        return await signed_in_load(sim, Desktop(driver), url, login, password)


async def signed_in_load(
    sim: FinesseSimulator, desktop: Desktop, url: str, login: str, password: str
) -> Load:
    """Reset the simulator's counts, open `url` in `desktop`, sign in; that load's counts."""
    sim.reset_stats()
    await asyncio.to_thread(desktop.open, url)
    view = await asyncio.to_thread(desktop.sign_in, login, password)
    fetched = await asyncio.to_thread(desktop.fetched)
    return Load(view, sim.stats(), sim.url_stats(), fetched)
