"""Exact blocked uniformity against the reference one-liner of Wang & Isola, and against its own matrix multiplies.

Each measurement runs in its own subprocess, so its peak RSS (ru_maxrss) is its own.
  N = 20,000, D = 512: reference `torch.pdist(x).pow(2).mul(-t).exp().mean().log()` vs `uniformity(x)`:
      time ratio (goal >= 3x faster) and peak-memory ratio (goal <= 10%).
  N = 200,000 (the reference would need 80 GB per pdist copy): blocked time vs the same upper-triangle matrix
      multiplies alone (goal <= 1.5x), peak RSS (goal < 2 GB), and the FLOP rate against this machine's matmul rate.
Usage: python bench/uniformity.py [--small 20000] [--big 200000] [--skip-big]
"""
import json, os, sys, time
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness

def data(n, d):
    "Unit vectors in a cone, made in chunks (no N x D temporaries)."
    g = torch.Generator().manual_seed(0)
    x = torch.empty(n, d)
    for i in range(0, n, 8192):
        c = torch.randn(min(8192, n - i), d, generator=g).add_(0.3)
        x[i:i + 8192] = c / c.norm(dim=1, keepdim=True)
    return x

def worker(kind, n, d):
    x = data(n, d)
    base = _harness.rss_gb()
    t0 = time.perf_counter(); out = {}
    if kind == "reference":
        out["value"] = torch.pdist(x, p=2).pow(2).mul(-2).exp().mean().log().item()
    elif kind == "blocked":
        from xmodal_lab.uniformity import uniformity
        out["value"] = uniformity(x)
    elif kind == "matmul":       # the same upper-triangle blocks, multiplies only
        b = max(1, min(n, 2**26 // (4 * n)))
        for i in range(0, n, b): x[i:i + b] @ x[i:].T
    elif kind == "peak":         # this machine's fp32 matmul rate
        a, b = torch.randn(4096, 512), torch.randn(512, 16384)
        for _ in range(2): a @ b
        t0 = time.perf_counter()
        for _ in range(10): a @ b
        out["gflops"] = 10 * 2 * 4096 * 512 * 16384 / (time.perf_counter() - t0) / 1e9
    out.update(seconds=time.perf_counter() - t0, peak_rss_gb=_harness.rss_gb(), inputs_rss_gb=base)
    print(json.dumps(out))

def run(kind, n, d): return _harness.run(__file__, kind, n, d)

def main():
    a = _harness.parser().parse_args()
    if a.worker: return worker(a.worker, a.n, a.d)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, D={a.d}, t=2")
    ref, bl = run("reference", a.small, a.d), run("blocked", a.small, a.d)
    assert abs(ref["value"] - bl["value"]) < 1e-4, (ref, bl)
    print(f"N={a.small}: reference pdist {ref['seconds']:.2f} s, peak RSS {ref['peak_rss_gb']:.2f} GB | blocked {bl['seconds']:.2f} s, peak RSS {bl['peak_rss_gb']:.2f} GB"
          f" | values {ref['value']:.6f} vs {bl['value']:.6f}")
    print(f"RATIO speedup reference / blocked = {ref['seconds'] / bl['seconds']:.2f}x  (goal >= 3)")
    print(f"RATIO peak RSS blocked / reference = {bl['peak_rss_gb'] / ref['peak_rss_gb']:.3f}  (goal <= 0.10)")
    print(f"RATIO peak RSS above the inputs, blocked / reference = {(bl['peak_rss_gb'] - bl['inputs_rss_gb']) / (ref['peak_rss_gb'] - ref['inputs_rss_gb']):.3f}")
    if a.skip_big: return
    peak, mm, big = run("peak", 0, a.d), run("matmul", a.big, a.d), run("blocked", a.big, a.d)
    flops = a.big * a.big * a.d          # upper triangle: N²/2 dot products of 2D flops
    print(f"N={a.big}: blocked {big['seconds']:.1f} s, multiplies alone {mm['seconds']:.1f} s, peak RSS {big['peak_rss_gb']:.2f} GB (inputs {big['inputs_rss_gb']:.2f} GB), value {big['value']:.6f}")
    print(f"RATIO time blocked / matmul-only at {a.big} = {big['seconds'] / mm['seconds']:.3f}  (goal <= 1.5)")
    print(f"RATIO peak RSS at {a.big} = {big['peak_rss_gb']:.2f} GB  (goal < 2 GB)")
    print(f"RATIO FLOP rate: {flops / big['seconds'] / 1e9:.0f} GFLOP/s achieved vs {peak['gflops']:.0f} GFLOP/s plain fp32 matmul on this machine = {flops / big['seconds'] / 1e9 / peak['gflops']:.2f}")

if __name__ == "__main__": main()
