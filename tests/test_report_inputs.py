"""Report inputs and outputs that a new user's sweep broke (issue 25, items 2, 8 and the .npy part of 10): unreadable
feature files are one-line errors with exit code 2, and the CSV twin cannot run as a spreadsheet formula."""
import csv, os, re, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch

CLI = str(Path(sys.executable).parent / "xmodal-lab")

@pytest.mark.parametrize("content, says", [(b"", "is empty (0 bytes)"), (b"hello\n", "is not a .npy file"), (None, "holds Python objects")])
def test_unreadable_npy_is_one_line(tmp_path, content, says):
    p = tmp_path / "f.npy"
    if content is None: np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else: p.write_bytes(content)
    r = subprocess.run([CLI, "report", str(p), "--out", str(tmp_path / "r.html")], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 2 and says in r.stderr and str(p) in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    from xmodal_lab.core import Embeddings
    with pytest.raises(ValueError, match=re.escape(says)): Embeddings.open(p)

def test_truncated_npy_names_the_file(tmp_path):
    from xmodal_lab.io import npy_pairs
    p = tmp_path / "cut.npy"; np.save(p, np.ones((2, 50, 8), np.float32))
    p.write_bytes(p.read_bytes()[:300])
    with pytest.raises(ValueError, match="cut.npy"): npy_pairs(p)

def test_csv_twin_neutralises_formulas(tmp_path):
    from xmodal_lab.core import Embeddings
    from xmodal_lab.report import report
    g = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(60, 16, generator=g), dim=1)
    sets = {name: Embeddings(x, torch.nn.functional.normalize(x + s * torch.randn(60, 16, generator=g), dim=1))
            for name, s in (("=HYPERLINK(\"http://x\")", 0.3), ("+1+1", 0.5), ("@SUM(A1)", 0.7), ("-2", 0.9))}
    report(sets, tmp_path / "r.html", csv_path=tmp_path / "r.csv", n_boot=100)
    cells = [c for row in csv.reader(open(tmp_path / "r.csv", encoding="utf-8")) for c in row]
    assert not [c for c in cells if c[:1] in "=+@" and c], "a cell would run as a formula"
    assert "'=HYPERLINK(\"http://x\")" in cells and "'-2" in cells
    numbers = [c for c in cells if c.startswith("-") and c[1:2].isdigit()]
    assert numbers, "negative numbers stay numbers"
