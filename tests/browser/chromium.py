"""Debian's headless Chromium under selenium: a fresh profile per browser, nothing fetched.

The driver is Debian's `/usr/bin/chromedriver`, named in `Service`, so selenium-manager
never runs. A missing binary fails the test with the packages to install.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Final

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMEDRIVER: Final = Path("/usr/bin/chromedriver")
FLAGS: Final = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
)
PAGE_LOAD_TIMEOUT: Final = 15.0


def require_chromium() -> None:
    """Fail (never skip) when Debian's chromium or chromium-driver is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} missing: run scripts/test, which installs them, "
            "or apt-get install chromium chromium-driver",
            pytrace=False,
        )


@contextmanager
def chromium(allowed_ports: Iterable[int]) -> Iterator[WebDriver]:
    """A headless Chromium with a new, empty profile, quit on leaving (blocking calls)."""
    require_chromium()
    with tempfile.TemporaryDirectory(
        prefix="webproxy-chromium-", ignore_cleanup_errors=True
    ) as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        ports = ",".join(str(port) for port in sorted(set(allowed_ports)))
        options.add_argument(f"--explicitly-allowed-ports={ports}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
            yield driver
        finally:
            driver.quit()


@asynccontextmanager
async def browser(allowed_ports: Iterable[int]) -> AsyncIterator[WebDriver]:
    """`chromium`, started and quit in a thread so the test's loop keeps serving."""
    stack = ExitStack()
    driver = await asyncio.to_thread(stack.enter_context, chromium(allowed_ports))
    try:
        yield driver
    finally:
        await asyncio.to_thread(stack.close)
