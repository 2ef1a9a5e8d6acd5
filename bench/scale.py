"""Embeddings larger than memory: a memory-mapped 2,000,000-row set, and the blocked engines at 200,000.

Every measurement runs in its own subprocess, so its peak RSS (ru_maxrss, which counts the mapped file pages a process
holds) is its own. D = 512 throughout.
  1. 2,000,000 image rows + 10,000 captions, float16 on disk (2 GB), opened with `Embeddings.open` (hashes and rows
     checked): the gap report, sampled uniformity (1M pairs, with SE) and 10,000 caption queries against the 2M images
     (exact ranks and top-10). Goals: peak RSS < 1.5 GB; retrieval time within 1.3x of the matrix multiplies it needs
     (the same tiles, multiplied alone, in the same run).
  2. Retrieval at N = M = 200,000 in memory (text → image): peak RSS < 2 GB.
  3. Exact uniformity at 200,000: FLOP rate against this machine's plain matmul rate, measured in the same run (goal >= 0.8).
  4. Exact uniformity at 20,000: memory added above the inputs, against the `torch.pdist` reference's (goal <= 0.10).
It prints one RATIO line per goal and writes nbs/results/scale.json, which the Scale chapter shows.
Usage: python bench/scale.py [--out-dir DIR (default: a temporary folder, deleted after)] [--quick: 1/10 of every size]
"""
import argparse, datetime, json, math, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import torch

HERE = Path(__file__).resolve().parent
D = 512

def rss_gb():
    "Peak resident memory of this process (VmHWM: ru_maxrss would carry the launching process's peak across fork and exec)."
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"): return int(line.split()[1]) / 2**20

def rss_now():
    "Resident memory of this process now."
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1]) / 2**20

def unit_rows(n, seed, shift=0.3, out=None):
    "n unit vectors of a cone, made in chunks (no N x D temporaries)."
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, D) if out is None else out
    for i in range(0, n, 8192):
        c = torch.randn(min(8192, n - i), D, generator=g).add_(shift)
        x[i:i + len(c)] = c / c.norm(dim=1, keepdim=True)
    return x

