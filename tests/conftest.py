import json, os
from pathlib import Path
import numpy as np
import pytest

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-features"

@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    "Every test gets its own embeddings cache, and nothing reaches for the Hugging Face hub."
    monkeypatch.setenv("XMODAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

@pytest.fixture
def real_features():
    "Loader for ../shared/data/real-features/<name>.npy; skips when the folder is absent (a user's clone)."
    if not REAL.is_dir(): pytest.skip(f"real features not found at {REAL} (they live in ../shared, beside the project)")
    return lambda name: np.load(REAL / f"{name}.npy")

@pytest.fixture
def coco_dir(tmp_path):
    "A small COCO-captions folder written from shapes images: 12 images, 3 captions each."
    from xmodal_lab.data import shapes
    ds = shapes("val", n=12)
    img = tmp_path / "coco" / "images"; img.mkdir(parents=True)
    for i in range(ds.n_images): ds.image(i).save(img / f"{i:03d}.png")
    ann = {"images": [{"id": i, "file_name": f"{i:03d}.png"} for i in range(ds.n_images)],
           "annotations": [{"id": j, "image_id": int(ds.image_of_text[j]), "caption": c} for j, c in enumerate(ds.captions)]}
    cap = tmp_path / "coco" / "captions_val.json"; cap.write_text(json.dumps(ann))
    return img, cap, ds
