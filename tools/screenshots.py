"""Refresh the screenshots in docs/screenshots/: `make screenshots`.

Starts Bookwise on a throwaway demo database and photographs its pages with the system's
Chromium (Playwright; no browser download).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

# (file name, path, viewport width, height, language)
SHOTS = [
    ("home.png", "/", 1280, 800, "en"),
    ("calendar-fr.png", "/clinique-des-lilas", 1280, 800, "fr"),
    ("calendar-mobile.png", "/bright-minds", 390, 844, "en"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(
            f"database_url: sqlite:///{folder}/shots.db\ninstance_dir: {folder}/instance\n"
            f"workflows: {ROOT / 'workflows'}\nforms: {ROOT / 'forms'}\n"
            f"demo_data: {ROOT / 'demo' / 'calendars.yaml'}\n"
        )
        server = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "bookwise"),
                "run",
                "--config",
                str(config),
                "--port",
                str(port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=2)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                for name, path, width, height, lang in SHOTS:
                    context = browser.new_context(
                        viewport={"width": width, "height": height},
                        locale=lang,
                        extra_http_headers={"Accept-Language": lang},
                    )
                    page = context.new_page()
                    page.goto(base + path)
                    page.screenshot(path=str(OUT / name), full_page=True)
                    context.close()
                    print(f"wrote docs/screenshots/{name}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
