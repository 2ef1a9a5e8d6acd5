"""The explorer's interactions: kernel side up to 1,000,000 points, and in the browser against jupyter-scatter.

Kernel side (`--kernel`, the default part): 5,000, 200,000 and 1,000,000 points (half images, half captions, D = 512):
construction (sample, gap plane, closing shift, widget), then a λ move, a click, a colour change, a filter, a caption
search and a select-500, each timed in-process; the shown sample is at most 50,000 points, the metric line 5,000
images, a click ranks against the whole set.

Browser (`--browser`): JupyterLab in headless Chromium (software WebGL), 20,000 and 200,000 points *all shown*, the
whole explorer on its two engines, each alone in its own JupyterLab, page and kernel, the same calls: `Explorer(..., engine="plotly")` (a plotly `FigureWidget`) and the
default `engine="jupyter-scatter"` (regl-scatterplot). Each action starts in the kernel (or with the mouse, for hover
and click) and ends when the plot's pixels stop changing: action-to-redraw, printed beside the kernel-side part of it,
with the kernel memory each explorer adds. Needs Debian's chromium.

Usage: python bench/explore.py [--kernel] [--browser] [--sizes 20000 200000] [--skip-big]
"""
import argparse, json, os, sys, tempfile, threading, time
from pathlib import Path
import torch
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "tools")]
from xmodal_lab.core import Embeddings

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]

def data(n, d=512, seed=0):
    "n pairs of unit vectors in two cones, matched pairs close; a six-valued label; captions naming it."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * 0.5 + 1.0 * torch.randn(d, generator=g)
    y = x + 0.6 * torch.randn(n, d, generator=g) - 0.8 * torch.randn(d, generator=g)
    c = torch.arange(n) % 6
    return Embeddings(x, y, labels={"c": c}, label_names={"c": COLOURS}, captions=[f"item {i}, a {COLOURS[i % 6]} one" for i in range(n)])

def timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t

def kernel_side(n:int)->tuple:
    "Seconds per interaction, in-process, for n pairs (2n points)."
    from xmodal_lab.explore import Explorer
    e = data(n)
    rows = {}
    t = time.perf_counter(); ex = Explorer(e); ex.widget; rows["build (closing shift, widget, first figure)"] = time.perf_counter() - t
    ex.set_state(lam=0.05)                                                # warm-up
    rows["λ move"] = min(timed(lambda l=l: ex.set_state(lam=l)) for l in (0.1, 0.2, 0.3))
    rows["click (pairs + neighbours on the whole set)"] = min(timed(lambda i=i: ex.select("image", i)) for i in (1, 2, 3))
    rows["colour by own-pair rank (first)"] = timed(lambda: ex.set_state(color_by="own-pair rank"))
    ex.set_state(color_by="modality")
    rows["colour by own-pair rank (cached)"] = timed(lambda: ex.set_state(color_by="own-pair rank"))
    rows["filter (one label value)"] = timed(lambda: ex.filter(values={"c": ["red"]})); ex.filter()
    rows["search (substring, all captions)"] = timed(lambda: ex.search("red"))
    rows["select 500"] = timed(lambda: ex.select(indices={"image": range(500)}))
    return rows, ex

# ---------------------------------------------------------------------------------------------------------- browser
SETUP = """
import os, time, sys, numpy as np, pandas as pd
sys.path.insert(0, {bench!r})
from explore import data
from xmodal_lab.explore import Explorer
def rss(): return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
e = data({n})
"""
BUILD = """
m0, t0 = rss(), time.perf_counter()
ex = Explorer(e, max_points=10**9, color_by="c", engine={engine!r})
w = ex.widget
build, mem = time.perf_counter() - t0, rss() - m0
w
"""

