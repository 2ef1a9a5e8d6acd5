"""Execute notebooks in place and keep their outputs, so the docs site (which shows stored outputs) has results.

Cells flagged with a `tst_flags` flag (`#| slow`) and `#| eval: false` cells are skipped, exactly as `nbdev_test`
skips them, and keep the outputs they have (`--slow` runs them too, to refresh what the pages show). Run `nbdev_clean`
afterwards. Usage: python tools/run_nbs.py [--slow] [nbs/20_gap.ipynb ...]  (default: all)
"""
import os, sys, time
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.config import get_config
from nbdev.process import NBProcessor
from nbdev.frontmatter import FrontmatterProc

WIDGET = "application/vnd.jupyter.widget-view+json"

def _static(o):
    "A widget output keeps only its static twin: without the kernel that made it, a widget view is an empty box."
    d = o.get("data") or {}
    if WIDGET in d and "text/html" in d: o["data"] = {k: v for k, v in d.items() if k != WIDGET}
    return o

def run(fn:Path, flags:set):
    nb = NBProcessor(fn, procs=FrontmatterProc, process=True).nb
    def skip(cell):
        if cell.cell_type != "code": return True
        d = getattr(cell, "directives_", {}) or {}
        if d.get("eval:", [""])[0].lower() == "false": return True
        return bool(flags & d.keys())
    raw = read_nb(fn)
    for c in nb.cells:                        # execnb keeps a cell's old outputs when a run prints nothing: start from none
        if not skip(c): c.outputs = []
    k = CaptureShell(fn)
    cwd = os.getcwd(); os.chdir(fn.parent)
    try: k.run_all(nb, exc_stop=True, preproc=skip)
    finally: os.chdir(cwd)
    # copy outputs of the processed cells back onto the raw notebook (processing only adds directives_)
    for rc, pc in zip(raw.cells, nb.cells):
        if rc.cell_type == "code" and not skip(pc):
            # plotly's display hook leaves an execute_result with no data beside the figure: drop it
            rc.outputs = [_static(o) for o in pc.get("outputs", []) if o.get("output_type") not in ("execute_result", "display_data") or o.get("data")]
            rc.execution_count = pc.get("execution_count")
    write_nb(raw, fn)

if __name__ == "__main__":
    cfg = get_config()
    args = sys.argv[1:]
    flags = set() if "--slow" in args else set(cfg.get("tst_flags", "").split())
    fns = [Path(f) for f in args if f != "--slow"] or sorted(p for p in Path(cfg.nbs_path).rglob("*.ipynb") if not p.name.startswith("_") and ".ipynb_checkpoints" not in str(p))
    for fn in fns:
        t = time.time(); run(fn.resolve(), flags); print(f"{fn}: {time.time() - t:.1f} s")
