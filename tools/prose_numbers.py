"""Flag measured numbers typed into a chapter's prose.

A number that a page reports as a result must come from code (an `output: asis` cell, or Markdown built from the
result object): typed by hand, it goes stale at the next rerun and the prose contradicts the table beside it. This
check reads every Markdown cell of `nbs/` and lists the decimal numbers (0.42, 1.5e-3, 35.2°, 12.5%) that stand
outside code spans, math, links, HTML attributes and quotations (lines starting with >), and outside sentences
that cite a paper (et al., arXiv, a year in parentheses): those are the paper's figures, allowed with their citation.

What is left is either converted to code or listed in `tools/prose_allow.txt` (`notebook | number | why`): constants
of a definition (a temperature of 0.07 in a formula's prose, a 0.5 threshold), not measurements.

Usage: python tools/prose_numbers.py [--list] [--prune]   (exit 1 when a number is neither allowed nor produced by code;
--prune removes the allow-list lines whose number has left the prose)
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, ALLOW = ROOT / "nbs", Path(__file__).resolve().parent / "prose_allow.txt"
NUMBER = re.compile(r"(?<![\w.\-/#])[-−]?\d+\.\d+(?:e[-−]?\d+)?(?![\w.]*\w)")
CITATION = re.compile(r"et al\.|arXiv|\(\d{4}[a-z]?\)|\b(19|20)\d\d\b[,;)]|§|Table \d|Figure \d|Fig\. \d|the paper (reports|measures|gives)", re.I)

def prose(md:str)->str:
    "The reader's prose of a Markdown cell: no code, math, links' targets, HTML tags or quotations."
    md = re.sub(r"```.*?```", " ", md, flags=re.S)
    md = re.sub(r"\$\$.*?\$\$", " ", md, flags=re.S)
    md = re.sub(r"\$[^$\n]+\$", " ", md)
    md = re.sub(r"`[^`\n]+`", " ", md)
    md = re.sub(r"\]\([^)]*\)", "]", md)
    md = re.sub(r"<[^>]+>", " ", md)
    return "\n".join(l for l in md.splitlines() if not l.lstrip().startswith(">"))

def sentences(text:str):
    return re.split(r"(?<=[.!?])\s+(?=[A-Z(])|\n\s*\n|\n[-*] ", text)

def typed_numbers(nb_path:Path)->list:
    "(cell index, number, sentence) for every decimal number in the prose of a notebook's Markdown cells outside citations."
    out = []
    for i, c in enumerate(json.loads(nb_path.read_text())["cells"]):
        if c["cell_type"] != "markdown": continue
        for s in sentences(prose("".join(c["source"]))):
            if CITATION.search(s): continue
            for m in NUMBER.finditer(s): out.append((i, m.group(0).replace("−", "-"), " ".join(s.split())[:140]))
    return out

def allowed()->set:
    rows = [l.split("|") for l in ALLOW.read_text().splitlines() if l.strip() and not l.startswith("#")] if ALLOW.exists() else []
    return {(r[0].strip(), r[1].strip()) for r in rows}

def measured()->set:
    "Allow-list entries whose reason says they were measured: those may not be listed."
    rows = [l.split("|") for l in ALLOW.read_text().splitlines() if l.strip() and not l.startswith("#")] if ALLOW.exists() else []
    return {(r[0].strip(), r[1].strip()) for r in rows if len(r) > 2 and r[2].strip().lower().startswith("measured")}

def main(argv=None)->int:
    argv = sys.argv[1:] if argv is None else argv
    ok, bad, seen = allowed(), [], set()
    for f in sorted(NBS.rglob("*.ipynb")):
        if "_proc" in f.parts or f.name.startswith("_"): continue
        rel = str(f.relative_to(NBS))
        for i, num, s in typed_numbers(f):
            seen.add((rel, num))
            if (rel, num) not in ok: bad.append(f"{rel} cell {i}: {num} — “{s}”")
    bad += [f"{ALLOW.name}: {nb} | {num} is listed as measured: a measured number is made by code, not allowed" for nb, num in sorted(measured())]
    stale = ok - seen
    if "--prune" in argv and stale:
        keep = [l for l in ALLOW.read_text().splitlines(keepends=True)
                if l.startswith("#") or not l.strip() or tuple(x.strip() for x in l.split("|")[:2]) not in stale]
        ALLOW.write_text("".join(keep)); print(f"pruned {len(stale)} allow-list lines"); stale = set()
    bad += [f"{nb} | {num}: listed in {ALLOW.name} but no longer in the prose — remove the line" for nb, num in sorted(stale)]
    if "--list" in argv or bad:
        print("\n".join(bad) or "no hand-typed measured numbers in the prose")
    if bad:
        print(f"\nPROSE CHECK FAILED: {len(bad)} findings. A number typed into Markdown: produce them from code (an `output: asis` cell or Markdown "
              f"built from the result), cite the paper in the sentence if they are its figures, or list a definition's constant in "
              f"{ALLOW.relative_to(ROOT) if ALLOW.is_relative_to(ROOT) else ALLOW} with the reason.", file=sys.stderr)
        return 1
    print("prose check: every decimal number in the chapters' prose is a citation, a listed constant, or made by code")
    return 0

if __name__ == "__main__":
    sys.exit(main())
