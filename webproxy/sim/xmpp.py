"""One XMPP session as Finesse's Notification Service (Openfire) runs it, whatever carries
the stream: SASL PLAIN against the simulator's users (the credentials of its Basic auth,
loginId or loginName), resource binding, the optional session, presence, XEP-0199 ping,
an empty roster, disco#info, and XEP-0060 subscribe/unsubscribe on `pubsub.<domain>`.

A transport (`xmpp_tcp`, `xmpp_ws`, `bosh`) reads the framing and calls `open` at each
stream start or restart and `receive` for each top-level element; the session answers
through the transport's Link. The domain is the one the client names in its stream
header, as Finesse's SystemInfo names the host it was asked by. `NotificationHub`
(`sim.pubsub`) says which sessions hear which node and sends them the events.
"""

from __future__ import annotations

import base64
import binascii
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, Protocol

from webproxy.sim.auth import verify
from webproxy.sim.data import UserSpec
from webproxy.sim.xmlstream import add, make, plain, split

if TYPE_CHECKING:
    from webproxy.sim.pubsub import NotificationHub

NS_CLIENT: Final = "jabber:client"
NS_STREAM: Final = "http://etherx.jabber.org/streams"
NS_STREAM_ERRORS: Final = "urn:ietf:params:xml:ns:xmpp-streams"
NS_SASL: Final = "urn:ietf:params:xml:ns:xmpp-sasl"
NS_BIND: Final = "urn:ietf:params:xml:ns:xmpp-bind"
NS_SESSION: Final = "urn:ietf:params:xml:ns:xmpp-session"
NS_STANZAS: Final = "urn:ietf:params:xml:ns:xmpp-stanzas"
NS_PING: Final = "urn:xmpp:ping"
NS_ROSTER: Final = "jabber:iq:roster"
NS_DISCO_INFO: Final = "http://jabber.org/protocol/disco#info"
NS_PUBSUB: Final = "http://jabber.org/protocol/pubsub"
NS_PUBSUB_EVENT: Final = "http://jabber.org/protocol/pubsub#event"
DEFAULT_DOMAIN: Final = "finesse.example.com"
DOMAIN: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
CLIENT_NAMESPACES: Final = frozenset({NS_CLIENT, ""})
MAX_AUTH_FAILURES: Final = 3

Handler = Callable[[ET.Element, ET.Element], None]


class Link(Protocol):
    """What a transport lends a session: its stream header, a way to send, and an end."""

    def start(self, domain: str, stream_id: str) -> None: ...

    def send(self, element: ET.Element) -> None: ...

    def end(self) -> None: ...