def notebook(folder:Path, n:int, engine:str)->str:
    "A notebook that builds one explorer on `engine` over n pairs (2n points, all shown)."
    import nbformat
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell(SETUP.format(bench=str(ROOT / "bench"), n=n // 2)),
                nbformat.v4.new_code_cell(BUILD.format(engine=engine))]
    nbformat.write(nb, folder / "bench.ipynb")
    return "bench.ipynb"

# each action: (name, kernel code) on the page's explorer `ex`; the kernel part is timed inside the kernel. The first λ move
# pays for the first shift of the metric sample and the whole set's z·s; the second is any later call with the metric line;
# the slider step after it is one press of → on the slider, as a drag moves it: the cloud redrawn, the metric line later.
ACTIONS = [
    ("λ move (first)", "ex.set_state(lam=0.3)"),
    ("λ move", "ex.set_state(lam=0.5)"),
    ("colour change", "ex.set_state(color_by='modality')"),
    ("filter (one label value)", "ex.filter(values={'c': ['red']})"),
    ("search (substring)", "ex.filter(); ex.search('red')"),
    ("select 500", "ex.select(indices={'image': range(500)})"),
]

def until_stable(page, clip, before:bytes, t0:float, limit:float=60.0, busy=lambda: False)->float:
    "Seconds from t0 until the region's pixels differ from `before` and then hold still for two screenshots, the kernel done (`busy` false)."
    last, changed_at = before, None
    while time.perf_counter() - t0 < limit:
        shot = page.screenshot(clip=clip)
        if shot != last: changed_at, last = time.perf_counter(), shot
        elif changed_at is not None and not busy(): return changed_at - t0   # a pause while the kernel still works is not the end
    return float("nan")

def run_action(page, k, clip, code:str)->tuple:
    "(browser seconds to a still redraw, kernel seconds) for one kernel-side action."
    before = page.screenshot(clip=clip)
    out = {}
    def go(): out["kernel"] = k(f"import time as _t\n_t0 = _t.perf_counter()\n{code}\n_t.perf_counter() - _t0")
    t0 = time.perf_counter(); th = threading.Thread(target=go); th.start()
    browser = until_stable(page, clip, before, t0, busy=th.is_alive)
    th.join()
    return browser, out["kernel"]

def run_mouse(page, clip, x, y, click:bool)->float:
    before = page.screenshot(clip=clip)
    t0 = time.perf_counter()
    page.mouse.click(x, y) if click else page.mouse.move(x, y)
    return until_stable(page, clip, before, t0)

XY = """el => { const L = el._fullLayout, t = el._fullData.find(t => /^images/.test(t.name)), r = el.getBoundingClientRect();
               return [r.left + L.xaxis._offset + L.xaxis.l2p(t.x[0]), r.top + L.yaxis._offset + L.yaxis.l2p(t.y[0])]; }"""

def point_xy(page, plot)->tuple:
    "Page position of the first image in the plotly figure."
    return tuple(plot.evaluate(XY))

SCATTER = "id => [...document.querySelectorAll('[id=\"' + id + '\"]')].find(e => e.api)"   # the element regl-scatterplot's API hangs on

def scatter_xy(page, k)->tuple:
    "Page position of the first image in jupyter-scatter: regl-scatterplot's own getScreenPosition, relative to its canvas."
    did = k("ex._sc.widget.dom_element_id")
    return tuple(page.evaluate(f"id => {{ const el = ({SCATTER})(id), r = el.getBoundingClientRect(), p = el.api.getScreenPosition(0); return [r.left + p[0], r.top + p[1]]; }}", did))

def browser_side(n:int, tmp:Path, engine:str)->dict:
    """One engine at n points, alone in its own JupyterLab, page and kernel: {row: (browser s, kernel s)}, the build and the memory.
    (Two explorers in one page share two cores with each other's rendering, and each slows the other's every action.)"""
    from playwright.sync_api import sync_playwright
    from browser import launch
    from lab import jupyterlab, run_all, Kernel
    root = tmp / "nbs"; root.mkdir(parents=True)
    name = notebook(root, n, engine)
    rows = {}
    with jupyterlab(tmp, root) as url, sync_playwright() as p:
        b = launch(p); page = b.new_page(viewport={"width": 1500, "height": 1400})
        run_all(page, url, name, timeout_ms=1_800_000)
        k = Kernel(tmp / "jupyter" / "runtime")
        try:
            if engine == "plotly":
                loc = page.locator(".xmodal-explorer .js-plotly-plot").first
                page.wait_for_function("el => el._fullData && el._fullData.length >= 7", arg=loc.element_handle(), timeout=600_000)
            else:
                loc = page.locator(".xmodal-cloud canvas").first
                page.wait_for_function(f"id => {{ const el = ({SCATTER})(id); return el && el.api.get('points').length === {n}; }}",
                                       arg=k("ex._sc.widget.dom_element_id"), timeout=600_000)
            page.wait_for_timeout(3000)
            print(f"  {n:,} points, {engine}: drawn", file=sys.stderr, flush=True)
            rows["build (kernel)"], rows["kernel memory added (MB)"] = k("build"), k("mem")   # the Explorer and its widget
            loc.scroll_into_view_if_needed(); page.wait_for_timeout(1000)
            bb = loc.bounding_box(); clip = dict(x=bb["x"], y=bb["y"], width=min(bb["width"], 700), height=min(bb["height"], 560))
            cx, cy = point_xy(page, loc) if engine == "plotly" else scatter_xy(page, k)
            page.mouse.move(bb["x"] + 2, bb["y"] + 2); page.wait_for_timeout(500)
            rows["hover"] = (run_mouse(page, clip, cx, cy, False), float("nan"))
            rows["click"] = (run_mouse(page, clip, cx, cy, True), float("nan"))
            print(f"  {n:,} {engine:<16} hover, click {rows['hover']} {rows['click']}", file=sys.stderr, flush=True)
            page.mouse.move(bb["x"] + 2, bb["y"] + 2); page.wait_for_timeout(500)
            for label, code in ACTIONS:
                rows[label] = run_action(page, k, clip, code)
                print(f"  {n:,} {engine:<16} {label:<26} {rows[label]}", file=sys.stderr, flush=True)
                if label == "λ move":                 # then as a user drags: one step of the slider, throttled, the metric line after
                    handle = page.locator(".xmodal-explorer .widget-slider .noUi-handle").first
                    handle.focus(); loc.scroll_into_view_if_needed(); page.wait_for_timeout(1500)
                    bb = loc.bounding_box(); clip = dict(x=bb["x"], y=bb["y"], width=min(bb["width"], 700), height=min(bb["height"], 560))
                    before = page.screenshot(clip=clip); t0 = time.perf_counter()
                    page.keyboard.press("ArrowRight")
                    rows["λ slider step"] = (until_stable(page, clip, before, t0), float("nan"))
                    print(f"  {n:,} {engine:<16} λ slider step {rows['λ slider step']}", file=sys.stderr, flush=True)
                    page.wait_for_timeout(1500)                # the metric line's 0.4 s rest, and its computation
        finally:
            k.close(); b.close()
    return rows

def print_browser(n:int, rows:dict):
    print(f"\nBrowser, {n:,} points all shown (JupyterLab, headless Chromium, software WebGL), each engine in its own page and kernel;")
    print("seconds from action to a still redraw, the kernel's part of it, and the ratio of the two (browser / kernel)")
    print(f"  {'':<28}{'plotly FigureWidget':>30}{'jupyter-scatter':>30}{'plotly / jscatter':>20}")
    for r, v in rows.items():
        if r.startswith(("build", "kernel memory")):
            a, b = v["plotly"], v["jupyter-scatter"]
            print(f"  {r:<28}{a:>30.1f}{b:>30.1f}{a / b:>20.1f}")
            continue
        (pa, pk), (ja, jk) = v["plotly"], v["jupyter-scatter"]
        f = lambda a, k_: f"{a:.2f} (kernel {k_:.2f}, {a / k_:4.1f}×)" if k_ == k_ else f"{a:.2f}"
        print(f"  {r:<28}{f(pa, pk):>30}{f(ja, jk):>30}{pa / ja:>20.1f}")

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--kernel", action="store_true"); ap.add_argument("--browser", action="store_true")
    ap.add_argument("--sizes", type=int, nargs="+", default=None); ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--json", help="also write the browser rows to this file (the explorer chapter reads nbs/results/explore_engines.json)")
    a = ap.parse_args()
    if not (a.kernel or a.browser): a.kernel = a.browser = True
    torch.set_num_threads(min(2, torch.get_num_threads()))
    if a.kernel:
        for pts in a.sizes or ([5_000] + ([] if a.skip_big else [200_000, 1_000_000])):
            rows, ex = kernel_side(pts // 2)
            print(f"\nKernel side, {pts:,} points ({len(ex.images) + len(ex.captions):,} shown, metric line on {ex.metrics()['images']:,} images), D = 512, 2 threads")
            for k_, v in rows.items(): print(f"  {k_:<46} {v:7.3f} s   ({v / 1.0:5.2f} × a 1 s budget)")
    if a.browser:
        out = {}
        for pts in a.sizes or ([20_000] + ([] if a.skip_big else [200_000])):
            per = {}
            for engine in ("plotly", "jupyter-scatter"):
                with tempfile.TemporaryDirectory() as t: per[engine] = browser_side(pts, Path(t), engine)
            out[pts] = {r: {e_: per[e_][r] for e_ in per} for r in per["plotly"]}
            print_browser(pts, out[pts])
        if a.json:
            import math, platform
            clean = lambda v: None if isinstance(v, float) and math.isnan(v) else [clean(x) for x in v] if isinstance(v, (list, tuple)) else {k: clean(x) for k, x in v.items()} if isinstance(v, dict) else v
            Path(a.json).write_text(json.dumps({"machine": f"{os.cpu_count()} cores, {platform.machine()}, headless Chromium with software WebGL",
                                                "timing": "seconds from the action to the last change of the plot's pixels (screenshots of its region; about 0.2 s resolution)",
                                                "sizes": clean({str(k_): v for k_, v in out.items()})}, indent=1, ensure_ascii=False) + "\n")
