"""The bundled Cisco Finesse simulator (`webproxy sim`, `webproxy demo`, tests, benchmarks).

Users (`SimData.default()`): teams 5000-5003; agents 10001-10003, 11001-11003, ...;
supervisors 10000, 11000, 12000, 13000; administrator `admin`; every password `finesse`.
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
