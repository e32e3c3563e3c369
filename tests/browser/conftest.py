"""Every browser test needs Debian's Chromium: without it they fail, never skip."""

from __future__ import annotations

import pytest

from tests.browser.chromium import require_chromium


@pytest.fixture(autouse=True)
def chromium_installed() -> None:
    require_chromium()
