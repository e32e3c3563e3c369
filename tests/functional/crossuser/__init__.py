"""The randomised cross-user differential suite, shared by tests/functional/test_cross_user.py
and bench/cross_user.py.

Many callers (agents of several teams, supervisors, the administrator, wrong passwords,
a user whose password changes, agents who move between teams) send a seeded random mix
through the proxy: sign-ins, reads of every cached resource under spellings Finesse reads
alike, other teams' resources, `bypassServerCache`; one writer changes what those reads
answer (admin writes through the proxy, password changes and team moves in the simulator),
and cache clears go through the admin listener. Every answer is compared with what the
simulator answers that caller at that moment (see `oracle`).
"""

from tests.functional.crossuser.plan import Mix
from tests.functional.crossuser.population import Population
from tests.functional.crossuser.run import Endpoints
from tests.functional.crossuser.suite import CrossUserConfig, Report, run_cross_user

__all__ = ["CrossUserConfig", "Endpoints", "Mix", "Population", "Report", "run_cross_user"]
