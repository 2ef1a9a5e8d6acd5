"""JupyterLab driven by headless Chromium, for the browser test and the explorer benchmark: a server of our own on a free
port (config, runtime and settings in a temporary folder, never the user's), Run All from the menu as a user would, and
a client of the notebook's own kernel that reads the state the page changed."""
import contextlib, json, os, re, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path

def _free_port()->int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

@contextlib.contextmanager
def jupyterlab(tmp_path:Path, root:Path):
    "A JupyterLab server of our own on a free port, serving `root`, with its config, runtime and settings under `tmp_path`; stopped by its process group."
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

def run_all(page, url:str, notebook:str, timeout_ms:int=400_000, tries:int=3):
    """Open a notebook fresh, wait for its kernel, and run every cell from the Run menu. On a loaded machine JupyterLab can
    ask which kernel to start although the notebook names one (its "Select Kernel" dialog, when the kernel specs arrive
    late), or replace the kernel it started and lose the queued run (seen in CI: the cells back at "[ ]" beside an idle
    kernel): the dialog is accepted whenever it shows, and a run that stalls is started again, `tries` times in all."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    page.goto(f"{url}/lab/tree/{notebook}?reset")
    page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]', timeout=90_000)
    prompts = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent.trim())"
    def dismiss_dialog():
        dialog = page.locator(".jp-Dialog")
        if dialog.count():
            accept = dialog.locator("button.jp-mod-accept")
            accept.first.click() if accept.count() else page.keyboard.press("Escape")
    def click_run_all()->bool:
        try:
            # activate the notebook's tab first: on a loaded machine the menu's Run All can still be disabled for a moment
            page.locator(".lm-TabBar-tabLabel", has_text=Path(notebook).name).first.click(timeout=15_000)
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click(timeout=15_000)
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click(timeout=15_000)
            return True
        except PlaywrightTimeout:
            page.keyboard.press("Escape"); return False
    deadline, clicks, moved = time.time() + timeout_ms / 1000, 0, 0.0
    while True:
        dismiss_dialog()
        p = page.evaluate(prompts)
        # done when every code cell shows an execution count: no "[*]:" (running or queued) and no "[ ]:" (not yet run)
        if p and all(re.fullmatch(r"\[\d+\]:", t) for t in p): return
        if "[*]:" in p: moved = time.time()                  # running or queued
        elif clicks == 0 or time.time() - moved > 20:        # not started, or stalled: cells left unrun, nothing running
            if clicks == tries:
                raise AssertionError(f"Run → Run All Cells did not run {notebook} in {tries} tries: the prompts read {' '.join(p)}")
            clicks += 1; click_run_all(); moved = time.time()
        if time.time() > deadline:
            raise AssertionError(f"{notebook} did not finish within {timeout_ms / 1000:.0f} s: the prompts read {' '.join(p)}")
        page.wait_for_timeout(1000)

class Kernel:
    "The notebook's own kernel, reached through its connection file: reads the explorer's state as the page changes it."
    def __init__(self, runtime:Path):
        from jupyter_client import BlockingKernelClient
        f = max(runtime.glob("kernel-*.json"), key=os.path.getmtime)
        self.kc = BlockingKernelClient(connection_file=str(f)); self.kc.load_connection_file(); self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
    def __call__(self, code:str):
        "Run `code` (statements, then the expression on its last line) and return that expression's value, via JSON."
        *stmts, expr = code.strip().split("\n")
        out, err = [], []
        def hook(msg):
            if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout": out.append(msg["content"]["text"])
            if msg["msg_type"] == "error": err.append("\n".join(msg["content"]["traceback"]))
        self.kc.execute_interactive("\n".join(stmts + ["import json as _json", f"print('@@' + _json.dumps({expr}))"]), store_history=False,
                                    output_hook=hook, timeout=120)
        if err: raise AssertionError(f"kernel error: {err[0][-2000:]}")
        return json.loads("".join(out).split("@@")[-1])
    def close(self): self.kc.stop_channels()
