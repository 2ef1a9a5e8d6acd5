"""Check the docs without Quarto, showing what the site will show.

1. nbdev's `proc_nbs` processes the notebooks as `nbdev_docs` does before Quarto;
2. this script then does what Quarto would do with what nbdev leaves for it: the YAML front matter becomes the page
   title and description; cells marked `#| hide` or `#| include: false` go, `#| echo: false` hides the code and
   `#| output: false` the outputs, `#|` lines are not shown, and Quarto's link attributes (`[source](...){target=...}`)
   are dropped;
3. nbconvert renders the pages into `_docs_local/`, keeping the folder layout of `nbs/` (so `tutorials/` pages are one
   level down, as on the site). plotly.js comes from the site root through the same relative path that `_quarto.yml`
   (and `tutorials/_metadata.yml`) put in every page's header; math is rendered offline by KaTeX (from the npm
   registry once, cached in `.cache/katex`), never from a CDN;
4. with `--check`, every page is opened in headless Chromium (Playwright, system Chromium) with every request that
   leaves the page's folder blocked, and a screenshot of the whole page, taken a viewport at a time, is saved beside it.
   The check fails on an error output in a notebook, stderr output in a cell not marked `#| warning: true`, a page
   error in the browser, a figure that does not draw (each stored plotly output must become a `.js-plotly-plot` with a
   non-empty SVG), math that KaTeX cannot render or that renders without a box (a squashed √), a raw markdown link
   in a code block, a screenshot tile that repeats an earlier one, or a request to the network.

Usage: python tools/docs_html.py [--check] [--only 20_gap 60_compare ...]    → pages and screenshots in _docs_local/
"""
import argparse, hashlib, io, json, re, shutil, subprocess, sys, tarfile
from pathlib import Path
import nbformat, plotly, yaml
sys.path.insert(0, str(Path(__file__).resolve().parent))
from browser import launch as launch_chromium    # tools/browser.py: the one Chromium of the project
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
NBS, OUT, KATEX_VERSION = ROOT / "nbs", ROOT / "_docs_local", "0.19.1"
KATEX = ROOT / ".cache" / "katex" / KATEX_VERSION

def katex_dir()->Path:
    "KaTeX's dist folder, fetched once with `npm pack` (the npm registry is reachable where PyPI is)."
    if (KATEX / "katex.min.js").is_file(): return KATEX
    KATEX.mkdir(parents=True, exist_ok=True)
    npm = shutil.which("npm")
    if npm is None: raise SystemExit("KaTeX is not cached and npm is missing: install npm (apt-get install npm) to render math offline")
    subprocess.run([npm, "pack", f"katex@{KATEX_VERSION}", "--silent"], cwd=KATEX, check=True, capture_output=True, timeout=300)
    with tarfile.open(next(KATEX.glob("katex-*.tgz"))) as t:
        for m in t.getmembers():
            if m.name.startswith("package/dist/") and m.isfile():
                m.name = m.name[len("package/dist/"):]; t.extract(m, KATEX)
    return KATEX

def directives(src:str)->dict:
    "`#| key: value` lines of a cell, and bare flags (`#| hide`) as True."
    out = {}
    for line in src.splitlines():
        if not line.startswith("#|"): continue
        k, _, v = line[2:].strip().partition(":")
        out[k.strip()] = v.strip().lower() if v else True
    return out

LINK_ATTRS = re.compile(r"(\]\([^)]*\))\{[^}]*\}")

