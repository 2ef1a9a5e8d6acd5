"Shared by the benchmarks: run one measurement in its own subprocess (so ru_maxrss is its own), and the usual flags."
import argparse, json, resource, subprocess, sys

def rss_gb()->float:
    "Peak resident set size of this process so far, in GiB."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20

def run(script:str, kind:str, n:int, d:int)->dict:
    "Run `script --worker kind --n n --d d` and return the JSON it prints last."
    r = subprocess.run([sys.executable, script, "--worker", kind, "--n", str(n), "--d", str(d)], capture_output=True, text=True)
    if r.returncode: raise SystemExit(f"{kind} at n={n} failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])

def parser()->argparse.ArgumentParser:
    "--worker/--n/--d for the subprocess side, --small/--big/--skip-big for the driver."
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker"); ap.add_argument("--n", type=int); ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--small", type=int, default=20_000); ap.add_argument("--big", type=int, default=200_000); ap.add_argument("--skip-big", action="store_true")
    return ap