def w_write(path, n, q):
    "The big set: n images and q captions (caption j describes image j·(n // q)), saved as float16."
    from xmodal_lab.core import Embeddings
    x = unit_rows(n, 0); y = unit_rows(q, 1, shift=0.1)
    link = torch.arange(q) * (n // q)
    y = torch.nn.functional.normalize(y + 1.5 * x[link], dim=1)          # captions near their images: a real ranking problem
    t0 = time.perf_counter(); Embeddings(x, y, link).save(path, dtype="float16")
    return {"seconds": time.perf_counter() - t0, "bytes": Path(path).stat().st_size}

def w_mapped(path, n, q):
    from xmodal_lab.core import Embeddings
    from xmodal_lab.gap import gap_report
    from xmodal_lab.uniformity import uniformity_sampled
    from xmodal_lab.metrics import rank_queries, _summarise
    out, t = {"rss_start_gb": rss_gb()}, time.perf_counter()
    e = Embeddings.open(path); out["open_s"] = time.perf_counter() - t; out["rss_after_open_gb"] = rss_gb()
    t = time.perf_counter(); g = gap_report(e).stats; out["gap_s"] = time.perf_counter() - t; out["rss_after_gap_gb"] = rss_gb()
    out["gap"] = g["L2M gap ‖Δ‖"]; out["matched_cos"] = g["matched cosine"]
    t = time.perf_counter(); u = uniformity_sampled(e.image); out["unif_s"] = time.perf_counter() - t
    out["uniformity"], out["uniformity_se"] = u.value, u.se; out["rss_after_unif_gb"] = rss_gb()
    t = time.perf_counter()
    st = rank_queries(e.text, e.image, e.image_of_text, torch.arange(e.n_images), topk=10)
    out["retrieval_s"] = time.perf_counter() - t; out["rss_after_retrieval_gb"] = rss_gb()
    out["R@1"] = _summarise(st, (1,))["R@1"]; out["top1_is_own"] = float((st["topk"][:, 0] == e.image_of_text).double().mean())
    # the multiplies alone: the same query block against gallery blocks of the same shape, from memory
    side = math.isqrt(2**28 // 4); bq = min(q, side); bg = min(n, 2**28 // (4 * bq), 2**28 // (32 * D))
    qb, gb = e.text.rows(0, bq), torch.randn(bg, D)
    t = time.perf_counter()
    for i in range(0, q, bq):
        for j in range(0, n, bg):
            qb[:min(bq, q - i)] @ (gb if j + bg <= n else gb[:n - j]).T
    out["matmul_s"] = time.perf_counter() - t
    out["peak_rss_gb"] = rss_gb()
    return out

def w_retrieval(n):
    from xmodal_lab.core import Embeddings
    from xmodal_lab.metrics import retrieval
    x = unit_rows(n, 0); y = unit_rows(n, 1).add_(x, alpha=1.5)
    y.div_(y.norm(dim=1, keepdim=True))                                   # in place: no second copy
    e = Embeddings(x, y); del x, y
    base = rss_now(); t = time.perf_counter()
    r = retrieval(e, directions=("t2i",))
    return {"seconds": time.perf_counter() - t, "rss_before_gb": base, "peak_rss_gb": rss_gb(), "R@1": r["t2i"]["R@1"]}

def w_uniformity(n):
    from xmodal_lab.uniformity import uniformity
    x = unit_rows(n, 0)
    a, b = torch.randn(4096, D), torch.randn(D, 4096)
    for _ in range(2): a @ b
    t = time.perf_counter()
    for _ in range(10): a @ b
    gflops = 10 * 2 * 4096 * D * 4096 / (time.perf_counter() - t) / 1e9
    base = rss_now(); t = time.perf_counter(); v = uniformity(x); s = time.perf_counter() - t
    return {"seconds": s, "value": v, "gflops_plain": gflops, "gflops": n * (n - 1) / 2 * 2 * D / s / 1e9, "rss_before_gb": base, "peak_rss_gb": rss_gb()}

def w_pdist(n):
    x = unit_rows(n, 0); base = rss_now(); t = time.perf_counter()
    v = torch.pdist(x, p=2).pow(2).mul(-2).exp().mean().log().item()
    return {"seconds": time.perf_counter() - t, "value": v, "rss_before_gb": base, "peak_rss_gb": rss_gb()}

WORKERS = {"write": w_write, "mapped": w_mapped, "retrieval": w_retrieval, "uniformity": w_uniformity, "pdist": w_pdist}

def run(kind, *args):
    r = subprocess.run([sys.executable, __file__, "--worker", kind, *map(str, args)], capture_output=True, text=True)
    if r.returncode: raise SystemExit(f"{kind} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--worker"); ap.add_argument("args", nargs="*")
    ap.add_argument("--out-dir"); ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.worker:
        conv = lambda s: int(s) if s.isdigit() else s
        return print(json.dumps(WORKERS[a.worker](*map(conv, a.args))))
    f = 10 if a.quick else 1
    big, q, mid, small = 2_000_000 // f, 10_000 // f, 200_000 // f, 20_000 // f
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, D = {D}")
    folder = Path(a.out_dir or tempfile.mkdtemp(prefix="xmodal-scale-")); folder.mkdir(parents=True, exist_ok=True)
    rows = {}
    try:
        path = folder / "big.safetensors"
        w = run("write", path, big, q)
        m = run("mapped", path, big, q)
        disk = w["bytes"] / 2**30
        print(f"1. {big:,} images + {q:,} captions, float16 on disk: {disk:.2f} GiB. open (hash + row checks) {m['open_s']:.1f} s, gap report {m['gap_s']:.1f} s "
              f"(gap {m['gap']:.3f}), sampled uniformity {m['unif_s']:.1f} s ({m['uniformity']:.4f} ± {m['uniformity_se']:.4f}), "
              f"retrieval {m['retrieval_s']:.1f} s (R@1 {m['R@1']:.3f}) vs its multiplies alone {m['matmul_s']:.1f} s")
        print("   peak RSS after each step (GB): " + ", ".join(f"{k[4:-3]} {v:.2f}" for k, v in m.items() if k.startswith("rss_")))
        print(f"RATIO peak RSS, everything on the 2M set = {m['peak_rss_gb']:.2f} GB for {disk:.2f} GiB on disk  (goal < 1.5 GB)")
        print(f"RATIO retrieval time / its matrix multiplies = {m['retrieval_s'] / m['matmul_s']:.2f}  (goal <= 1.3)")
        rows[f"{big:,} images + {q:,} captions, memory-mapped"] = {"on disk (GiB)": disk, "peak RSS (GB)": m["peak_rss_gb"], "seconds": m["open_s"] + m["gap_s"] + m["unif_s"] + m["retrieval_s"],
                                                                   "ratio": m["retrieval_s"] / m["matmul_s"], "what": "open + gap report + sampled uniformity + 10k queries exact top-10; ratio: retrieval / its multiplies"}
        r = run("retrieval", mid)
        print(f"2. retrieval t2i at N = M = {mid:,}: {r['seconds']:.1f} s, R@1 {r['R@1']:.3f}, peak RSS {r['peak_rss_gb']:.2f} GB (resident before it: {r['rss_before_gb']:.2f} GB, with the two 200,000 × 512 float32 sides)")
        print(f"RATIO peak RSS, retrieval at {mid:,} = {r['peak_rss_gb']:.2f} GB  (goal < 2 GB)")
        rows[f"retrieval, N = M = {mid:,}"] = {"on disk (GiB)": None, "peak RSS (GB)": r["peak_rss_gb"], "seconds": r["seconds"], "ratio": None, "what": "in memory, text → image, exact ranks"}
        u = run("uniformity", mid)
        print(f"3. exact uniformity at {mid:,}: {u['seconds']:.1f} s, {u['gflops']:.0f} GFLOP/s vs plain matmul {u['gflops_plain']:.0f} GFLOP/s, peak RSS {u['peak_rss_gb']:.2f} GB")
        print(f"RATIO exact uniformity FLOP rate / plain matmul rate at {mid:,} = {u['gflops'] / u['gflops_plain']:.2f}  (goal >= 0.8)")
        rows[f"exact uniformity, N = {mid:,}"] = {"on disk (GiB)": None, "peak RSS (GB)": u["peak_rss_gb"], "seconds": u["seconds"], "ratio": u["gflops"] / u["gflops_plain"], "what": "ratio: FLOP rate / plain matmul rate"}
        s, p = run("uniformity", small), run("pdist", small)
        assert abs(s["value"] - p["value"]) < 1e-4, (s, p)
        add_s, add_p = s["peak_rss_gb"] - s["rss_before_gb"], p["peak_rss_gb"] - p["rss_before_gb"]
        print(f"4. exact uniformity at {small:,}: blocked {s['seconds']:.2f} s adds {1024 * add_s:.0f} MB; torch.pdist reference {p['seconds']:.2f} s adds {1024 * add_p:.0f} MB (values {s['value']:.6f} / {p['value']:.6f})")
        print(f"RATIO memory added, blocked / pdist reference at {small:,} = {add_s / add_p:.3f}  (goal <= 0.10)")
        rows[f"exact uniformity, N = {small:,}"] = {"on disk (GiB)": None, "peak RSS (GB)": s["peak_rss_gb"], "seconds": s["seconds"], "ratio": add_s / add_p, "what": "ratio: memory added / torch.pdist reference's"}
    finally:
        if not a.out_dir: shutil.rmtree(folder, ignore_errors=True)
    if not a.quick:
        res = {"rows": rows, "machine": f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.machine()}",
               "date": datetime.date.today().isoformat()}
        (HERE.parent / "nbs" / "results" / "scale.json").write_text(json.dumps(res, indent=1) + "\n")

if __name__ == "__main__": main()
