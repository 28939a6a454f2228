"""Headless Chromium for the console's browser tests: Debian's chromium and chromedriver
(hack/browser-packages.sh installs them), driven by Selenium with explicit paths, so Selenium never looks for
a browser or a driver of its own. Flags as this machine needs them (no background networking, no sync, no
component updates: nothing leaves the machine), and a fresh profile each time."""

from __future__ import annotations

import base64
import subprocess
import tempfile
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1360,1000",
)


def install() -> None:
    """Debian's chromium and chromium-driver, if they are not there yet (idempotent, quick when they are)."""
    subprocess.run(["bash", str(REPO_ROOT / "hack" / "browser-packages.sh")], check=True)


def start(profile_root: Path | None = None) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=profile_root)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    return driver


def screenshot(driver: webdriver.Chrome, name: str) -> Path:
    """A full-page PNG under tests/console/artifacts/ (gitignored), for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 4000), "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
