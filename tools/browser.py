"""The one headless Chromium of the project: the docs check (`tools/docs_html.py`) and the browser tests drive Debian's
`chromium` through Playwright for Python, never Playwright's own download (it needs the internet)."""
import os, shutil
from pathlib import Path

# no sandbox (containers run as root), /tmp instead of a small /dev/shm, and WebGL through SwiftShader (no GPU)
ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]

def chromium_path()->str|None:
    "The system Chromium's executable, or None."
    return next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium") if p and Path(p).exists()), None)

def launch(playwright):
    "A headless Chromium browser from a started `sync_playwright()`, with the project's flags."
    exe = chromium_path()
    if exe is None: raise SystemExit("no Chromium: install Debian's chromium (apt-get install chromium, as root)")
    return playwright.chromium.launch(executable_path=exe, args=ARGS)

def require(what:str)->str:
    "The Chromium executable for a test; without one the test skips, except under CI (`CI` set), where it fails."
    exe = chromium_path()
    if exe: return exe
    import pytest
    msg = f"no Chromium: install Debian's chromium (apt-get install chromium, as root) to {what}"
    if os.environ.get("CI"): pytest.fail(f"CI must {what}: {msg}")
    pytest.skip(msg)
