"""The docs check catches the page defects it is there for: each one planted in a page of its own."""
import shutil
from pathlib import Path
import nbformat, pytest
import docs_html as dh                   # tools/ (conftest puts it on the path)
from browser import launch as launch_chromium, require as require_chromium

def _nb(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))

def _stderr_cell(source:str):
    c = nbformat.v4.new_code_cell(source)
    c.outputs = [nbformat.v4.new_output("stream", name="stderr", text="x.py:3: UserWarning: something\n  warnings.warn(msg)\n")]
    return c

def test_stderr_output_fails_unless_marked():
    assert dh.notebook_errors(_nb(_stderr_cell("f()"))) == [
        "cell 0: stderr output (x.py:3: UserWarning: something) — avoid it, or mark the cell `#| warning: true` if it shows on purpose"]
    assert dh.notebook_errors(_nb(_stderr_cell("#| warning: true\nf()"))) == []       # shown on purpose
    assert dh.notebook_errors(_nb(_stderr_cell("#| output: false\nf()"))) == []       # not on the page

@pytest.fixture(scope="module")
def site(tmp_path_factory):
    "A folder laid out as the docs check lays out pages: KaTeX and plotly.js beside them."
    require_chromium("run the docs check's own tests")
    import plotly
    out = tmp_path_factory.mktemp("site")
    shutil.copytree(dh.katex_dir(), out / "katex", ignore=shutil.ignore_patterns("*.tgz"))
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", out / "plotly.min.js")
    return out

def _check(site:Path, name:str, html:str)->list:
    from playwright.sync_api import sync_playwright
    (site / f"{name}.html").write_text(html)
    with sync_playwright() as p:
        b = launch_chromium(p)
        try: return dh.check_page(b, site / f"{name}.html", 0)
        finally: b.close()

def test_squashed_radical_fails(site):
    "The lab template's `svg {height: auto}` squashed KaTeX's √ to a hairline: '1/√512' read '1/ 512'. The page's own fix is undone here."
    from nbconvert import HTMLExporter
    exp = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)
    good = dh.page_html(_nb(nbformat.v4.new_markdown_cell("The scale $1/\\sqrt{512}$, and $$\\sqrt{x^2 + y^2}$$")), 0, exp)
    fix = "<style>.jp-RenderedHTMLCommon .katex svg { height: inherit; }</style>"
    assert fix in good
    assert _check(site, "radical", good) == []
    bad = _check(site, "squashed", good.replace(fix, ""))
    assert len(bad) == 2 and all("stretchy glyph" in p for p in bad), bad

def test_repeated_screenshot_tiles_fail(site):
    "A page whose tiles come out alike (here a fixed cover over a tall page) is reported, as a full-page capture's repeats were not."
    stuck = _check(site, "stuck", "<html><body style='margin:0'><div style='position:fixed;inset:0;background:linear-gradient(red,blue)'>cover</div>"
                                  "<div style='height:5000px'>x</div></body></html>")
    assert stuck and all("is identical to tile 0" in p for p in stuck), stuck
    tall = _check(site, "tall", "<html><body style='margin:0'><div style='height:20000px;background:linear-gradient(red,blue)'>x</div></body></html>")
    assert tall == []
    from PIL import Image
    assert Image.open(site / "tall.png").size == (1200, 20000)          # the whole page, past the 8,192 px where full-page captures repeat

def test_prose_check_flags_a_typed_result(tmp_path):
    "A measured number typed into Markdown is flagged; a cited paper's figure, code, math and quotations are not."
    import json, prose_numbers as pn
    md = ["On the shipped model i2t R@1 is 0.561 and the gap 0.927.",
          "Liang et al. (2022) measure a gap of 0.82 on COCO.", "The call `fmt(0.450316)` prints it.", "With $\\tau = 0.07$ the loss is sharp.",
          "> a quotation with 0.3 in it"]
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [m]} for m in md], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "x.ipynb").write_text(json.dumps(nb))
    assert [(i, n) for i, n, _ in pn.typed_numbers(tmp_path / "x.ipynb")] == [(0, "0.561"), (0, "0.927")]

def test_raw_link_in_a_signature_fails(site):
    "nbdev turns a backticked name in a docment into [name](url); inside the signature's code block it showed as raw markdown."
    bad = _check(site, "rawlink", "<html><body><pre>def f(\n    x, # the [`embed`](https://xmodal-lab.github.io/xmodal-lab/embed.html#embed) cache\n)</pre></body></html>")
    assert bad == ["1 code blocks show a raw markdown link (a backticked name in a docment turned into [name](url)): write names in docments without backticks"]
    assert _check(site, "plain", "<html><body><pre>def f(\n    x, # the embed cache\n)</pre><p><a href='x.html'>link</a></p></body></html>") == []

def test_internals_on_an_api_page_fail(site):
    "Private names (`_select`, `Explorer._set_state`) and object's 'Call self as a function.' on an API page are reported."
    bad = _check(site, "internals", "<html><body><h3>_select</h3><h3>Explorer._set_state</h3><h3>Explorer.select</h3>"
                                     "<h3>str</h3><p>Call self as a function.</p></body></html>")
    assert len(bad) == 1 and "_select, Explorer._set_state, a docstring inherited from object" in bad[0], bad
    assert _check(site, "public", "<html><body><h3>Explorer.select</h3><h3>load_features</h3></body></html>") == []

def test_prose_allow_list_refuses_measured_numbers(tmp_path, monkeypatch):
    "The allow-list is for a definition's constants: an entry whose reason says it was measured fails, and --prune drops stale entries."
    import prose_numbers as pn
    allow = tmp_path / "allow.txt"
    allow.write_text("# header\nx.ipynb | 0.561 | measured: to be produced by code\ngone.ipynb | 0.5 | a definition\n")
    monkeypatch.setattr(pn, "ALLOW", allow); monkeypatch.setattr(pn, "NBS", tmp_path / "nbs"); (tmp_path / "nbs").mkdir()
    assert pn.measured() == {("x.ipynb", "0.561")} and pn.main([]) == 1
    allow.write_text("# header\ngone.ipynb | 0.5 | a definition\n")
    assert pn.main([]) == 1                                    # listed, but no longer in any prose
    assert pn.main(["--prune"]) == 0 and allow.read_text() == "# header\n"
