"""Run `reproduce("mind-the-gap", ...)` on the released Mind-the-Gap CLIP features and write nbs/results/reproduce_clip.json.

The docs cannot read the release (it is not in the repository), so the reproduction chapter reads this file;
tests/test_reproduce.py checks it against a fresh run wherever the features are.
Usage: python tools/reproduce_real.py [--features ../shared/data/real-features]
"""
import argparse, json
from pathlib import Path
from xmodal_lab.io import mind_the_gap
from xmodal_lab.reproduce import reproduce

ROOT = Path(__file__).resolve().parents[1]

def run(folder):
    "The reproduction on the released CLIP features and their random-initialisation twin."
    return reproduce("mind-the-gap", embeddings=mind_the_gap("clip", path=folder), random_init=mind_the_gap("clip_random", path=folder))

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--features", default=str(ROOT.parent / "shared/data/real-features"))
    a = ap.parse_args()
    d = run(a.features).to_dict()
    d["protocol"].pop("seconds", None)                       # the committed file changes only when a number does
    out = ROOT / "nbs/results/reproduce_clip.json"
    out.write_text(json.dumps(d, indent=1, ensure_ascii=False) + "\n")
    print(f"{out}: {d['summary']}")

if __name__ == "__main__": main()
