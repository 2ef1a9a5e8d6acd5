import json, os, sys
from pathlib import Path
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))   # tools/browser.py: the one Chromium of the project

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-features"

@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, tmp_path_factory, monkeypatch):
    "Every test gets its own embeddings cache and temp dir for its subprocesses, and nothing reaches for the Hugging Face hub."
    monkeypatch.setenv("XMODAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TMPDIR", str(tmp_path_factory.mktemp("subprocess-tmp")))   # what subprocesses leave in their temp dir (torchrun's logs) stays with pytest's folders

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

HF_WORDS = ("a an the this is there are shapes shape photo of on at in and with * : , . red green blue yellow purple orange circle square "
            "triangle cross small medium large left right top bottom centre middle above below next to two three").split()

@pytest.fixture(scope="session")
def hf_tokenizer_dir(tmp_path_factory):
    """A Hugging Face tokenizer folder made here (a WordLevel vocabulary of the shapes world): what `huggingface-cli download REPO
    --local-dir DIR` leaves for SigLIP, in miniature, so that models with hub tokenizers run offline through load_model(tokenizer=DIR)."""
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    folder = tmp_path_factory.mktemp("hf-tokenizer")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(dict.fromkeys(HF_WORDS))}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>").save_pretrained(str(folder))
    return folder
