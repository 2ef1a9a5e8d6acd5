import subprocess, sys, os
from pathlib import Path
import torch
from xmodal_lab.cli import main
from xmodal_lab.core import Embeddings

def test_demo_runs_and_reports(capsys, tmp_path):
    assert main(["demo", "--quiet", "--report", str(tmp_path / "demo.html")]) == 0
    out = capsys.readouterr().out
    for s in ("R@1", "R@5", "i2t", "t2i", "Protocol".lower(), "Modality gap: L2M"): assert s in out or s in out.lower()
    assert f"report: {tmp_path / 'demo.html'}" in out and (tmp_path / "demo.html").stat().st_size > 10_000
    assert main(["demo", "--quiet", "--report", ""]) == 0
    assert "cache hit" in capsys.readouterr().out

def test_report_command(tmp_path, capsys):
    import numpy as np
    g = torch.Generator().manual_seed(0)
    x = torch.randn(60, 16, generator=g)
    np.save(tmp_path / "a.npy", np.stack([(x + 1).numpy(), (x - 1).numpy()]))
    Embeddings(x + 1, x - 1 + 0.3 * torch.randn(60, 16, generator=g)).save(tmp_path / "b.safetensors")
    assert main(["report", str(tmp_path / "a.npy"), "--out", str(tmp_path / "one.html"), "--json", str(tmp_path / "one.json")]) == 0
    assert main(["report", f"raw={tmp_path / 'a.npy'}", f"noisy={tmp_path / 'b.safetensors'}", "--n-boot", "200",
                 "--out", str(tmp_path / "two.html"), "--csv", str(tmp_path / "two.csv")]) == 0
    out = capsys.readouterr().out
    assert out.count("report: ") == 2 and "noisy" in (tmp_path / "two.csv").read_text()
    assert main(["report", f"a={tmp_path / 'a.npy'}", f"a={tmp_path / 'b.safetensors'}"]) == 2
    assert "two inputs are named 'a'" in capsys.readouterr().err

def test_embed_on_coco_folder(coco_dir, tmp_path, capsys):
    img, cap, ds = coco_dir
    out = tmp_path / "coco.safetensors"
    assert main(["embed", "--data", f"coco:{img}:{cap}", "--out", str(out), "--quiet"]) == 0
    e = Embeddings.load(out)
    assert (e.n_images, e.n_texts, e.dim) == (12, 36, 128)
    assert e.captions == ds.captions and e.image_of_text.tolist() == ds.image_of_text.tolist()
    assert e.meta["model"] == "xmodal-tiny" and e.meta["dataset"] == "coco/captions_val"

def test_demo_on_coco_folder(coco_dir, capsys):
    img, cap, _ = coco_dir
    assert main(["demo", "--data", f"coco:{img}:{cap}", "--quiet", "--report", ""]) == 0
    assert "images: 12" in capsys.readouterr().out

def test_embed_reports_missing_images(coco_dir, tmp_path, capsys):
    img, cap, _ = coco_dir
    (img / "003.png").unlink()
    assert main(["embed", "--data", f"coco:{img}:{cap}", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "003.png" in capsys.readouterr().err
    assert main(["embed", "--data", f"coco:{img}:{cap}", "--out", str(tmp_path / "x.safetensors"), "--on-error", "skip", "--quiet"]) == 0
    assert Embeddings.load(tmp_path / "x.safetensors").n_images == 11

def test_console_script_installed():
    exe = Path(sys.executable).parent / "xmodal-lab"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "demo" in r.stdout and "train-tiny" in r.stdout
