"""Render nbs/index.ipynb to README.md as GitHub markdown, without Quarto.

`nbdev_readme` needs Quarto; this does the same job with nbformat alone: hidden cells and `#|` directives are
dropped, code cells become fenced Python, and their stored text outputs follow as plain blocks.
Usage: python tools/readme.py          # write README.md
       python tools/readme.py --check  # fail if README.md is not what index.ipynb renders to
"""
import sys, pathlib, nbformat

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEADER = "<!-- Generated from nbs/index.ipynb by tools/readme.py: edit the notebook, not this file. -->\n\n"

def directives(src):
    return {l[3:].strip().split(":")[0].split(" ")[0] for l in src.splitlines() if l.startswith("#| ")}

def outputs(cell):
    out = []
    for o in cell.get("outputs", []):
        if o.output_type == "stream": out.append(o.text)
        elif o.output_type in ("execute_result", "display_data"):
            d = o.get("data", {})
            if "text/markdown" in d: out.append(("md", d["text/markdown"]))
            elif "text/plain" in d and not any(k.startswith(("text/html", "application/vnd.plotly", "image/")) for k in d): out.append(d["text/plain"])
    return out

def render(nb):
    parts = []
    for c in nb.cells:
        src = c.source
        if c.cell_type == "markdown": parts.append(src.strip()); continue
        if c.cell_type != "code": continue
        ds = directives(src)
        if "hide" in ds or "export" in ds or "default_exp" in ds: continue
        code = "\n".join(l for l in src.splitlines() if not l.startswith("#|")).strip()
        if "echo" not in ds and code: parts.append(f"```python\n{code}\n```")
        for o in outputs(c):
            if isinstance(o, tuple): parts.append(o[1].strip())
            elif o.strip(): parts.append("```\n" + o.rstrip() + "\n```")
    return HEADER + "\n\n".join(parts) + "\n"

def main(argv):
    md = render(nbformat.read(ROOT / "nbs" / "index.ipynb", as_version=4))
    readme = ROOT / "README.md"
    if "--check" in argv:
        if not readme.exists() or readme.read_text() != md:
            print("README.md is out of date with nbs/index.ipynb: run `python tools/readme.py` and commit"); return 1
        print("README.md is up to date with nbs/index.ipynb"); return 0
    readme.write_text(md); print(f"wrote {readme}"); return 0

if __name__ == "__main__": sys.exit(main(sys.argv[1:]))
