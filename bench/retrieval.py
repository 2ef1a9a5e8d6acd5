"""Blocked exact retrieval against a naive full similarity matrix + argsort, on random unit vectors.

Each measurement runs in its own subprocess, so its peak RSS (ru_maxrss) is its own.
  N = M = 20,000, D = 512: naive vs blocked → time ratio and peak-memory ratio.
  Tie cost: the exact engine (float64 decisions in the float32 error band, so identical vectors tie) against the same
  engine on float32 scores alone (exact=False), alternated 5 times each at N = M = 20,000, on the data above and on a
  gallery in which every item appears twice, once relevant and once not (each relevant item has an identical
  irrelevant twin: every query needs the float64 decision), and with five relevant items per query deep in the
  ranking (in the dense bulk of the scores, where the float32 error band holds other items: the costly case).
  N = M = 200,000, D = 512: blocked only (the naive matrix would need 160 GB), against the time of the same
  blocked matrix multiplies alone → overhead ratio (goal <= 1.5x) and peak RSS (goal < 2 GB).
Usage: python bench/retrieval.py [--small 20000] [--big 200000] [--skip-big]
"""
import json, os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness

def data(n, d, seed, like=None, mix=0.5):
    "Unit vectors, made in chunks (no N x D temporaries); with `like`, each row is a noisy twin of like's row."
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, d)
    for i in range(0, n, 8192):
        c = torch.randn(min(8192, n - i), d, generator=g)
        if like is not None: c.mul_(mix).add_(like[i:i + 8192])
        x[i:i + 8192] = c / c.norm(dim=1, keepdim=True)
    return x

def worker(kind, n, d):
    q = data(n, d, 0)
    g = data(n, d, 1, like=q, mix=0.15)                                    # gallery item i is query i's noisy twin
    if kind.endswith("-dup"): g = torch.cat([g[: n // 2], g[: n - n // 2]])      # every item twice: items j and n/2 + j are identical
    base = _harness.rss_gb()
    t = time.perf_counter()
    if kind == "naive":
        s = q @ g.T
        order = s.argsort(1, descending=True)
        rank = (order == torch.arange(n)[:, None]).nonzero()[:, 1] + 1
        out = {"R@1": (rank <= 1).double().mean().item(), "MRR": (1 / rank.double()).mean().item()}
    elif kind.startswith("blocked"):
        from xmodal_lab.metrics import rank_queries
        qg = torch.arange(n) % (n // 2) if kind.endswith("-dup") else torch.arange(n)
        gg = torch.cat([torch.arange(n // 2), n + torch.arange(n - n // 2)]) if kind.endswith("-dup") else torch.arange(n)   # the second copy is never relevant
        if kind.endswith("-deep"): gg = torch.arange(n) // 5        # query i: items 5i..5i+4, unrelated to it (queries past n/5 have none)
        st = rank_queries(q, g, qg, gg, exact=not kind.startswith("blocked-f32"))
        r = st["first_rank"].double()
        out = {"R@1": (r <= 1).double().mean().item(), "MRR": (1 / r).mean().item()}
    elif kind == "matmul":   # the same blocks, matrix multiplies only
        b = max(1, min(n, 2**28 // (4 * n)))
        for i in range(0, n, b): s = q[i:i + b] @ g.T
        out = {}
    dt = time.perf_counter() - t
    out.update(seconds=dt, peak_rss_gb=_harness.rss_gb(), inputs_rss_gb=base,
               gflops=2 * n * n * d / dt / 1e9)
    print(json.dumps(out))

def run(kind, n, d): return _harness.run(__file__, kind, n, d)

def main():
    a = _harness.parser().parse_args()
    if a.worker: return worker(a.worker, a.n, a.d)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, D={a.d}")
    nv, bl = run("naive", a.small, a.d), run("blocked", a.small, a.d)
    assert abs(nv["R@1"] - bl["R@1"]) < 1e-9 and abs(nv["MRR"] - bl["MRR"]) < 1e-6, (nv, bl)
    print(f"N=M={a.small}: naive {nv['seconds']:.2f} s, peak RSS {nv['peak_rss_gb']:.2f} GB | blocked {bl['seconds']:.2f} s, peak RSS {bl['peak_rss_gb']:.2f} GB | same R@1 {bl['R@1']:.4f}, MRR {bl['MRR']:.4f}")
    print(f"RATIO time blocked / naive = {bl['seconds'] / nv['seconds']:.3f}")
    print(f"RATIO peak RSS blocked / naive = {bl['peak_rss_gb'] / nv['peak_rss_gb']:.3f}")
    for suffix, what in (("", "distinct items"), ("-dup", "each relevant item with an identical irrelevant twin"), ("-deep", "5 relevant items per query, deep in the ranking")):
        ex, f32 = [], []
        for _ in range(5):                                                   # alternated, so drift hits both alike
            f32.append(run("blocked-f32" + suffix, a.small, a.d)); ex.append(run("blocked" + suffix, a.small, a.d))
        me, mf = sorted(r["seconds"] for r in ex)[2], sorted(r["seconds"] for r in f32)[2]
        print(f"N=M={a.small}, {what}: exact ties {me:.2f} s, float32 scores only {mf:.2f} s (medians of 5); R@1 {ex[0]['R@1']:.4f} vs {f32[0]['R@1']:.4f}")
        print(f"RATIO time exact / float32-only ({what}) = {me / mf:.3f}" + ("  (goal <= 1.10)" if not suffix else "  (a costly case, documented)"))
    if a.skip_big: return
    mm, big = run("matmul", a.big, a.d), run("blocked", a.big, a.d)
    print(f"N=M={a.big}: blocked {big['seconds']:.1f} s ({big['gflops']:.0f} GFLOP/s effective), matrix multiplies alone {mm['seconds']:.1f} s ({mm['gflops']:.0f} GFLOP/s); peak RSS {big['peak_rss_gb']:.2f} GB (inputs {big['inputs_rss_gb']:.2f} GB)")
    print(f"RATIO time blocked / matmul-only at {a.big} = {big['seconds'] / mm['seconds']:.3f}  (goal <= 1.5)")
    print(f"RATIO peak RSS at {a.big} = {big['peak_rss_gb']:.2f} GB  (goal < 2 GB)")

if __name__ == "__main__": main()
