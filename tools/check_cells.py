"""Fail when a code cell mixes imports with other code.

nbdev's docs processing (`proc_nbs`, run by `nbdev_docs` in the GitHub workflow) executes every cell that contains
an import, out of context and regardless of `#| slow`: a slow cell with an import line would run for minutes on
every docs build, and a cell that needs an earlier variable would break it. Keep imports in cells of their own.
Usage: python tools/check_cells.py [nbs]
"""
import ast, sys
from pathlib import Path
import nbformat

def offending(src:str)->bool:
    code = "\n".join(l for l in src.splitlines() if not l.lstrip().startswith(("%", "!")))
    try: tree = ast.parse(code)
    except SyntaxError: return False
    top = tree.body
    has_import = any(isinstance(n, (ast.Import, ast.ImportFrom)) for n in ast.walk(tree))
    export = any(l.startswith(("#| export", "#|export", "#| exporti", "#| exports")) for l in src.splitlines())
    return has_import and not export and not all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in top)

def main(root="nbs"):
    bad = []
    for f in sorted(Path(root).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in f.parts: continue
        for i, c in enumerate(nbformat.read(f, 4).cells):
            if c.cell_type == "code" and offending(c.source): bad.append(f"{f} cell {i}: {c.source.splitlines()[0][:70]}")
    for b in bad: print(b)
    if bad: sys.exit(f"{len(bad)} cells mix imports with other code; move the imports into a cell of their own")
    print("no cell mixes imports with other code")

if __name__ == "__main__": main(*sys.argv[1:])
