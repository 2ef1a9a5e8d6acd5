"""`compare` on two large sets: peak memory and where the time goes.

Two sets of N image–caption pairs (D = 512, one caption per image, the second set a perturbed copy of the first, as
two checkpoints of one model are) are compared with every part on: metrics with 1,000 paired-bootstrap resamples,
cross-space geometry (CKA, spatial disorder, affinity KL on 5,000 sampled rows), and backward compatibility (maps
fitted on half the items, retrieval on the other half). The measurement runs in its own subprocess, so its peak RSS
is its own; the goal at N = 100,000 is a peak under 2 GB above the inputs' 0.8 GB, i.e. < 2.8 GB in all.
Usage: python bench/compare.py [--n 100000] (or --skip-big for N = 20,000 only)
"""
import json, os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness

def data(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, d); y = torch.empty(n, d)
    shift = torch.randn(d, generator=g)
    for i in range(0, n, 8192):
        m = min(8192, n - i)
        c = torch.randn(m, d, generator=g)
        x[i:i + m] = c + 0.8 * shift; y[i:i + m] = c + 0.7 * torch.randn(m, d, generator=g) - 0.8 * shift
    return x, y

def worker(kind, n, d):
    from xmodal_lab.core import Embeddings
    from xmodal_lab.compare import compare
    x, y = data(n, d, 0)
    a = Embeddings(x, y); del x, y
    g = torch.Generator().manual_seed(1)
    b = Embeddings(a.image + 0.2 * torch.randn(a.image.shape, generator=g), a.text + 0.2 * torch.randn(a.text.shape, generator=g))
    base = _harness.rss_gb()
    t0 = time.perf_counter()
    c = compare({"A": a, "B": b}, n_boot=1000)
    out = {"seconds": time.perf_counter() - t0, "inputs_gb": 4 * 4 * n * d / 2**30, "rss_before_gb": base, "peak_gb": _harness.rss_gb(),
           "i2t R@1": c.table["A"]["i2t R@1"], "CKA image": c.geometry["B"]["CKA image"]}
    print(json.dumps(out))

if __name__ == "__main__":
    ap = _harness.parser(); a = ap.parse_args()
    if a.worker: worker(a.worker, a.n, a.d); sys.exit()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    for n in ([a.small] if a.skip_big else [a.small, a.n or 100_000]):
        r = _harness.run(__file__, "compare", n, a.d)
        print(f"N = {n:,} pairs × 2 sets, D = {a.d}: {r['seconds']:.0f} s; inputs {r['inputs_gb']:.2f} GB, RSS before {r['rss_before_gb']:.2f} GB, "
              f"peak {r['peak_gb']:.2f} GB (added by compare: {r['peak_gb'] - r['rss_before_gb']:.2f} GB; goal < 2 GB)")
