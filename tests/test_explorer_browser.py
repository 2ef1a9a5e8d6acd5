"""The explorer in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs the explorer tutorial cell by cell as a user would (Run → Run All Cells), then drives its explorer (the
jupyter-scatter cloud): render, λ, hover and click, box select, Escape, search, a typed query, a filter and a
many-valued colouring, each step asserted on the page (regl-scatterplot's own state, pixels, the widget's HTML) and,
through the notebook's own kernel, on the explorer's state. Screenshots go to the test's tmp folder (or to $XMODAL_SCREENSHOTS when set). The same harness
screenshots the gap tutorial. Needs Debian's `chromium`; without it the test skips, except under CI (`CI` set).
"""
import json, os, re, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
from browser import launch as launch_chromium, require as require_chromium   # tools/browser.py (conftest puts tools/ on the path)
from lab import jupyterlab, run_all as _run_all, Kernel                       # tools/lab.py

@pytest.fixture(scope="module")
def browser():
    require_chromium("run the JupyterLab browser test")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()

@pytest.fixture
def lab(tmp_path):
    "JupyterLab serving a copy of the tutorials."
    root = tmp_path / "nbs"; shutil.copytree(ROOT / "nbs" / "tutorials", root / "tutorials")
    with jupyterlab(tmp_path, root) as url: yield url

def _shots(tmp_path)->Path:
    d = Path(os.environ.get("XMODAL_SCREENSHOTS") or tmp_path / "screenshots"); d.mkdir(parents=True, exist_ok=True)
    return d

SCATTER = "id => [...document.querySelectorAll('[id=\"' + id + '\"]')].find(e => e.api)"   # the element regl-scatterplot's API hangs on

def _api(page, did:str, body:str, arg=None):
    "Evaluate `body` (an expression of `api`, the regl-scatterplot instance, `el` its element and `arg`) in the page."
    return page.evaluate(f"([id, arg]) => {{ const el = ({SCATTER})(id), api = el.api; return {body}; }}", [did, arg])

def _screen(page, did:str, row:int)->tuple:
    "Page position of row `row` of the cloud, from regl-scatterplot's own getScreenPosition."
    return tuple(_api(page, did, "(() => { const b = el.getBoundingClientRect(), p = api.getScreenPosition(arg); return [b.left + p[0], b.top + p[1]]; })()", row))

def _points_drawn(page, did:str, k, what:str, timeout:float=30.0):
    "Poll until the page draws the points the kernel last sent: regl-scatterplot's points against the widget's `points` trait."
    want = k("ex._sc.widget.points[:, :2].tolist()")
    t0 = time.time()
    while True:
        got = _api(page, did, "api.get('points').map(p => [p[0], p[1]])")
        off = max((abs(a - b) for p, q in zip(got, want) for a, b in zip(p, q)), default=0.0) if len(got) == len(want) else float("inf")
        if off < 1e-4: return
        if time.time() - t0 > timeout:
            raise AssertionError(f"{what}: the page still draws other points than the kernel sent (off by {off:.3g} of the [-1, 1] frame)")
        page.wait_for_timeout(300)

def _gap(text:str)->float:
    return float(re.search(r"gap ‖Δ‖ = (-?[0-9.]+)", text).group(1))

def _ring(after:bytes, before:bytes, centre:tuple, r0:float=8, r1:float=13, search:int=5, sectors:int=24)->tuple:
    """Is a dark ring drawn around `centre` (pixels of the two same-size screenshots)? The share of `sectors` angular
    sectors that hold a pixel r0 ≤ r ≤ r1 from the centre that turned dark (much darker than before, and near black),
    best over the centres within `search` px of `centre` (regl rounds its lines to pixels); with that centre."""
    import io
    import numpy as np
    from PIL import Image
    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB")).astype(int).sum(2) for x in (after, before))
    dark = (a < 250) & (a < b - 200)
    yy, xx = np.nonzero(dark)
    best = (0.0, -1e9, None)
    for dy in range(-search, search + 1):
        for dx in range(-search, search + 1):
            cx, cy = centre[0] + dx, centre[1] + dy
            r = np.hypot(xx - cx, yy - cy); on = (r >= r0) & (r <= r1)
            sec = np.floor((np.arctan2(yy[on] - cy, xx[on] - cx) + np.pi) / (2 * np.pi) * sectors).astype(int) % sectors
            share = len(np.unique(sec)) / sectors
            best = max(best, (share, -(dx * dx + dy * dy), (cx, cy)))     # the nearest of the best centres
    return best[0], best[2]