class XmppSession:
    """A client's stream: unauthenticated, then authenticated, then bound to a resource."""

    def __init__(self, hub: NotificationHub, link: Link) -> None:
        self.hub = hub
        self.link = link
        self.domain = DEFAULT_DOMAIN
        self.stream_id = ""
        self.user: UserSpec | None = None
        self.resource: str | None = None
        self.available = False
        self.restarting = False  # SASL succeeded; the client must open a new stream
        self.challenged = False  # PLAIN without an initial response: waiting for <response>
        self.ended = False
        self.failures = 0
        self.nodes: set[str] = set()
        self.handlers: dict[tuple[str, str, str], Handler] = {
            ("set", NS_BIND, "bind"): self.bind,
            ("set", NS_SESSION, "session"): self.empty_result,
            ("get", NS_PING, "ping"): self.empty_result,
            ("get", NS_ROSTER, "query"): self.roster,
            ("get", NS_DISCO_INFO, "query"): self.disco,
        }

    @property
    def bare(self) -> str:
        return "" if self.user is None else f"{self.user.login_id}@{self.domain}"

    @property
    def jid(self) -> str:
        return self.bare if self.resource is None else f"{self.bare}/{self.resource}"

    # -- the stream -------------------------------------------------------------------
    def open(self, to: str | None) -> None:
        """A stream start or restart: the transport's header, then the features."""
        if self.ended:
            return
        valid = not to or DOMAIN.fullmatch(to) is not None
        if to and valid and self.user is None:
            self.domain = to.lower()
        self.stream_id = self.hub.new_id()
        self.restarting = False
        self.link.start(self.domain, self.stream_id)
        if not valid or (to and to.lower() != self.domain):
            self.fail("host-unknown")
        else:
            self.link.send(self.features())

    def features(self) -> ET.Element:
        features = make("stream:features", attrs={"xmlns:stream": NS_STREAM})
        if self.user is None:
            add(features, add(make("mechanisms", NS_SASL), make("mechanism", text="PLAIN")))
        elif self.resource is None:
            session = add(make("session", NS_SESSION), make("optional"))
            add(features, make("bind", NS_BIND), session)
        return features

    def fail(self, condition: str) -> None:
        """A stream error (RFC 6120 §4.9), then the end of the stream."""
        if self.ended:
            return
        error = make("stream:error", attrs={"xmlns:stream": NS_STREAM})
        self.link.send(add(error, make(condition, NS_STREAM_ERRORS)))
        self.finish()

    def finish(self) -> None:
        """End the stream from this side (after a stream error or the client's close)."""
        if not self.ended:
            self.ended = True
            self.link.end()

    def close(self) -> None:
        """The transport has gone: no more events; the user's other resources see it leave."""
        self.ended = True
        if self.user is None or self.resource is None:
            return
        self.hub.unbind(self)
        if self.available:
            self.available = False
            self.broadcast(make("presence", NS_CLIENT, {"type": "unavailable"}))
        self.resource = None

    # -- what the client sends --------------------------------------------------------
    def receive(self, element: ET.Element) -> None:
        """One top-level element of the stream."""
        if self.ended:
            return
        namespace, name = split(element.tag)
        if self.restarting:
            self.fail("not-authorized")
        elif self.user is None:
            self.before_auth(namespace, name, element)
        elif namespace not in CLIENT_NAMESPACES:
            self.fail("unsupported-stanza-type")
        elif name == "iq":
            self.iq(element)
        elif name not in ("presence", "message"):
            self.fail("unsupported-stanza-type")
        elif self.resource is None:
            self.fail("not-authorized")
        elif name == "presence":
            self.presence(element)
        elif element.get("type") != "error":
            self.refuse(element, "cancel", "service-unavailable")

    def before_auth(self, namespace: str, name: str, element: ET.Element) -> None:
        if namespace != NS_SASL:
            self.fail("not-authorized")
        elif name == "auth" and element.get("mechanism") != "PLAIN":
            self.link.send(sasl_failure("invalid-mechanism"))
        elif name == "auth" and not (element.text or "").strip():
            self.challenged = True
            self.link.send(make("challenge", NS_SASL))
        elif name == "auth" or (name == "response" and self.challenged):
            self.challenged = False
            self.authenticate((element.text or "").strip())
        elif name == "abort":
            self.challenged = False
            self.link.send(sasl_failure("aborted"))
        else:
            self.fail("not-authorized")

    def authenticate(self, response: str) -> None:
        """SASL PLAIN (RFC 4616): authzid NUL authcid NUL password, in base64."""
        try:
            decoded = b"" if response == "=" else base64.b64decode(response, validate=True)
            authzid, authcid, password = decoded.decode("utf-8").split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self.link.send(sasl_failure("incorrect-encoding"))
            return
        user = verify(self.hub.logins, authcid, password)
        if user is None:
            self.failures += 1
            self.link.send(sasl_failure("not-authorized"))
            if self.failures >= MAX_AUTH_FAILURES:
                self.fail("policy-violation")
        elif authzid not in ("", authcid, f"{user.login_id}@{self.domain}"):
            self.link.send(sasl_failure("invalid-authzid"))
        else:
            self.user = user
            self.restarting = True
            self.link.send(make("success", NS_SASL))

    def iq(self, iq: ET.Element) -> None:
        kind = iq.get("type", "")
        if kind in ("result", "error"):
            return
        if kind not in ("get", "set") or len(iq) != 1:
            self.refuse(iq, "modify", "bad-request")
            return
        payload = iq[0]
        namespace, name = split(payload.tag)
        to = iq.get("to", "")
        if self.resource is None and (kind, namespace, name) != ("set", NS_BIND, "bind"):
            self.fail("not-authorized")
        elif to == f"pubsub.{self.domain}":
            self.hub.pubsub_request(self, iq, payload)
        elif to not in ("", self.domain, self.bare, self.jid):
            self.refuse(iq, "cancel", "service-unavailable")
        elif (handler := self.handlers.get((kind, namespace, name))) is not None:
            handler(iq, payload)
        else:
            self.refuse(iq, "cancel", "service-unavailable")

    def bind(self, iq: ET.Element, payload: ET.Element) -> None:
        if self.resource is not None:
            self.refuse(iq, "cancel", "not-allowed")
            return
        wanted = (payload.findtext(f"{{{NS_BIND}}}resource") or "").strip()
        self.resource = self.hub.bind(self, wanted)
        self.result(iq, add(make("bind", NS_BIND), make("jid", text=self.jid)))

    def empty_result(self, iq: ET.Element, payload: ET.Element) -> None:
        self.result(iq)

    def roster(self, iq: ET.Element, payload: ET.Element) -> None:
        self.result(iq, make("query", NS_ROSTER))

    def disco(self, iq: ET.Element, payload: ET.Element) -> None:
        identity = {"category": "server", "type": "im", "name": "Finesse simulator"}
        self.result(iq, disco_info(identity, NS_DISCO_INFO, NS_PING, NS_PUBSUB))

    def presence(self, presence: ET.Element) -> None:
        """Broadcast presence goes to all the user's available resources, this one too
        (RFC 6121 §4.2.2); directed and subscription presence are not modelled."""
        kind = presence.get("type", "")
        if presence.get("to") or kind not in ("", "unavailable"):
            return
        self.available = kind == ""
        self.broadcast(presence, include_self=True)

    def broadcast(self, presence: ET.Element, include_self: bool = False) -> None:
        assert self.user is not None
        for peer in self.hub.resources(self.user.login_id):
            if peer.available or (include_self and peer is self):
                copy = plain(presence)
                copy.attrib.update({"xmlns": NS_CLIENT, "from": self.jid, "to": peer.jid})
                peer.link.send(copy)

    # -- answers ------------------------------------------------------------------------
    def result(self, iq: ET.Element, payload: ET.Element | None = None) -> None:
        reply = self.reply(iq, "result")
        if payload is not None:
            reply.append(payload)
        self.link.send(reply)

    def refuse(self, stanza: ET.Element, kind: str, condition: str) -> None:
        """A stanza error (RFC 6120 §8.3) back to the sender."""
        error = add(make("error", attrs={"type": kind}), make(condition, NS_STANZAS))
        self.link.send(add(self.reply(stanza, "error"), error))

    def reply(self, stanza: ET.Element, kind: str) -> ET.Element:
        attrs = {"type": kind, "id": stanza.get("id", ""), "from": stanza.get("to", "")}
        attrs["to"] = self.jid if self.resource is not None else ""
        return make(split(stanza.tag)[1], NS_CLIENT, attrs)

    def event(self, node: str, item_id: str, notification: str) -> None:
        """A XEP-0060 event: the node's item, the Finesse <Update> as escaped text."""
        attrs = {"from": f"pubsub.{self.domain}", "to": self.jid, "id": item_id}
        item = add(
            make("item", attrs={"id": item_id}), make("notification", NS_PUBSUB, text=notification)
        )
        items = add(make("items", attrs={"node": node}), item)
        self.link.send(
            add(make("message", NS_CLIENT, attrs), add(make("event", NS_PUBSUB_EVENT), items))
        )


def sasl_failure(condition: str) -> ET.Element:
    return add(make("failure", NS_SASL), make(condition))


def disco_info(identity: dict[str, str], *features: str) -> ET.Element:
    query = add(make("query", NS_DISCO_INFO), make("identity", attrs=identity))
    return add(query, *(make("feature", attrs={"var": var}) for var in features))