def quarto_like(nb):
    "What Quarto does with nbdev's output: front matter → title, cell options applied, `#|` lines and link attributes gone."
    cells, front = [], {}
    for c in nb.cells:
        if c.cell_type == "raw" and c.source.lstrip().startswith("---"):
            front.update(yaml.safe_load(c.source.strip().strip("-")) or {}); continue
        if c.cell_type == "code":
            d = directives(c.source)
            if d.get("hide") or d.get("include") == "false" or "default_exp" in d: continue
            c.source = "\n".join(l for l in c.source.splitlines() if not l.startswith("#|")).strip()
            if d.get("output") == "false": c.outputs = []
            if d.get("echo") == "false": c.metadata["transient"] = {"remove_source": True}   # nbconvert's lab template then shows no input
            for o in c.get("outputs", []):
                for key in ("text/markdown", "text/html"):
                    if key in o.get("data", {}): o["data"][key] = LINK_ATTRS.sub(r"\1", o["data"][key])
            if (not c.source or d.get("echo") == "false") and not c.get("outputs"): continue
        if c.cell_type == "markdown": c.source = LINK_ATTRS.sub(r"\1", c.source)
        cells.append(c)
    head = []
    if front.get("title"): head.append(nbformat.v4.new_markdown_cell(f"# {front['title']}" + (f"\n\n> {front['description']}" if front.get("description") else "")))
    nb.cells = head + cells
    nb.metadata.pop("widgets", None)          # stale widget state (progress bars): the static page draws no widget
    return nb

def plotly_include(depth:int)->str:
    "The plotly.js <script> the site puts in a page `depth` folders below the root (from _quarto.yml and _metadata.yml)."
    cfg = (NBS / "tutorials" / "_metadata.yml") if depth else (NBS / "_quarto.yml")
    m = re.search(r'<script src="([^"]*plotly\.min\.js)"></script>', cfg.read_text())
    if m is None: raise SystemExit(f"{cfg} does not include plotly.min.js in the page header")
    return m.group(0)

def page_html(nb, depth:int, exp)->str:
    body, _ = exp.from_notebook_node(nb)
    body = re.sub(r'<script[^>]*src="https://cdn[^"]*(mathjax|MathJax)[^"]*"[^>]*>\s*</script>', "", body)
    body = re.sub(r"<script type=\"text/x-mathjax-config\">.*?</script>", "", body, flags=re.S)
    body = re.sub(r'<script type="module">(?:(?!</script>).)*mermaid(?:(?!</script>).)*</script>', "", body, flags=re.S)   # no diagrams here
    body = re.sub(r'<script[^>]*src="https?://[^"]*require(\.min)?\.js"[^>]*>\s*</script>', "", body)             # no widgets in static pages
    if (m := re.search(r'(<script[^>]*src="|<link[^>]*href="|import\(")(https?://[^"]+)', body)): raise AssertionError(f"the page loads {m.group(2)} from the network")
    up = "../" * depth
    katex = (f'<link rel="stylesheet" href="{up}katex/katex.min.css">\n<script src="{up}katex/katex.min.js"></script>\n'
             f'<script src="{up}katex/contrib/auto-render.min.js"></script>\n'
             '<script>document.addEventListener("DOMContentLoaded", () => renderMathInElement(document.body, {delimiters: ['
             '{left: "$$", right: "$$", display: true}, {left: "$", right: "$", display: false}, {left: "\\\\(", right: "\\\\)", display: false}, '
             '{left: "\\\\[", right: "\\\\]", display: true}], throwOnError: false, ignoredClasses: ["jp-OutputArea", "highlight"]}));</script>')
    # the lab template's `.jp-RenderedHTMLCommon svg {height: auto}` squashes KaTeX's stretchy glyphs (√, braces) to a hairline:
    # they take the height KaTeX gives their box
    katex += "\n<style>.jp-RenderedHTMLCommon .katex svg { height: inherit; }</style>"
    return body.replace("<head>", f"<head>\n{plotly_include(depth)}\n{katex}", 1)

ANSI = re.compile(r"\x1b\[[0-9;]*m")