def _until(page, fn:str, arg, what:str, timeout:int=30_000):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try: page.wait_for_function(fn, arg=arg, timeout=timeout)
    except PlaywrightTimeout: raise AssertionError(f"timed out waiting for {what}") from None

def _k_until(k, expr:str, want, what:str, timeout:float=30.0):
    "Poll the kernel until `expr` evaluates to `want`: the page's changes reach it as widget messages, after the page has moved."
    t0, got = time.time(), None
    while time.time() - t0 < timeout:
        if (got := k(expr)) == want: return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {expr} is {got!r}, not {want!r}")

def test_explorer_in_jupyterlab(browser, lab, tmp_path):
    """The tour's explorer (jupyter-scatter cloud) in JupyterLab, step by step, each asserted on the page (regl-scatterplot's
    own state, pixels, the widget's HTML) and in the kernel: render, λ (frame fixed, λ = 1 brings the centroids together),
    hover, click (ring drawn over the points, neighbours a click away), shift-click, box select (table = export), Escape, search (and a
    bad regex), a typed query, a filter, a 678-value colouring."""
    from xmodal_lab.data import shapes
    test = shapes("test", n=1000, background="dark")         # the tutorial's first explorer shows this split
    expected = test.n_images + len(test.captions)
    shots = _shots(tmp_path)
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    k = None
    try:
        _run_all(page, lab, "tutorials/explorer_tour.ipynb")
        k = Kernel(tmp_path / "jupyter" / "runtime")
        # the tour ends with a filter, a query and a selection on the fine-tuned set: start from the plain view of the first set
        assert k('ex.filter(); ex.clear_selection(); ex.queries = []\nex.set_state(name="before fine-tuning", lam=0.0)\nTrue')
        assert k("ex.engine") == "jupyter-scatter"
        did = k("ex._sc.widget.dom_element_id")                         # the view rendered last; the tour shows `ex` three times
        ex = page.locator(".xmodal-explorer").filter(has=page.locator(f"[id='{did}']")).first
        canvas = ex.locator(".xmodal-cloud canvas").first
        canvas.wait_for(timeout=240_000)
        _until(page, f"([id]) => {{ const el = ({SCATTER})(id); return el && el.api.get('points').length > 0; }}", [did], "the points drawn")
        _until(page, "el => !/filtered/.test(el.innerText)", ex.locator(".xmodal-title").element_handle(), "the plain view")
        ex.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-1-rendered.png")
        assert _api(page, did, "api.get('points').length") == expected == k("len(ex._sc.widget.points)")

        # λ: four steps right moves the points, not the frame; λ = 1 makes the centroids coincide; past it they cross
        line = ex.locator(".xmodal-metrics")
        before = line.inner_text()
        frame0 = _api(page, did, "[api.get('xScale').domain(), api.get('yScale').domain()]")
        p0 = _api(page, did, "Array.from(api.get('points')[0].slice(0, 2))")
        handle = ex.locator(".widget-slider .noUi-handle").first
        handle.focus()
        for _ in range(4): page.keyboard.press("ArrowRight")
        _until(page, "([el, old]) => el.innerText !== old && el.innerText.includes('λ = +0.20 of the gap')", [line.element_handle(), before], "λ = +0.20")
        after = line.inner_text()
        assert _gap(after) < _gap(before), (before, after)    # a positive λ closes the gap
        _until(page, f"([id, p]) => {{ const q = ({SCATTER})(id).api.get('points')[0]; return q[0] !== p[0] || q[1] !== p[1]; }}", [did, p0], "the points moved")
        assert _api(page, did, "[api.get('xScale').domain(), api.get('yScale').domain()]") == frame0   # the frame stays put
        page.screenshot(path=shots / "explorer-2-shifted.png")
        for _ in range(16): page.keyboard.press("ArrowRight")
        _until(page, "el => el.innerText.includes('λ = +1.00 of the gap')", line.element_handle(), "λ = +1.00")
        page.wait_for_timeout(500)
        # the diamonds as the widget sends them to the page (regl-scatterplot's normalised [-1, 1] frame: the scale is 2)
        d = k("[[sum(v[0] for v in a.vertices[:4]) / 4, sum(v[1] for v in a.vertices[:4]) / 4] for a in ex._sc.widget.annotations if len(a.vertices) == 5]")
        assert len(d) == 2 and max(abs(d[0][0] - d[1][0]), abs(d[0][1] - d[1][1])) < 1e-6 * 2, d
        assert k("abs(ex.metrics()['gap ‖Δ‖'])") < 1e-6
        canvas.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-3-lambda-1.png")
        for _ in range(20): page.keyboard.press("ArrowLeft")
        _until(page, "el => el.innerText.includes('λ = +0.00 of the gap')", line.element_handle(), "λ back at 0")
        assert k("ex.lam") == 0.0
        _points_drawn(page, did, k, "λ back at 0 after 20 key presses")
        # two position updates back to back: the second comes while the page still draws the first (regl-scatterplot
        # rejects a draw during a draw), and the page must end on it
        assert k("import numpy as np\ng_ = ex._geometry(raw=True); (x0_, x1_), (y0_, y1_) = g_['frame']\n"
                 "x_, y_ = np.r_[g_['images'][:, 0], g_['captions'][:, 0]], np.r_[g_['images'][:, 1], g_['captions'][:, 1]]\n"
                 "for d_ in (0.3, 0.0): ex._sc.xy(x=x_ + d_ * (x1_ - x0_), y=y_, x_scale=(x0_, x1_), y_scale=(y0_, y1_), animate=False)\nTrue")
        _points_drawn(page, did, k, "two position updates back to back")

        # hover, then click an image: its ring is drawn over the points; the panel's → buttons focus a neighbour
        page.wait_for_timeout(500)
        top = k("int(ex._positions()[0][:, 1].argmax())")           # the topmost image: away from the centroids
        x, y = _screen(page, did, top)
        page.mouse.move(x, y)
        ex.locator(".xmodal-hover img").first.wait_for(timeout=30_000)
        assert "image" in ex.locator(".xmodal-hover").inner_text()
        page.mouse.move(x + 200, y + 200); page.wait_for_timeout(800)
        R = 32                                                       # the screenshots around the pointer: 64 px square
        box0 = _api(page, did, "(() => { const b = el.getBoundingClientRect(); return [b.left, b.top]; })()")
        before_click = page.screenshot(clip=dict(x=x - R, y=y - R, width=2 * R, height=2 * R))
        page.mouse.click(x, y)
        details = ex.locator(".xmodal-details")
        details.locator(".xmodal-go").first.wait_for(timeout=30_000)
        kind, index = k("ex.selected")                               # the point under the pointer: an image, or a caption on top of it
        assert kind in ("image", "caption")
        assert _api(page, did, "api.get('selectedPoints')") == k("ex._cloud_rows(ex.selection).tolist()")
        _k_until(k, "any(len(a.vertices) == 21 for a in ex._sc.widget.annotations)", True, "the kernel's focus rings")
        page.mouse.move(x + 200, y + 200)
        def ring(timeout=20.0):
            "The ring around the focused item, polled until regl has drawn it: the same canvas region as before the click (were the canvas moved)."
            t0 = time.time()
            while True:
                box = _api(page, did, "(() => { const b = el.getBoundingClientRect(); return [b.left, b.top]; })()")
                ox, oy = x - R + box[0] - box0[0], y - R + box[1] - box0[1]
                sx, sy = _screen(page, did, k("int(ex._cloud_rows(ex.selection)[0])"))
                shot = page.screenshot(clip=dict(x=ox, y=oy, width=2 * R, height=2 * R))
                share, at = _ring(shot, before_click, (sx - ox, sy - oy))
                if share >= 0.75 or time.time() - t0 > timeout: return share, at, (sx - ox, sy - oy), shot
                page.wait_for_timeout(300)
        share, at, want, with_ring = ring()
        (shots / 'ring-with.png').write_bytes(with_ring); (shots / 'ring-without.png').write_bytes(before_click)
        assert share >= 0.75, f"the focus ring covers {share:.2f} of its circle (best centre {at}, the item at {want} in {shots / 'ring-with.png'})"   # the black ring shows over the WebGL points
        assert "own pair" in details.inner_text()
        assert details.locator(".xmodal-go").count() >= 10               # own pairs, five images, five captions
        page.screenshot(path=shots / "explorer-4-clicked.png", full_page=True)
        row0 = k("int(ex._cloud_rows(ex.selection)[0])")                # the clicked item's row in the cloud
        go = details.locator(".xmodal-go").nth(len(k("ex.neighbours(*ex.selected)['own']")))   # the first nearest image
        target = go.get_attribute("title").replace("focus ", "")
        go.click()
        _until(page, "([el, t]) => el.querySelector('.xmodal-selected').innerText.includes(t + ' ')", [details.element_handle(), target], "the neighbour focused")
        assert k("ex.selected") == ["image", int(target.split()[-1])]
        # shift-click adds: the item first clicked joins the focused neighbour and takes the focus
        canvas.scroll_into_view_if_needed(); x2, y2 = _screen(page, did, row0)   # the panel's click may have scrolled the page
        page.keyboard.down("Shift"); page.mouse.click(x2, y2); page.keyboard.up("Shift")
        _until(page, f"([id]) => ({SCATTER})(id).api.get('selectedPoints').length === 2", [did], "shift-click adds a point")
        _until(page, "([el, t]) => !el.querySelector('.xmodal-selected').innerText.includes(t + ' ')", [details.element_handle(), target], "the focus moved")
        assert k("[ex.selected, sorted(ex.selection.images.tolist()), sorted(ex.selection.captions.tolist())]") == \
            [[kind, index], sorted([int(target.split()[-1])] + ([index] if kind == "image" else [])), [index] if kind == "caption" else []]
        assert sorted(_api(page, did, "api.get('selectedPoints')")) == k("ex._cloud_rows(ex.selection).tolist()")
        canvas.hover(); page.keyboard.press("Escape")                    # clears the focus and its ring
        _until(page, f"([id]) => ({SCATTER})(id).api.get('selectedPoints').length === 0", [did], "the selection cleared")
        _k_until(k, "[ex.selected, len(ex.selection)]", [None, 0], "the kernel's selection cleared")
        assert k("sum(len(a.vertices) == 21 for a in ex._sc.widget.annotations)") == 0   # no ring left to draw

        # box select: the selection is data, the table shows it, and it is what ex.selection_frame() exports
        ex.locator(".widget-toggle-buttons button", has_text=re.compile(r"^box$")).click()
        _until(page, f"([id]) => ({SCATTER})(id).api.get('mouseMode') === 'lasso'", [did], "box mode")
        r = canvas.bounding_box()
        x0, y0 = r["x"] + 0.3 * r["width"], r["y"] + 0.3 * r["height"]
        page.mouse.move(x0, y0); page.mouse.down(); page.mouse.move(x0 + 0.35 * r["width"], y0 + 0.4 * r["height"], steps=10); page.mouse.up()
        info = ex.locator(".xmodal-selection-info")
        try: _until(page, "el => /selection: [0-9,]+ images, [0-9,]+ captions/.test(el.innerText)", info.element_handle(), "the box selection")
        except AssertionError as e:      # say what each side holds: the page's selection and mode, the kernel's rows and message
            page_state = _api(page, did, "[api.get('selectedPoints').length, api.get('mouseMode')]")
            kernel_state = k("[ex._sc_rows.tolist()[:8], len(ex.selection), ex.message, ex._sc.widget.selection is None]")
            raise AssertionError(f"{e}; page (selected, mode): {page_state}; kernel (rows, selection, message, pushed None): {kernel_state}") from None
        ni, nc = (int(v.replace(",", "")) for v in re.search(r"([0-9,]+) images, ([0-9,]+) captions", info.inner_text()).groups())
        assert (ni, nc) == tuple(k("[len(ex.selection.images), len(ex.selection.captions)]")) and ni + nc > 1
        assert sorted(_api(page, did, "api.get('selectedPoints')")) == k("ex._cloud_rows(ex.selection).tolist()")
        rows = ex.locator(".xmodal-table table tr")
        assert rows.count() - 1 == min(50, ni + nc)
        shown = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(1, rows.count())]
        assert shown == k("[f'{m} {i}' for m, i in ex.selection_frame()[['modality', 'index']].head(50).values.tolist()]")
        ex.locator(".xmodal-table").scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-5-selection-table.png")
        ex.locator(".widget-toggle-buttons button", has_text=re.compile(r"^pan$")).click()

        # Escape over the explorer clears it
        canvas.hover(); page.keyboard.press("Escape")
        _until(page, "el => el.innerText.includes('selection: none')", info.element_handle(), "Escape to clear")
        assert k("len(ex.selection)") == 0 and _api(page, did, "api.get('selectedPoints').length") == 0

        # search: every caption that contains the text, case-insensitive; a bad regex says so and leaves the widget working
        status = ex.locator(".xmodal-status")
        ex.locator(".xmodal-search input").fill("red triangle"); ex.locator(".xmodal-search input").press("Enter")
        _until(page, "el => el.innerText.includes(\"match 'red triangle'\")", status.element_handle(), "the search count")
        n_match = int(re.search(r"([0-9,]+) captions? of", status.inner_text()).group(1).replace(",", ""))
        truth = k("[j for j, c in enumerate(ex.sets[ex.name].captions) if 'red triangle' in c.lower()]")
        assert k("ex.selection.captions.tolist()") == truth and n_match == len(truth) > 0
        _until(page, f"([id, n]) => ({SCATTER})(id).api.get('selectedPoints').length === n", [did, len(truth)], "the matches highlighted")
        canvas.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-6-search.png")
        ex.locator(".widget-checkbox", has_text="regex").locator("input").check()
        ex.locator(".xmodal-search input").fill("red (triangle"); ex.locator(".xmodal-search input").press("Enter")
        _until(page, "el => el.innerText.includes('not a valid regular expression')", status.element_handle(), "the regex message")
        assert k("ex.selection.captions.tolist()") == truth                    # nothing changed
        ex.locator(".widget-checkbox", has_text="regex").locator("input").uncheck()
        ex.locator(".xmodal-search input").fill("red triangle"); ex.locator(".xmodal-search input").press("Enter")
        # the box sends its text on Enter or blur, and ipywidgets holds a state update back while the kernel is busy
        # (a button's click is not held), so the text must reach the kernel before the button is pressed
        _until(page, "el => el.innerText.includes(\"match 'red triangle'\")", status.element_handle(), "the search again")
        assert k("ex._controls['search'].value") == "red triangle"

        # a typed query through the text tower lands as a star (an 11-vertex annotation over the points), its neighbours in the panel
        ex.locator("button", has_text="place as query").click()
        _until(page, "el => el.innerText.includes('query “red triangle”: nearest images')", details.element_handle(), "the query's neighbours")
        assert k("[len(ex.queries), ex.queries[0]['query']]") == [1, "red triangle"]
        assert k("sum(len(a.vertices) == 11 for a in ex._sc.widget.annotations)") == 1
        canvas.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-7-query.png")

        # filter: only red images (and their captions) stay drawn
        ex.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(r"^filter$"))).locator("select").select_option("colour")
        ex.locator(".widget-select-multiple select").select_option("red")
        ex.locator("button", has_text=re.compile(r"^apply$")).click()
        _until(page, "el => /filtered:/.test(el.innerText)", ex.locator(".xmodal-title").element_handle(), "the filter")
        kept = k("int(ex._masks()[0].sum() + ex._masks()[1].sum())")
        red = k("int((ex.sets[ex.name].labels['colour'][ex.images] == ex.fields['colour'][2].index('red')).sum())")
        _until(page, f"([id, n]) => ({SCATTER})(id).api.get('filteredPoints').length === n", [did, kept], "the filtered points")
        assert k("int(ex._masks()[0].sum())") == red and 0 < red < test.n_images
        assert "filtered" in line.inner_text()
        canvas.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-8-filter.png")
        ex.locator("button", has_text="clear filter").click()
        _until(page, "el => !/filtered:/.test(el.innerText)", ex.locator(".xmodal-title").element_handle(), "the filter cleared")
        _until(page, f"([id, n]) => ({SCATTER})(id).api.get('filteredPoints').length === n", [did, expected], "every point back")

        # a colouring with 678 values: 19 and 'other' in the legend beside the canvas; the canvas keeps its size
        size0 = canvas.bounding_box()
        t0 = time.time()
        ex.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(r"^colour$"))).locator("select").select_option("objects")
        legend = ex.locator(".xmodal-key")
        _until(page, "el => el.innerText.startsWith('objects')", legend.element_handle(), "the objects colouring", 120_000)
        print(f"colour by 678-value label: {time.time() - t0:.1f} s to redraw")
        size1 = canvas.bounding_box()
        assert (size1["width"], size1["height"]) == (size0["width"], size0["height"])
        entries = legend.locator("span").count()
        assert entries <= 21 and "other (659 values)" in legend.inner_text(), legend.inner_text()
        lb = legend.bounding_box()
        assert lb["x"] >= size1["x"] + size1["width"] - 1, (lb, size1)     # beside the canvas, not over it
        assert "678 values" in ex.locator(".widget-html").filter(has_text="678 values").first.inner_text()
        canvas.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-9-678-values.png")
        offsite = [u for u in requests if not u.startswith((lab, "blob:" + lab, "data:"))]
        assert not offsite, f"requests left 127.0.0.1: {offsite[:5]}"
    except Exception:
        page.screenshot(path=shots / "explorer-failed.png", full_page=True)
        raise
    finally:
        if k is not None: k.close()
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
