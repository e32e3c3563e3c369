"""Phone book contacts: /finesse/api/PhoneBook/{id}/Contacts and .../Contact/{id} (admin)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from webproxy.sim import body, render, reply
from webproxy.sim.auth import caller, require_admin
from webproxy.sim.errors import not_found
from webproxy.sim.records import Contact
from webproxy.sim.state import SimState

BOOK: Final = "/finesse/api/PhoneBook/{book}"


class ContactRoutes:
    """Contacts of one phone book; every call is admin only."""

    def __init__(self, state: SimState) -> None:
        self.state = state

    def add_to(self, router: web.UrlDispatcher) -> None:
        router.add_get(f"{BOOK}/Contacts", self.list)
        router.add_post(f"{BOOK}/Contact", self.create)
        router.add_get(f"{BOOK}/Contact/{{id}}", self.get)
        router.add_put(f"{BOOK}/Contact/{{id}}", self.update)
        router.add_delete(f"{BOOK}/Contact/{{id}}", self.delete)

    def book_id(self, request: web.Request) -> int:
        """The phone book in the path, after the admin check; 404 if unknown."""
        require_admin(caller(request))
        raw = request.match_info["book"]
        if raw.isdigit() and int(raw) in self.state.books.rows:
            return int(raw)
        raise not_found("PhoneBook", raw)

    def contact(self, request: web.Request) -> Contact:
        book_id = self.book_id(request)
        raw = request.match_info["id"]
        found = self.state.contacts.get(int(raw)) if raw.isdigit() else None
        if found is None or found.book_id != book_id:
            raise not_found("Contact", raw)
        return found

    async def list(self, request: web.Request) -> web.Response:
        return reply.xml(render.contacts(self.state.book_contacts(self.book_id(request))))

    async def get(self, request: web.Request) -> web.Response:
        return reply.xml(render.contact(self.contact(request)))

    async def create(self, request: web.Request) -> web.Response:
        book_id = self.book_id(request)
        element = await body.read_xml(request, "Contact")
        row_id = self.state.contacts.new_id()
        self.state.contacts.put(row_id, body.contact(element, row_id, book_id, None))
        return reply.created(request, f"/finesse/api/PhoneBook/{book_id}/Contact/{row_id}")

    async def update(self, request: web.Request) -> web.Response:
        old = self.contact(request)
        element = await body.read_xml(request, "Contact")
        self.state.contacts.put(old.id, body.contact(element, old.id, old.book_id, old))
        return reply.done()

    async def delete(self, request: web.Request) -> web.Response:
        self.state.contacts.pop(self.contact(request).id)
        return reply.done()
