"""The simulated desktop in headless Chromium, through the proxy (memory store) in front of
the simulator: an agent signs in; the second load (a fresh profile, so the browser's own
cache plays no part) asks Finesse for nothing but the agent's own User, every file, gadget
and configuration read coming from the proxy's caches; the third, `?nocache` on the
desktop URL, asks Finesse for the container page again.

`pytest -s tests/browser` prints what each load asked Finesse.
"""

from __future__ import annotations

import asyncio
import re
import xml.etree.ElementTree as ET

import aiohttp

from tests.browser.chromium import browser
from tests.browser.desktop import Desktop, Load, load_desktop, signed_in_load
from tests.conftest import Proxy, Sim, basic
from webproxy.sim.faults import Fault, FaultKind

AGENT = "10001"  # an agent of team 5000 in the simulator's default data
PASSWORD = "finesse"
TEAM = "5000"
CONTAINER = "/desktop/container/"
#: What the page reads with the agent's credential at sign-in, by path and query.
CONFIG_READS = (
    f"GET /finesse/api/TeamResource/{TEAM}/ReasonCodes?category=NOT_READY",
    f"GET /finesse/api/TeamResource/{TEAM}/ReasonCodes?category=LOGOUT",
    f"GET /finesse/api/TeamResource/{TEAM}/WrapUpReasons",
    f"GET /finesse/api/TeamResource/{TEAM}/PhoneBooks",
    f"GET /finesse/api/TeamResource/{TEAM}/Workflows",
    f"GET /finesse/api/TeamResource/{TEAM}/MediaPropertiesLayouts",
    "GET /finesse/api/ChatConfig",
    "GET /finesse/api/ECCVariableConfig",
    "GET /finesse/api/MediaDomains",
)
PAGE_FILES = (
    f"GET {CONTAINER}",
    "GET /desktop/scripts/finesse.js",
    "GET /desktop/scripts/desktop.js",
    "GET /desktop/css/desktop.css",
    "GET /desktop/images/logo.svg",
)


async def from_finesse(sim: Sim, path: str) -> ET.Element:
    """A read straight from the simulator, with the agent's credential."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(sim.url + path, headers=basic(AGENT, PASSWORD)) as response,
    ):
        assert response.status == 200, path
        return ET.fromstring(await response.read())


def ports(proxy: Proxy) -> list[int]:
    assert proxy.client.port is not None
    return [proxy.client.port]


def url(proxy: Proxy, target: str = CONTAINER) -> str:
    return str(proxy.client.make_url(target))


async def test_an_agent_signs_in_and_a_second_load_is_served_from_the_caches(
    sim: Sim, proxy: Proxy
) -> None:
    user = await from_finesse(sim, f"/finesse/api/User/{AGENT}")
    codes = await from_finesse(
        sim, f"/finesse/api/TeamResource/{TEAM}/ReasonCodes?category=NOT_READY"
    )
    labels = [code.findtext("label") for code in codes.iter("ReasonCode")]
    assert labels, "the simulator's team has NOT_READY reason codes"

    first = await load_desktop(sim.sim, url(proxy), AGENT, PASSWORD, ports(proxy))
    second = await load_desktop(sim.sim, url(proxy), AGENT, PASSWORD, ports(proxy))
    third = await load_desktop(
        sim.sim, url(proxy, CONTAINER + "?nocache"), AGENT, PASSWORD, ports(proxy)
    )
    for name, load in (
        ("first load", first),
        ("second load", second),
        ("third load (?nocache)", third),
    ):
        print(load.report(name))

    for load in (first, second, third):
        assert load.view.status == "signed-in"
        assert load.view.agent_name == f"{user.findtext('firstName')} {user.findtext('lastName')}"
        assert load.view.agent_state == user.findtext("state") == "LOGOUT"
        assert load.view.team_id == user.findtext("teamId") == TEAM
        assert load.view.reason_codes == labels
        assert set(load.view.resources.values()) == {"200"}
        assert len(load.view.resources) == len(CONFIG_READS)
        assert load.counts[f"GET /finesse/api/User/{AGENT}"] == 1  # never cached
        assert_fetched_as_finesse_js_does(load, url(proxy, "/"))
    assert_cold(first)
    assert second.cached_rest() == {}, "the REST cache answered the second load"
    assert third.cached_rest() == {}, "nocache=<ms> is not in the REST cache's key"
    assert third.counts[f"GET {CONTAINER}"] == 1, "?nocache fetches the page from Finesse"
    assert first.desktop_files().keys() >= {"GET /gadgets/ifr", "GET /gadgets/concat"}
    assert second.desktop_files() == {}, "the desktop and shindig caches answered"
    assert second.counts == {f"GET /finesse/api/User/{AGENT}": 1}, "the authmode cache too"
    assert third.desktop_files() == {f"GET {CONTAINER}": 1}, "?nocache refreshes the page only"


def assert_cold(first: Load) -> None:
    """The first load through a new proxy: every read and file reached Finesse once."""
    assert first.cached_rest() == dict.fromkeys(CONFIG_READS, 1)
    assert first.urls[f"GET /finesse/api/UserAuthMode?username={AGENT}"] == 1
    assert {path: first.counts.get(path) for path in PAGE_FILES} == dict.fromkeys(PAGE_FILES, 1)


def assert_fetched_as_finesse_js_does(load: Load, origin: str) -> None:
    """Nothing from elsewhere; every REST GET but UserAuthMode with nocache=<epoch ms>."""
    assert load.fetched, "the browser lists what the page fetched"
    assert [link for link in load.fetched if not link.startswith(origin)] == []
    rest = [link for link in load.fetched if "/finesse/api/" in link]
    assert len(rest) == 1 + 1 + len(CONFIG_READS)
    for link in rest:
        if "/UserAuthMode?" in link:
            assert "nocache" not in link
        else:
            assert re.search(r"[?&]nocache=\d{13}$", link), link


async def test_ready_puts_the_state_and_shows_it_read_again(sim: Sim, proxy: Proxy) -> None:
    async with browser(ports(proxy)) as driver:
        desktop = Desktop(driver)
        load = await signed_in_load(sim.sim, desktop, url(proxy), AGENT, PASSWORD)
        assert load.view.agent_state == "LOGOUT"
        sim.sim.reset_stats()
        view = await asyncio.to_thread(desktop.go_ready)
    assert (view.status, view.agent_state) == ("signed-in", "READY")
    assert sim.sim.state.status[AGENT].state == "READY"
    assert sim.sim.stats() == {
        f"PUT /finesse/api/User/{AGENT}": 1,
        f"GET /finesse/api/User/{AGENT}": 1,
    }


async def test_a_configuration_read_refused_with_403_does_not_break_the_page(
    sim: Sim, proxy: Proxy
) -> None:
    sim.sim.inject(Fault("/finesse/api/ChatConfig", FaultKind.STATUS, status=403))
    load = await load_desktop(sim.sim, url(proxy), AGENT, PASSWORD, ports(proxy))
    assert load.view.status == "signed-in"
    assert load.view.resources["ChatConfig"] == "403"
    assert load.view.resources["ECCVariableConfig"] == "200"
    assert load.view.reason_codes, "the reason codes still show"


async def test_a_wrong_password_shows_finesse_s_401(sim: Sim, proxy: Proxy) -> None:
    load = await load_desktop(sim.sim, url(proxy), AGENT, "wrong", ports(proxy))
    assert load.view.status.startswith("error: 401"), load.view.status
    assert load.cached_rest() == {}, "no configuration read without a user"
