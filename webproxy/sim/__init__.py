"""The bundled Cisco Finesse simulator (`webproxy sim`, `webproxy demo`, tests, benchmarks).

Users (`SimData.default()`): teams 5000-5003; agents 10001-10003, 11001-11003, ...;
supervisors 10000, 11000, 12000, 13000; administrator `admin`; every password `finesse`.

Live notifications, as Finesse's Notification Service delivers them over XMPP: `xmpp`
(one session: SASL PLAIN, bind, presence, ping), `pubsub` (nodes and the `<Update>`
payloads published after REST changes), and the transports `xmpp_ws` (RFC 7395 at
/ws/), `bosh` (XEP-0124/0206 at /http-bind/) and `xmpp_tcp` (plain RFC 6120 on
`FinesseSimulator(xmpp_port=N)`, `webproxy sim --xmpp-port N`); `xmlstream` reads XML
without DTDs or entities.
"""

from __future__ import annotations

from webproxy.sim.app import FinesseSimulator, run_simulator
from webproxy.sim.data import DEFAULT_PASSWORD, Role, SimData, SimDataError, TeamSpec, UserSpec
from webproxy.sim.faults import Fault, FaultKind

__all__ = [
    "DEFAULT_PASSWORD",
    "Fault",
    "FaultKind",
    "FinesseSimulator",
    "Role",
    "SimData",
    "SimDataError",
    "TeamSpec",
    "UserSpec",
    "run_simulator",
]