def notebook_errors(nb)->list:
    """Error outputs left in a notebook (they would show on the site), including tracebacks printed by a failing display,
    and stderr output (a warning, a progress bar's text) in a cell not marked `#| warning: true` (showing one on purpose)."""
    bad = []
    for i, c in enumerate(nb.cells):
        d = directives(c.source) if c.cell_type == "code" else {}
        if c.cell_type == "code" and d.get("warning") != "true" and d.get("output") != "false" and not (d.get("hide") or d.get("include") == "false"):
            for o in c.get("outputs", []):
                if o.get("output_type") == "stream" and o.get("name") == "stderr":
                    first = next((l for l in ANSI.sub("", o.get("text", "")).replace("\r", "\n").splitlines() if l.strip()), "")
                    bad.append(f"cell {i}: stderr output ({first.strip()[:120]}) — avoid it, or mark the cell `#| warning: true` if it shows on purpose")
        for o in c.get("outputs", []):
            text = ANSI.sub("", o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", ""))
            if o.get("output_type") == "error": bad.append(f"cell {i}: {o.get('ename')}: {o.get('evalue')}"[:200])
            elif "Traceback (most recent call last)" in text:
                last = [l for l in text.splitlines() if re.match(r"^\w+(Error|Exception)\b", l)]
                bad.append(f"cell {i}: a traceback in the output ({(last or ['?'])[-1][:120]})")
    return bad

def n_figures(nb)->int:
    return sum("Plotly.newPlot" in o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))

