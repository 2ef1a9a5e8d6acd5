"""What a new user hit (issue 11): provenance through the cache, weights named, random weights asked for, offline
failures that come fast, arguments checked before the heavy imports, CSV column flags, the spec grammar."""
import csv, os, subprocess, sys, time
from pathlib import Path
import pytest, torch
from xmodal_lab.cli import main
from xmodal_lab.core import Embeddings

def _csv_like(coco_dir, tmp_path, img_col="filepath", cap_col="caption"):
    "The COCO fixture's images and captions as an open_clip CSV, in the same order (so the same content)."
    img, cap, ds = coco_dir
    path = tmp_path / "captions.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f); w.writerow([img_col, cap_col])
        for j, c in enumerate(ds.captions): w.writerow([str(img / f"{int(ds.image_of_text[j]):03d}.png"), c])
    return path

def test_cache_hit_carries_the_current_provenance(coco_dir, tmp_path, capsys):
    img, cap, _ = coco_dir
    path = _csv_like(coco_dir, tmp_path)
    assert main(["embed", "--data", f"csv:{path}", "--out", str(tmp_path / "a.safetensors"), "--quiet"]) == 0
    assert main(["embed", "--data", f"coco:{img}:{cap}", "--out", str(tmp_path / "b.safetensors"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "cache hit" in out                                        # the same content: the arrays come from the cache
    a, b = Embeddings.load(tmp_path / "a.safetensors"), Embeddings.load(tmp_path / "b.safetensors")
    assert torch.equal(a.image, b.image)
    assert a.meta["dataset"] == "csv/captions" and b.meta["dataset"] == "coco/captions_val"   # ... the names do not
    assert main(["demo", "--data", f"coco:{img}:{cap}", "--quiet", "--report", ""]) == 0
    assert "dataset: coco/captions_val" in capsys.readouterr().out

def test_protocol_names_the_weights(tmp_path):
    from xmodal_lab.models import load_model, save_weights
    from xmodal_lab.embed import embed
    from xmodal_lab.data import shapes
    from xmodal_lab.metrics import retrieval
    model, *_ = load_model()
    e = embed(model, shapes("test", n=20), progress=False, verbose=False)
    assert retrieval(e).protocol["weights"].startswith("xmodal-tiny, shipped weights (weights ")
    with torch.no_grad(): model.visual.proj.add_(0.01)              # as fine-tuning would
    e2 = embed(model, shapes("test", n=20), progress=False, verbose=False)
    assert "changed in memory since loading" in retrieval(e2).protocol["weights"]
    ck = save_weights(model, tmp_path / "ft.safetensors", "xmodal-tiny")
    m2, *_ = load_model("xmodal-tiny", str(ck))
    e3 = embed(m2, shapes("test", n=20), progress=False, verbose=False)   # a cache hit: same weights, same data
    w = retrieval(e3).protocol["weights"]
    assert f"checkpoint {ck}" in w and e3.meta["weights_hash"][:12] in w and e3.meta["weights_hash"] == e2.meta["weights_hash"]

def test_random_weights_must_be_asked_for(capsys):
    assert main(["embed", "--model", "ViT-B-32", "--data", "shapes:test:4", "--out", "/tmp/never.safetensors", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--pretrained random" in err and "laion2b_s34b_b79k" in err

def test_offline_tag_fails_fast(monkeypatch):
    import xmodal_lab.models as M
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(M, "_reachable", lambda *a, **k: False)          # no network, as here: nothing is contacted
    t = time.time()
    with pytest.raises(M.ModelLoadError, match=r"pretrained='/path/to/open_clip_pytorch_model.bin'.*no connection"):
        M.load_model("ViT-B-32", pretrained="openai")
    assert time.time() - t < 10
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(M.ModelLoadError, match="HF_HUB_OFFLINE is set"): M.load_model("ViT-B-32", pretrained="laion2b_s34b_b79k")

def test_bad_arguments_fail_before_heavy_imports(tmp_path):
    code = ("import sys; from xmodal_lab.cli import main\n"
            f"r = main(['embed', '--data', 'csv:{tmp_path}/missing.csv', '--out', '{tmp_path}/x.safetensors'])\n"
            "print('torch' in sys.modules, r)")
    t = time.time()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "2"] and "captions file not found" in r.stderr, r.stdout + r.stderr
    assert time.time() - t < 5

def test_spec_grammar_and_csv_flags(coco_dir, tmp_path, capsys):
    assert main(["demo", "--data", "shapes:val:abc", "--quiet"]) == 2
    assert "the grammar is shapes:SPLIT[:N]" in capsys.readouterr().err
    path = _csv_like(coco_dir, tmp_path, "path", "text")
    assert main(["embed", "--data", f"csv:{path}", "--out", str(tmp_path / "c.safetensors"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "has no column 'filepath'" in err and "--img-key" in err and "--csv-img-key" in err
    assert main(["embed", "--data", f"csv:{path}", "--csv-img-key", "path", "--csv-caption-key", "text", "--out", str(tmp_path / "c.safetensors"), "--quiet"]) == 0
    assert main(["embed", "--data", f"csv:{path}", "--img-key", "path", "--caption-key", "text", "--out", str(tmp_path / "d.safetensors"), "--quiet"]) == 0
    assert Embeddings.load(tmp_path / "d.safetensors").n_images == 12

def test_inversion_study_token_counts(monkeypatch):
    "n_tokens per direction reaches OTI and OVI (the authors use R = 2–4 for OVI on larger backbones) and is recorded."
    from xmodal_lab.models import load_model
    from xmodal_lab.embed import embed
    from xmodal_lab.data import shapes
    import xmodal_lab.inversion as inv
    model, _, tok = load_model()
    emb = embed(model, shapes("test", n=60), progress=False, verbose=False)
    seen = {}
    for name in ("oti", "ovi"):
        orig = getattr(inv, name)
        def spy(*a, _orig=orig, _name=name, **kw): seen[_name] = kw["n_tokens"]; return _orig(*a, **kw)
        monkeypatch.setattr(inv, name, spy)
    st = inv.inversion_study(model, tok, emb, "objects", n_images=60, n_texts=60, oti_steps=2, ovi_steps=2, oti_tokens=2, ovi_tokens=3, progress=False)
    assert seen == {"oti": 2, "ovi": 3}
    assert (st["settings"]["oti_tokens"], st["settings"]["ovi_tokens"]) == (2, 3)
