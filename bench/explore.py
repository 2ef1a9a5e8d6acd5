"""The explorer's interactions, timed against the ~1 s a slider move may take on 2 cores.

  5,000 points (2,500 images and 2,500 captions, D = 512): λ-slider update (shift, projection, figure, metric line),
  a click (own pairs and neighbours on the whole set), a colour change to own-pair rank (computed once, then cached).
  200,000 points (100,000 pairs): construction (sample, gap plane), then the same interactions, which touch the
  50,000-point sample and the 5,000-image metric sample only; a click still ranks against all 200,000 points.
Prints each time and its ratio to the 1 s target. Usage: python bench/explore.py [--skip-big]
"""
import os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness
from xmodal_lab.core import Embeddings
from xmodal_lab.explore import Explorer

def data(n, d=512, seed=0):
    "n pairs of unit vectors in two cones, matched pairs close."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) * 0.5 + 1.0 * torch.randn(d, generator=g)
    y = x + 0.6 * torch.randn(n, d, generator=g) - 0.8 * torch.randn(d, generator=g)
    return Embeddings(x, y)

def timed(f):
    t = time.perf_counter(); f(); return time.perf_counter() - t

def measure(n):
    e = data(n)
    rows = {}
    t = time.perf_counter(); ex = Explorer(e); ex.widget; rows["build (widget, first figure)"] = time.perf_counter() - t
    ex.set_state(lam=0.05)                                                # warm-up
    rows["λ slider move"] = min(timed(lambda l=l: ex.set_state(lam=l)) for l in (0.1, 0.2, 0.3))
    rows["click (pairs + neighbours)"] = min(timed(lambda i=i: ex.select("image", i)) for i in (1, 2, 3))
    rows["colour by own-pair rank (first)"] = timed(lambda: ex.set_state(color_by="own-pair rank"))
    ex.set_state(color_by="modality")
    rows["colour by own-pair rank (cached)"] = timed(lambda: ex.set_state(color_by="own-pair rank"))
    return rows, ex

if __name__ == "__main__":
    ap = _harness.parser(); a = ap.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    for n in ([2_500] + ([] if a.skip_big else [100_000])):
        rows, ex = measure(n)
        print(f"\n{2 * n:,} points ({len(ex.images) + len(ex.captions):,} shown, metric line on {ex.metrics()['images']:,} images), D = 512, 2 threads")
        for k, v in rows.items(): print(f"  {k:<36} {v:7.3f} s   ({v / 1.0:5.2f} × the 1 s target)")
