"""The explorer in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs the explorer tutorial cell by cell as a user would (Run → Run All Cells), then checks that the widget renders,
that the figure holds every point, that the λ slider changes the metric line and the gap, and that clicking a point
lists its neighbours. Screenshots go to the test's tmp folder (or to $XMODAL_SCREENSHOTS when set). The same harness
screenshots the gap tutorial. Needs Debian's `chromium`; without it the test skips, except under CI (`CI` set).
"""
import json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
from browser import launch as launch_chromium, require as require_chromium   # tools/browser.py (conftest puts tools/ on the path)

@pytest.fixture(scope="module")
def browser():
    require_chromium("run the JupyterLab browser test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()

def _free_port()->int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@pytest.fixture
def lab(tmp_path):
    "A JupyterLab server of our own on a free port, serving a copy of the tutorials; stopped by its process group."
    root = tmp_path / "nbs"; shutil.copytree(ROOT / "nbs" / "tutorials", root / "tutorials")
    d = {k: tmp_path / "jupyter" / k for k in ("config", "data", "runtime", "workspaces", "settings")}
    for v in d.values(): v.mkdir(parents=True)
    news = d["settings"] / "@jupyterlab" / "apputils-extension"; news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(d["config"]), "JUPYTER_DATA_DIR": str(d["data"]), "JUPYTER_RUNTIME_DIR": str(d["runtime"]),
           "JUPYTER_PLATFORM_DIRS": "1"}
    port = _free_port()
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.token=",
                             "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={root}",
                             f"--LabApp.workspaces_dir={d['workspaces']}", f"--LabApp.user_settings_dir={d['settings']}",
                             *(["--allow-root"] if os.geteuid() == 0 else [])],
                            env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(120):
            if proc.poll() is not None: raise RuntimeError(f"JupyterLab exited with {proc.returncode}: {(tmp_path / 'jupyterlab.log').read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url + "/api/status", timeout=1); break
            except OSError: time.sleep(0.5)
        else: raise RuntimeError("JupyterLab did not answer within 60 s")
        yield url
    finally:
        # stop what we started, by its process group (the server and the kernels it spawned), never by name
        try: os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError: pass
        try: proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(10)
        log.close()

def _shots(tmp_path)->Path:
    d = Path(os.environ.get("XMODAL_SCREENSHOTS") or tmp_path / "screenshots"); d.mkdir(parents=True, exist_ok=True)
    return d

def _run_all(page, url:str, notebook:str):
    "Open a notebook fresh, wait for its kernel, and run every cell from the Run menu (again if the first click did not start it)."
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page.goto(f"{url}/lab/tree/{notebook}?reset")
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=90_000)
    started = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].some(e => /\\[(\\*|\\d+)\\]/.test(e.textContent))"
    for attempt in range(3):
        # activate the notebook's tab first: on a loaded machine the menu's Run All can still be disabled for a moment
        page.locator(".lm-TabBar-tabLabel", has_text=Path(notebook).name).first.click()
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function(started, timeout=60_000); break
        except PlaywrightTimeout: page.keyboard.press("Escape")
    else: raise AssertionError(f"Run → Run All Cells did not start {notebook} in three tries")
    # done when every code cell shows an execution count: no "[*]:" (running or queued) and no "[ ]:" (not yet run)
    page.wait_for_function("""() => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim());
                                      return p.length > 0 && p.every(t => /^\\[\\d+\\]:$/.test(t)); }""", timeout=400_000)

POINTS = """el => { const gd = el; return gd._fullData.filter(t => /^(images|captions)/.test(t.name)).reduce((n, t) => n + t.x.length, 0); }"""
XY = """el => { const gd = el, L = gd._fullLayout, t = gd._fullData.find(t => /^images/.test(t.name)), r = gd.getBoundingClientRect();
              return [r.left + L.xaxis._offset + L.xaxis.l2p(t.x[0]), r.top + L.yaxis._offset + L.yaxis.l2p(t.y[0])]; }"""

def _gap(text:str)->float:
    return float(re.search(r"gap ‖Δ‖ = (-?[0-9.]+)", text).group(1))

def test_explorer_in_jupyterlab(browser, lab, tmp_path):
    from xmodal_lab.data import shapes
    test = shapes("test", n=400, background="dark")          # the tutorial's first explorer shows this split
    expected = test.n_images + len(test.captions)
    shots = _shots(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        _run_all(page, lab, "tutorials/explorer_tour.ipynb")
        ex = page.locator(".xmodal-explorer").first
        ex.wait_for(timeout=240_000)                          # embedding and the short fine-tuning run first
        plot = ex.locator(".js-plotly-plot").first
        plot.wait_for(timeout=60_000)
        page.wait_for_function("el => el._fullData && el._fullData.length >= 3", arg=plot.element_handle(), timeout=30_000)
        ex.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-1-rendered.png")
        assert plot.evaluate(POINTS) == expected

        line = ex.locator(".xmodal-metrics")
        before = line.inner_text()
        handle = ex.locator(".widget-slider .noUi-handle").first
        handle.focus()
        for _ in range(4): page.keyboard.press("ArrowRight")
        page.wait_for_function("([el, old]) => el.innerText !== old && el.innerText.includes('λ = +0.20')",
                               arg=[line.element_handle(), before], timeout=30_000)
        after = line.inner_text()
        assert _gap(after) < _gap(before), (before, after)    # a positive λ closes the gap
        page.screenshot(path=shots / "explorer-2-shifted.png")

        x, y = plot.evaluate(XY)
        page.mouse.move(x, y)
        ex.locator(".xmodal-hover img").first.wait_for(timeout=30_000)           # hover: the image's thumbnail and captions
        assert "image" in ex.locator(".xmodal-hover").inner_text()
        page.mouse.click(x, y)
        details = ex.locator(".xmodal-details")
        details.locator(".xmodal-neighbours li").first.wait_for(timeout=30_000)
        assert details.locator(".xmodal-neighbours").count() == 2                  # nearest images and nearest captions
        assert details.locator(".xmodal-neighbours li").count() == 10               # five each
        assert "own pair" in details.inner_text()
        page.screenshot(path=shots / "explorer-3-clicked.png", full_page=True)
        offsite = [u for u in requests if not u.startswith((lab, "blob:" + lab, "data:"))]
        assert not offsite, f"requests left 127.0.0.1: {offsite[:5]}"
    except Exception:
        page.screenshot(path=shots / "explorer-failed.png", full_page=True)
        raise
    finally:
        page.close()

def test_gap_tour_in_jupyterlab(browser, lab, tmp_path):
    "Screenshots of the gap tutorial run in JupyterLab: every figure draws."
    shots = _shots(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        _run_all(page, lab, "tutorials/gap_tour.ipynb")
        page.wait_for_function("document.querySelectorAll('.jp-OutputArea .js-plotly-plot').length >= 2", timeout=240_000)
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=240_000)
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] .jp-RenderedText:has-text('Traceback')").count() == 0
        page.locator(".jp-OutputArea .js-plotly-plot").first.scroll_into_view_if_needed()
        page.screenshot(path=shots / "gap-tour-1-projection.png")
        page.locator(".jp-OutputArea .js-plotly-plot").last.scroll_into_view_if_needed()
        page.screenshot(path=shots / "gap-tour-2-sweep.png")
    except Exception:
        page.screenshot(path=shots / "gap-tour-failed.png", full_page=True)
        raise
    finally:
        page.close()