def check_page(browser, page_path:Path, want_figs:int)->list:
    "Open a page offline, screenshot it whole, and list what is wrong with it."
    problems, external = [], []
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    def route(r):
        if r.request.url.startswith("file://"): return r.continue_()
        external.append(r.request.url); return r.abort()
    page.route("**/*", route)
    page.goto(page_path.as_uri(), wait_until="load")
    page.wait_for_timeout(500)
    drawn = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(p => {
        const s = p.querySelector('svg.main-svg'); const r = s ? s.getBoundingClientRect() : null;
        return !!(r && r.width > 50 && r.height > 50 && p.querySelectorAll('.trace, .heatmaplayer, .imagelayer, .barlayer path, .scatterlayer path').length); })""")
    if len(drawn) != want_figs: problems.append(f"{want_figs} figures stored, {len(drawn)} on the page")
    if not all(drawn): problems.append(f"{drawn.count(False)} of {len(drawn)} figures are blank")
    if (n := page.evaluate("document.querySelectorAll('.katex-error').length")): problems.append(f"{n} formulas KaTeX cannot render")
    problems += page.evaluate(FORMULA_BOXES)
    if (names := page.evaluate(INTERNALS)): problems.append(f"the API shows internals: {', '.join(names[:5])} — document the public names users call")
    if (n := page.evaluate(RAW_LINKS)): problems.append(f"{n} code blocks show a raw markdown link (a backticked name in a docment turned into [name](url)): "
                                                        "write names in docments without backticks")
    if external: problems.append(f"{len(external)} requests to the network, e.g. {external[0]}")
    problems += screenshot_tiles(page, page_path.with_suffix(".png"))
    page.close()
    return problems

# API entries of private names (`_select`), and dunders documented by object's docstring ("Call self as a function.")
INTERNALS = r"""() => [...document.querySelectorAll('h3, h4')].map(h => h.textContent.replace('¶', '').trim())
  .filter(t => /^(\w+\.)?_[A-Za-z]/.test(t)).concat(document.body.innerText.includes('Call self as a function.') ? ['a docstring inherited from object (Call self as a function.)'] : [])"""

# nbdev links `names` in docments; inside a signature's code block the link shows as raw markdown
RAW_LINKS = r"""() => [...document.querySelectorAll('pre')].filter(e => /\]\((https?:\/\/|[\w.\/-]+\.html)/.test(e.textContent)).length"""

# every rendered formula has a box, and so does every stretchy glyph in it (a radical, a brace: SVGs that CSS can squash)
FORMULA_BOXES = """() => { const bad = [];
  document.querySelectorAll('.katex').forEach((k, i) => {
    const r = k.getBoundingClientRect(), text = (k.querySelector('annotation') || k).textContent.slice(0, 40);
    if (r.width < 1 || r.height < 1) bad.push(`formula ${i} (${text}) has no box (${r.width.toFixed(1)} × ${r.height.toFixed(1)} px)`);
    k.querySelectorAll('.katex-html svg').forEach(s => { const b = s.getBoundingClientRect();
      if (b.height < 2) bad.push(`formula ${i} (${text}): a stretchy glyph is ${b.height.toFixed(2)} px high`); });
  });
  return bad; }"""

def screenshot_tiles(page, path:Path, tile:int=900)->list:
    """Screenshot the page a viewport at a time (a full-page capture repeats the top of a page past 8,192 px) and stitch
    the tiles into `path`. A tile identical to an earlier one (not a blank one) means the page did not scroll: reported."""
    from PIL import Image
    page.set_viewport_size({"width": 1200, "height": tile})
    height = page.evaluate("document.documentElement.scrollHeight")
    ys = list(range(0, max(1, height - tile + 1), tile))
    if ys[-1] + tile < height: ys.append(height - tile)
    whole, seen, problems = Image.new("RGB", (1200, max(height, tile)), "white"), {}, []
    for k, y in enumerate(ys):
        at = page.evaluate(f"() => {{ window.scrollTo(0, {y}); return window.scrollY; }}"); page.wait_for_timeout(30)
        if abs(at - y) > 1: problems.append(f"screenshot tile {k}: the page scrolled to y = {at} px, not {y} px"); continue
        shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
        if any(lo != hi for lo, hi in shot.getextrema()):            # a blank tile may repeat
            h = hashlib.sha1(shot.tobytes()).hexdigest()
            if h in seen: problems.append(f"screenshot tile {k} (from y = {y} px) is identical to tile {seen[h]}: the page did not scroll there")
            seen.setdefault(h, k)
        whole.paste(shot, (0, y))
    whole.save(path, optimize=True)
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(); ap.add_argument("--check", action="store_true")
    ap.add_argument("--only", nargs="*", default=[], help="page names, or parts of them (20_gap compare): only these pages")
    a = ap.parse_args(argv)
    from nbdev.serve import proc_nbs
    proc = Path(proc_nbs(n_workers=0))
    OUT.mkdir(exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", OUT / "plotly.min.js")
    shutil.copytree(katex_dir(), OUT / "katex", dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.tgz"))
    exp = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)   # no In/Out prompts, as on the site
    pages, failures = [], {}
    for src in sorted(proc.rglob("*.ipynb")):
        rel = src.relative_to(proc)
        if not (NBS / rel).exists():        # left in _proc by a notebook renamed or removed since: not a page any more
            src.unlink(); [f.unlink() for f in (OUT / rel.with_suffix(".html"), OUT / rel.with_suffix(".png")) if f.exists()]; continue
        if a.only and not any(o in src.stem for o in a.only): continue
        raw = nbformat.read(src, as_version=4)
        if (errs := notebook_errors(raw)): failures[str(rel)] = errs
        nb = quarto_like(raw)
        out = (OUT / rel).with_suffix(".html"); out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page_html(nb, len(rel.parts) - 1, exp))
        pages.append((out, n_figures(nb)))
        print(out.relative_to(ROOT))
    if a.check:
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            b = launch_chromium(p)
            for out, figs in pages:
                if (pr := check_page(b, out, figs)): failures.setdefault(str(out.relative_to(OUT)), []).extend(pr)
                print(f"checked {out.relative_to(ROOT)}: {figs} figures" + (f" — {'; '.join(pr)}" if pr else ", ok") + f"; screenshot {out.with_suffix('.png').relative_to(ROOT)}")
            b.close()
    if failures:
        print("\nDOCS CHECK FAILED:\n" + "\n".join(f"  {k}: {'; '.join(v)}" for k, v in failures.items()), file=sys.stderr)
        return 1
    print(f"{len(pages)} pages" + (", all checked in Chromium" if a.check else ""))
    return 0

if __name__ == "__main__": sys.exit(main())
