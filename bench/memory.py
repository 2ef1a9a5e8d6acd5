"""The memory budget holds at any size: what each step adds on a memory-mapped set of 1M and of 4M pairs (D = 512, float16).

Every streaming engine sizes its buffers from one budget, `xmodal_lab.core.MEMORY_BUDGET` (`$XMODAL_MEMORY_BUDGET`,
default 256 MiB). This benchmark writes a (2, N, D) float16 `.npy` of N = 1,000,000 and of N = 4,000,000 pairs (2 GB and
8 GB on disk) chunk by chunk, then, each step in its own subprocess, opens it with `Embeddings.open` (every row checked)
and runs the gap report (without its classifier probe, which samples a fixed 2 × 20,000 rows whatever N: measured
apart) and sampled uniformity. For each step it measures the memory the step *adds*: VmHWM after
`echo 5 > /proc/self/clear_refs`, minus VmRSS before (MEASURED.md: whole-process peaks count the import of torch).
Goals: the added memory at 4M is within 1.15× of the added memory at 1M (flat), and every step adds less than the budget.
It also runs `Embeddings.open` at 1/4 and 4× the budget, to show the verification pass follows the budget.
It writes nbs/results/memory.json (not with --quick), which the Scale chapter shows.
Usage: python bench/memory.py [--quick: 100k and 400k pairs] [--out-dir DIR (default: a temporary folder, deleted after)]
"""
import argparse, datetime, json, os, platform, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np

D = 512

def write(path:str, n:int):
    "A (2, N, D) float16 .npy of unit rows, captions near their images, written 100k rows at a time (no N × D array in memory)."
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(2, n, D))
    g = np.random.default_rng(0)
    for i in range(0, n, 100_000):
        m = min(100_000, n - i)
        x = g.standard_normal((m, D), dtype=np.float32) + 0.3; x /= np.linalg.norm(x, axis=1, keepdims=True)
        y = x * 1.5 + g.standard_normal((m, D), dtype=np.float32) + 0.1; y /= np.linalg.norm(y, axis=1, keepdims=True)
        a[0, i:i + m], a[1, i:i + m] = x, y
    a.flush(); del a

def _rss(key:str)->float:
    for line in open("/proc/self/status"):
        if line.startswith(key): return int(line.split()[1]) / 2**10     # MiB

def _added(f):
    "(result, MiB this call adds at its peak above what was resident before it, seconds)."
    open("/proc/self/clear_refs", "w").write("5"); base = _rss("VmRSS:"); t = time.perf_counter()
    out = f()
    return out, _rss("VmHWM:") - base, time.perf_counter() - t

def worker(step:str, path:str)->dict:
    from xmodal_lab.core import Embeddings, MEMORY_BUDGET
    if step == "open":
        e, mb, s = _added(lambda: Embeddings.open(path))
        return {"added_mb": mb, "seconds": s, "budget_mb": MEMORY_BUDGET / 2**20}
    e = Embeddings.open(path)
    if step == "gap":
        from xmodal_lab.gap import gap_report
        r, mb, s = _added(lambda: gap_report(e, separability_probe=False))
        return {"added_mb": mb, "seconds": s, "gap": r.stats["L2M gap ‖Δ‖"]}
    if step == "separability":
        from xmodal_lab.gap import separability
        r, mb, s = _added(lambda: separability(e))
        return {"added_mb": mb, "seconds": s, "accuracy": r}
    if step == "uniformity":
        from xmodal_lab.uniformity import uniformity_sampled
        r, mb, s = _added(lambda: uniformity_sampled(e.image))
        return {"added_mb": mb, "seconds": s, "value": r.value}
    raise SystemExit(f"unknown step {step}")

def run(step:str, path:Path, budget:str|None=None)->dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({"XMODAL_MEMORY_BUDGET": budget} if budget else {})}
    r = subprocess.run([sys.executable, __file__, "--worker", step, str(path)], capture_output=True, text=True, env=env)
    if r.returncode: raise SystemExit(f"{step} on {path.name} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--worker", nargs=2); ap.add_argument("--quick", action="store_true"); ap.add_argument("--out-dir")
    a = ap.parse_args()
    if a.worker: return print(json.dumps(worker(*a.worker)))
    sizes = (100_000, 400_000) if a.quick else (1_000_000, 4_000_000)
    folder = Path(a.out_dir or tempfile.mkdtemp(prefix="xmodal-memory-")); folder.mkdir(parents=True, exist_ok=True)
    res = {}
    try:
        for n in sizes:
            p = folder / f"pairs-{n}.npy"; t = time.perf_counter(); write(str(p), n)
            print(f"wrote {n:,} pairs: {p.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - t:.0f} s", flush=True)
            res[n] = {s: run(s, p) for s in ("open", "gap", "uniformity", "separability")}
            print(f"  N = {n:,}: " + ", ".join(f"{s} adds {r['added_mb']:.0f} MiB ({r['seconds']:.1f} s)" for s, r in res[n].items()), flush=True)
            if n == sizes[0]:
                res["budgets"] = {b: run("open", p, b)["added_mb"] for b in ("64M", "256M", "1G")}
            p.unlink()
    finally:
        if not a.out_dir: shutil.rmtree(folder, ignore_errors=True)
    lo, hi = sizes
    budget = res[lo]["open"]["budget_mb"]
    print(f"open at budgets 64 MiB / 256 MiB / 1 GiB adds " + " / ".join(f"{v:.0f}" for v in res["budgets"].values()) + " MiB: the verification pass follows the budget")
    for s in ("open", "gap", "uniformity"):
        print(f"RATIO added memory of {s}, {hi:,} / {lo:,} pairs = {res[hi][s]['added_mb'] / res[lo][s]['added_mb']:.2f}  (goal <= 1.15; "
              f"{res[hi][s]['added_mb']:.0f} MiB at {hi:,}, budget {budget:.0f} MiB)")
    worst = max(res[n][s]["added_mb"] for n in sizes for s in ("open", "gap", "uniformity"))
    print(f"RATIO largest added memory of a streaming step / budget = {worst / budget:.2f}  (goal < 1)")
    if not a.quick:
        rows = {f"{s}, {n:,} pairs": {"added (MiB)": res[n][s]["added_mb"], "seconds": res[n][s]["seconds"]} for s in ("open", "gap", "uniformity", "separability") for n in sizes}
        out = {"rows": rows, "budget_mib": budget, "open_by_budget_mib": res["budgets"], "sizes": list(sizes), "dim": D,
               "machine": f"{os.cpu_count()} cores, {platform.machine()}, one thread", "date": datetime.date.today().isoformat()}
        (Path(__file__).resolve().parent.parent / "nbs" / "results" / "memory.json").write_text(json.dumps(out, indent=1) + "\n")
    print(f"the separability probe (a classifier on 2 × 20,000 sampled rows, not a streaming engine) adds {res[lo]['separability']['added_mb']:.0f} / "
          f"{res[hi]['separability']['added_mb']:.0f} MiB at {lo:,} / {hi:,} pairs: fixed by its sample, not by N")

if __name__ == "__main__": main()
