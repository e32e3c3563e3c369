"""Singleton config and service calls: ChatConfig, ECCVariableConfig, MediaDomains,
LayoutConfig/default, SystemInfo and UserAuthMode.

No public page documents MediaDomains; the simulator answers ``GET
/finesse/api/MediaDomains`` with ``<MediaDomains><MediaDomain><uri/><id/><name/>
<description/><interruptible/><maxDialogLimit/></MediaDomain>...</MediaDomains>``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Final

from aiohttp import web

from webproxy.sim import body, desktop_xml, render, reply
from webproxy.sim.auth import caller, require_admin
from webproxy.sim.errors import invalid_input, missing
from webproxy.sim.state import SimState

API: Final = "/finesse/api"
OPEN_PATHS: Final = (f"{API}/SystemInfo", f"{API}/UserAuthMode")


class SystemRoutes:
    """Reads open to every authenticated user, writes for administrators."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get(f"{API}/ChatConfig", self.get_chat)
        router.add_put(f"{API}/ChatConfig", self.put_chat)
        router.add_get(f"{API}/ECCVariableConfig", self.get_ecc)
        router.add_get(f"{API}/MediaDomains", self.get_media_domains)
        router.add_get(f"{API}/LayoutConfig/default", self.get_layout)
        router.add_put(f"{API}/LayoutConfig/default", self.put_layout)
        router.add_get(f"{API}/SystemInfo", self.get_system_info)
        router.add_get(f"{API}/UserAuthMode", self.get_auth_mode)

    async def get_chat(self, request: web.Request) -> web.Response:
        return reply.xml(render.chat_config(self.state.chat))

    async def put_chat(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        element = await body.read_xml(request, "ChatConfig")
        self.state.chat = body.chat_config(element, self.state.chat)
        return reply.done()

    async def get_ecc(self, request: web.Request) -> web.Response:
        return reply.xml(render.ecc_config(self.state.ecc))

    async def get_media_domains(self, request: web.Request) -> web.Response:
        return reply.xml(render.media_domains(self.state.media_domains))

    async def get_layout(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        return reply.xml(render.layout_config(self.state.default_layout_xml))

    async def put_layout(self, request: web.Request) -> web.Response:
        require_admin(caller(request))
        element = await body.read_xml(request, "LayoutConfig")
        layout_xml = body.want(element, "layoutxml")
        try:
            ET.fromstring(layout_xml)
        except ET.ParseError as exc:
            raise invalid_input("layoutxml") from exc
        self.state.default_layout_xml = layout_xml
        return reply.done()

    async def get_system_info(self, request: web.Request) -> web.Response:
        """Answers without credentials, as desktops call it before signing in."""
        return reply.xml(desktop_xml.system_info(request.url.host or "finesse.example.com"))

    async def get_auth_mode(self, request: web.Request) -> web.Response:
        """UserAuthMode?username=X: needs no credentials; every user is NON_SSO."""
        login = request.query.get("username")
        if not login:
            raise missing("username")
        return reply.xml(desktop_xml.user_auth_mode(login))
