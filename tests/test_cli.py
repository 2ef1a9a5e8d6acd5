import subprocess, sys, os
from pathlib import Path
import torch
from xmodal_lab.cli import main
from xmodal_lab.core import Embeddings

def test_demo_runs_and_reports(capsys):
    assert main(["demo", "--quiet"]) == 0
    out = capsys.readouterr().out
    for s in ("R@1", "R@5", "i2t", "t2i", "Protocol".lower(), "Modality gap: L2M"): assert s in out or s in out.lower()
    assert main(["demo", "--quiet"]) == 0
    assert "cache hit" in capsys.readouterr().out

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
    assert main(["demo", "--data", f"coco:{img}:{cap}", "--quiet"]) == 0
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
