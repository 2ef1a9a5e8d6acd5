"""Run `reproduce` for every paper that needs no model on the released Mind-the-Gap CLIP features; write nbs/results/reproduce_clip.json.

The docs cannot read the release (it is not in the repository), so the reproduction chapter reads this file;
tests/test_reproduce.py checks it against a fresh run wherever the features are.
Usage: python tools/reproduce_real.py [--features ../shared/data/real-features]
"""
import argparse, json
from pathlib import Path
from xmodal_lab.io import mind_the_gap
from xmodal_lab.reproduce import reproduce

ROOT = Path(__file__).resolve().parents[1]

PAPERS = ("mind-the-gap", "balance-act")

def run(folder, paper="mind-the-gap"):
    "The reproduction on the released CLIP features (and, for mind-the-gap, their random-initialisation twin)."
    e = mind_the_gap("clip", path=folder)
    return reproduce(paper, embeddings=e, random_init=mind_the_gap("clip_random", path=folder) if paper == "mind-the-gap" else None)

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--features", default=str(ROOT.parent / "shared/data/real-features"))
    a = ap.parse_args()
    out, page = ROOT / "nbs/results/reproduce_clip.json", {}
    for paper in PAPERS:
        d = page[paper] = run(a.features, paper).to_dict()
        d["protocol"].pop("seconds", None)                   # the committed file changes only when a number does
        print(f"{paper}: {d['summary']}")
    out.write_text(json.dumps(page, indent=1, ensure_ascii=False) + "\n")
    print(out)

if __name__ == "__main__": main()
