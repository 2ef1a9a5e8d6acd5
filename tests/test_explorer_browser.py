"""The explorer in a real browser: JupyterLab on 127.0.0.1, headless Chromium driven by Playwright.

Runs the explorer tutorial cell by cell as a user would (Run → Run All Cells), then drives its explorer: render, λ,
hover and click, box select, Escape, search, a typed query, a filter and a many-valued colouring, each step asserted
on the page and, through the notebook's own kernel, on the explorer's state. Screenshots go to the test's tmp folder (or to $XMODAL_SCREENSHOTS when set). The same harness
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

POINTS = """el => { const gd = el; return gd._fullData.filter(t => /^(images|captions)/.test(t.name)).reduce((n, t) => n + t.x.length, 0); }"""
SHOWN = """el => el._fullData.find(t => /^images/.test(t.name)).x.filter(v => v !== null && !Number.isNaN(v)).length"""
XY = """([el, name, k]) => { const gd = el, L = gd._fullLayout, t = gd._fullData.find(t => t.name.startsWith(name)), r = gd.getBoundingClientRect();
              return [r.left + L.xaxis._offset + L.xaxis.l2p(t.x[k]), r.top + L.yaxis._offset + L.yaxis.l2p(t.y[k])]; }"""
TRACE = """([el, name]) => { const t = el._fullData.find(t => t.name.startsWith(name)); return t ? [Array.from(t.x), Array.from(t.y)] : null; }"""
FRAME = """el => [el._fullLayout.xaxis.range.slice(), el._fullLayout.yaxis.range.slice(), el._fullLayout.xaxis._length, el._fullLayout.width]"""

def _gap(text:str)->float:
    return float(re.search(r"gap ‖Δ‖ = (-?[0-9.]+)", text).group(1))

def _darker(with_ring:bytes, without:bytes, r0:float, r1:float)->float:
    "Share of the pixels in the ring r0 < r ≤ r1 around the centre of two same-size screenshots that are much darker with the ring."
    import io
    import numpy as np
    from PIL import Image
    a, b = (np.asarray(Image.open(io.BytesIO(x)).convert("RGB")).astype(int).sum(2) for x in (with_ring, without))
    h, w = a.shape; yy, xx = np.mgrid[:h, :w]; r = np.hypot(xx - (w - 1) / 2, yy - (h - 1) / 2)
    ring = (r > r0) & (r <= r1)
    return float((a[ring] < b[ring] - 200).mean())

def _until(page, fn:str, arg, what:str, timeout:int=30_000):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    try: page.wait_for_function(fn, arg=arg, timeout=timeout)
    except PlaywrightTimeout: raise AssertionError(f"timed out waiting for {what}") from None

def test_explorer_in_jupyterlab(browser, lab, tmp_path):
    """The tour's explorer in JupyterLab, step by step, each asserted on the page and in the kernel: render, λ (frame fixed, λ = 1
    closes the gap), hover, click (ring visible over the WebGL points, neighbours a click away), box select (table = export),
    Escape, search (and a bad regex), a typed query, a filter, a 678-value colouring."""
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
        ex = page.locator(".xmodal-explorer").first
        ex.wait_for(timeout=240_000)
        plot = ex.locator(".js-plotly-plot").first
        plot.wait_for(timeout=60_000)
        gd = plot.element_handle()
        _until(page, "el => el._fullData && el._fullData.length >= 7 && !/filtered/.test(el._fullLayout.title.text)", gd, "the plain view")
        ex.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-1-rendered.png")
        assert plot.evaluate(POINTS) == expected
        types = plot.evaluate("el => el._fullData.map(t => [t.name, t.type])")
        assert {t for _, t in types} == {"scattergl"}, types          # marks share the points' WebGL canvas ...
        names = [n for n, _ in types]
        assert names.index("focused item and its pairs") > max(names.index(n) for n in names if n.startswith(("images", "captions")))   # ... drawn after them

        # λ: four steps right moves the points, not the frame; λ = 1 makes the centroids coincide; past it they cross
        line = ex.locator(".xmodal-metrics")
        before, frame0 = line.inner_text(), plot.evaluate(FRAME)
        handle = ex.locator(".widget-slider .noUi-handle").first
        handle.focus()
        for _ in range(4): page.keyboard.press("ArrowRight")
        _until(page, "([el, old]) => el.innerText !== old && el.innerText.includes('λ = +0.20 of the gap')", [line.element_handle(), before], "λ = +0.20")
        after = line.inner_text()
        assert _gap(after) < _gap(before), (before, after)    # a positive λ closes the gap
        assert plot.evaluate(FRAME)[:2] == frame0[:2]          # the frame stays put
        page.screenshot(path=shots / "explorer-2-shifted.png")
        for _ in range(16): page.keyboard.press("ArrowRight")
        _until(page, "el => el.innerText.includes('λ = +1.00 of the gap')", line.element_handle(), "λ = +1.00")
        page.wait_for_timeout(500)
        (cx, cy) = page.evaluate(TRACE, [gd, "centroids"])
        scale = max(frame0[0][1] - frame0[0][0], frame0[1][1] - frame0[1][0])
        assert abs(cx[0] - cx[1]) < 1e-6 * scale and abs(cy[0] - cy[1]) < 1e-6 * scale, (cx, cy, scale)
        assert k("abs(ex.metrics()['gap ‖Δ‖'])") < 1e-6
        plot.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-3-lambda-1.png")
        for _ in range(20): page.keyboard.press("ArrowLeft")
        _until(page, "el => el.innerText.includes('λ = +0.00 of the gap')", line.element_handle(), "λ back at 0")
        assert k("ex.lam") == 0.0

        # hover, then click an image: its ring is drawn over the WebGL points; the panel's → buttons focus a neighbour
        top = plot.evaluate("el => { const t = el._fullData.find(t => /^images/.test(t.name)); return t.y.indexOf(Math.max(...t.y)); }")
        x, y = page.evaluate(XY, [gd, "images", top])       # the topmost image: away from the centroid and its label
        page.mouse.move(x, y)
        ex.locator(".xmodal-hover img").first.wait_for(timeout=30_000)
        assert "image" in ex.locator(".xmodal-hover").inner_text()
        page.mouse.click(x, y)
        details = ex.locator(".xmodal-details")
        details.locator(".xmodal-go").first.wait_for(timeout=30_000)
        kind, index = k("ex.selected")                               # the point under the pointer: an image, or a caption on top of it
        assert kind in ("image", "caption")
        page.mouse.move(x + 200, y + 200); page.wait_for_timeout(300)
        fx, fy = page.evaluate(XY, [gd, "focused item", 0])
        box = dict(x=fx - 15, y=fy - 15, width=30, height=30)
        with_ring = page.screenshot(clip=box)
        assert "own pair" in details.inner_text()
        assert details.locator(".xmodal-go").count() >= 10               # own pairs, five images, five captions
        page.screenshot(path=shots / "explorer-4-clicked.png", full_page=True)
        go = details.locator(".xmodal-go").nth(len(k("ex.neighbours(*ex.selected)['own']")))   # the first nearest image
        target = go.get_attribute("title").replace("focus ", "")
        go.click()
        _until(page, "([el, t]) => el.querySelector('.xmodal-selected').innerText.includes(t + ' ')", [details.element_handle(), target], "the neighbour focused")
        assert k("ex.selected") == ["image", int(target.split()[-1])]
        plot.hover(); page.keyboard.press("Escape")                      # clears the focus and its ring
        _until(page, "el => el._fullData.find(t => t.name.startsWith('focused')).x.length === 0", gd, "the ring cleared")
        page.mouse.move(x + 200, y + 200); page.wait_for_timeout(300)
        without = page.screenshot(clip=box)
        (shots / 'ring-with.png').write_bytes(with_ring); (shots / 'ring-without.png').write_bytes(without)
        gain = _darker(with_ring, without, 7, 11)
        assert gain > 0.15, gain                                         # the black ring showed over the WebGL points

        # box select: the selection is data, the table shows it, and it is what ex.selection_frame() exports
        plot.hover(); plot.locator('.modebar-btn[data-title="Box Select"]').click()
        r = plot.bounding_box(); L = plot.evaluate("el => [el._fullLayout.xaxis._offset, el._fullLayout.yaxis._offset, el._fullLayout.xaxis._length, el._fullLayout.yaxis._length]")
        x0, y0 = r["x"] + L[0] + 0.35 * L[2], r["y"] + L[1] + 0.2 * L[3]
        page.mouse.move(x0, y0); page.mouse.down(); page.mouse.move(x0 + 0.3 * L[2], y0 + 0.6 * L[3], steps=8); page.mouse.up()
        info = ex.locator(".xmodal-selection-info")
        _until(page, "el => /selection: [0-9,]+ images, [0-9,]+ captions/.test(el.innerText)", info.element_handle(), "the box selection")
        ni, nc = (int(v.replace(",", "")) for v in re.search(r"([0-9,]+) images, ([0-9,]+) captions", info.inner_text()).groups())
        assert (ni, nc) == tuple(k("[len(ex.selection.images), len(ex.selection.captions)]")) and ni + nc > 0
        rows = ex.locator(".xmodal-table table tr")
        assert rows.count() - 1 == min(50, ni + nc)
        shown = [rows.nth(i).locator("td").nth(1).inner_text() for i in range(1, rows.count())]
        assert shown == k("[f'{m} {i}' for m, i in ex.selection_frame()[['modality', 'index']].head(50).values.tolist()]")
        ex.locator(".xmodal-table").scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-5-selection-table.png")

        # Escape over the explorer clears it
        plot.hover(); page.keyboard.press("Escape")
        _until(page, "el => el.innerText.includes('selection: none')", info.element_handle(), "Escape to clear")
        assert k("len(ex.selection)") == 0

        # search: every caption that contains the text, case-insensitive; a bad regex says so and leaves the widget working
        status = ex.locator(".xmodal-status")
        ex.locator(".xmodal-search input").fill("red triangle"); ex.locator(".xmodal-search input").press("Enter")
        _until(page, "el => el.innerText.includes(\"match 'red triangle'\")", status.element_handle(), "the search count")
        n_match = int(re.search(r"([0-9,]+) captions? of", status.inner_text()).group(1).replace(",", ""))
        truth = k("[j for j, c in enumerate(ex.sets[ex.name].captions) if 'red triangle' in c.lower()]")
        assert k("ex.selection.captions.tolist()") == truth and n_match == len(truth) > 0
        plot.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-6-search.png")
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

        # a typed query through the text tower lands as a star, with its neighbours in the panel
        ex.locator("button", has_text="place as query").click()
        _until(page, "el => { const t = el._fullData.find(t => t.name === 'query'); return t && t.x.length === 1; }", gd, "the query point")
        assert k("[len(ex.queries), ex.queries[0]['query']]") == [1, "red triangle"]
        assert "query “red triangle”: nearest images" in details.inner_text()
        plot.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-7-query.png")

        # filter: only red images stay drawn
        ex.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(r"^filter$"))).locator("select").select_option("colour")
        ex.locator(".widget-select-multiple select").select_option("red")
        ex.locator("button", has_text=re.compile(r"^apply$")).click()
        _until(page, "el => /filtered:/.test(el._fullLayout.title.text)", gd, "the filter")
        red = k("int((ex.sets[ex.name].labels['colour'][ex.images] == ex.fields['colour'][2].index('red')).sum())")
        assert plot.evaluate(SHOWN) == red == k("int(ex._masks()[0].sum())") and 0 < red < test.n_images
        assert "filtered" in line.inner_text()
        plot.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-8-filter.png")
        ex.locator("button", has_text="clear filter").click()
        _until(page, "el => !/filtered:/.test(el._fullLayout.title.text)", gd, "the filter cleared")

        # a colouring with 678 values: 19 and 'other' in the colour bar, the plot keeps its width
        width0 = plot.evaluate(FRAME)[2:]
        t0 = time.time()
        ex.locator(".widget-dropdown").filter(has=page.locator("label", has_text=re.compile(r"^colour$"))).locator("select").select_option("objects")
        _until(page, "el => el._fullData.some(t => t.marker && t.marker.colorbar && /objects/.test(JSON.stringify(t.marker.colorbar.title)))", gd, "the objects colouring", 120_000)
        print(f"colour by 678-value label: {time.time() - t0:.1f} s to redraw")
        assert plot.evaluate(FRAME)[2:] == width0
        ticks = plot.evaluate("el => el._fullData.find(t => /^images/.test(t.name)).marker.colorbar.ticktext")
        assert len(ticks) <= 21 and ticks[-1].startswith("other (659 values)"), ticks
        assert "678 values" in ex.locator(".xmodal-details, .widget-html").filter(has_text="678 values").first.inner_text()
        plot.scroll_into_view_if_needed(); page.screenshot(path=shots / "explorer-9-678-values.png")
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
