"""The package is layered by chapter: a module imports only modules of lower chapters (its notebook's number), at the
top of the file or inside a function, so no import runs back up and no two modules import each other. And every
module imports on its own, the command line without torch."""
import ast, json, re, subprocess, sys
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parent.parent / "xmodal_lab"

def chapters()->dict:
    "module -> chapter number, from the 'File to edit: ../nbs/NN_name.ipynb' line nbdev writes at the top of each module."
    out = {}
    for f in sorted(PKG.glob("*.py")):
        m = re.search(r"File to edit: \.\./nbs/(\d+)_\w+\.ipynb", f.read_text()[:600])
        if m: out[f.stem] = int(m.group(1))
    return out

def imports(source:str, pkg:str="xmodal_lab")->set:
    "The package modules that `source` imports, anywhere in the file: relative, absolute, `from . import x`."
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 1 or base == pkg or base.startswith(pkg + "."):
                mod = base.removeprefix(pkg).lstrip(".") if node.level == 0 else base
                found |= {mod.split(".")[0]} if mod else {a.name for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith(pkg + ".")}
    return found

def graph()->dict:
    ch = chapters()
    return {m: imports((PKG / f"{m}.py").read_text()) & set(ch) - {m} for m in ch}

def violations(g:dict, ch:dict)->list:
    "Imports that run back up (to a chapter not lower than the importer's), and import cycles."
    bad = [f"{a} (chapter {ch[a]:02d}) imports {b} (chapter {ch[b]:02d})" for a, bs in g.items() for b in sorted(bs) if ch[b] >= ch[a]]
    state, stack = {}, []
    def visit(m):
        state[m] = "open"; stack.append(m)
        for n in sorted(g.get(m, ())):
            if state.get(n) == "open": bad.append("cycle: " + " → ".join(stack[stack.index(n):] + [n]))
            elif n not in state: visit(n)
        state[m] = "done"; stack.pop()
    for m in sorted(g):
        if m not in state: visit(m)
    return bad

def test_every_module_has_a_chapter():
    mods = {f.stem for f in PKG.glob("*.py")} - {"__init__", "_modidx"}
    assert set(chapters()) == mods, mods - set(chapters())
    assert len(set(chapters().values())) == len(mods), "two modules share a chapter number"

def test_imports_run_down_the_chapters():
    assert violations(graph(), chapters()) == []

def test_the_check_catches_an_import_back_up():
    "The checks fail when `core` imports `scale` again (Embeddings.open used to), and on a plain cycle."
    g, ch = graph(), chapters()
    g["core"] = g["core"] | {"scale"}
    bad = violations(g, ch)
    assert "core (chapter 00) imports scale (chapter 07)" in bad and any(b.startswith("cycle: core → scale") for b in bad)
    assert imports("def f():\n    from xmodal_lab.scale import open_embeddings\n") == {"scale"}       # lazy imports count
    assert imports("from . import io\nimport xmodal_lab.gap as g\nfrom .core import x\n") == {"io", "gap", "core"}

IMPORT_EACH = """
import importlib, json, sys, traceback
import numpy, torch                      # third-party libraries load once; the package is dropped before every import
failed = {}
for m in MODULES:
    for k in [k for k in sys.modules if k == "xmodal_lab" or k.startswith("xmodal_lab.")]: del sys.modules[k]
    try: importlib.import_module("xmodal_lab." + m)
    except Exception: failed[m] = traceback.format_exc()[-500:]
print(json.dumps(failed))
"""

def test_each_module_imports_alone():
    "Each chapter's module imports with no other module of the package loaded before it (one interpreter: torch loads once, not 25 times)."
    r = subprocess.run([sys.executable, "-c", IMPORT_EACH.replace("MODULES", repr(list(chapters())))], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {}

def test_command_line_checks_need_no_torch():
    code = "import sys, xmodal_lab.cli; assert 'torch' not in sys.modules, 'torch imported'; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-1000:]

def test_saved_formats_attach_whatever_is_imported_first():
    "Embeddings.save/load/open come from io, and are there when a session imports only core."
    code = "from xmodal_lab.core import Embeddings; print(all(hasattr(Embeddings, k) for k in ('save', 'load', 'open')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "True", r.stderr[-1000:]
