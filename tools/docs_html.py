"""Check the docs without Quarto: nbdev's processed notebooks → nbconvert HTML pages that load plotly.js from the
page's own folder (no CDN) → optional screenshots in headless Chromium.

Usage: python tools/docs_html.py [--screenshot] [--only 20_gap]   → pages in _docs_local/
"""
import argparse, shutil, subprocess, tempfile
from pathlib import Path
import nbformat, plotly
from nbconvert import HTMLExporter
from nbdev.serve import proc_nbs

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_docs_local"

def shoot(html:Path, png:Path):
    with tempfile.TemporaryDirectory() as prof:
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic", f"--user-data-dir={prof}",
                        f"--screenshot={png}", "--window-size=1200,2400", "--virtual-time-budget=8000", f"file://{html}"],
                       check=True, capture_output=True, timeout=120)

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--screenshot", action="store_true"); ap.add_argument("--only", default="")
    a = ap.parse_args()
    proc = Path(proc_nbs(n_workers=0))
    OUT.mkdir(exist_ok=True)
    shutil.copy(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", OUT / "plotly.min.js")
    exp = HTMLExporter(template_name="lab")
    for nb in sorted(proc.rglob("*.ipynb")):
        if a.only not in nb.stem: continue
        body, _ = exp.from_notebook_node(nbformat.read(nb, as_version=4))
        assert "cdn.plot.ly" not in body and "cdn.jsdelivr.net/npm/plotly" not in body, f"{nb.name}: a figure loads plotly.js from a CDN"
        body = body.replace("<head>", '<head>\n<script src="plotly.min.js"></script>', 1)
        page = OUT / f"{nb.stem}.html"; page.write_text(body)
        if a.screenshot: shoot(page, OUT / f"{nb.stem}.png")
        print(f"{page}" + (f"  + {nb.stem}.png" if a.screenshot else ""))

if __name__ == "__main__": main()
