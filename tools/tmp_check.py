"""`make test` runs with its own temporary directory and fails when the run leaves anything in it.

Every notebook and test must clean up after itself (`tempfile.TemporaryDirectory`, pytest's `tmp_path`): a lesson that
leaves a fine-tuning checkpoint folder behind fills the disk within a few dozen runs. `make test` points `TMPDIR` at
a fresh folder, and this script checks at the end that it is empty again.

Usage: python tools/tmp_check.py start DIR   (an empty DIR)
       python tools/tmp_check.py check DIR   (exit 1, listing what is left, unless DIR is empty; DIR is removed either way)
"""
import shutil, sys
from pathlib import Path

def size(p:Path)->int:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink()) if p.is_dir() else p.lstat().st_size

def main(cmd:str, folder:str)->int:
    d = Path(folder)
    if cmd == "start":
        shutil.rmtree(d, ignore_errors=True); d.mkdir(parents=True); return 0
    left = sorted(d.iterdir()) if d.is_dir() else []
    shutil.rmtree(d, ignore_errors=True)
    if not left: print("temp check: the run left nothing in its temporary directory"); return 0
    print(f"TEMP CHECK FAILED: the run left {len(left)} entries in its temporary directory {d} (now removed):", file=sys.stderr)
    for p in left: print(f"  {p.name}{'/' if p.is_dir() else ''}  {size(p) / 2**20:.1f} MiB", file=sys.stderr)
    print("Clean up in the notebook or test that made them: tempfile.TemporaryDirectory(), or pytest's tmp_path.", file=sys.stderr)
    return 1

if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("start", "check"): raise SystemExit(__doc__)
    sys.exit(main(*sys.argv[1:]))
