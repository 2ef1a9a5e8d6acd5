import json, warnings
import numpy as np
import pytest
from PIL import Image
from xmodal_lab.data import coco_captions, csv_captions, image_folder, shapes, ImageError, from_pairs
from xmodal_lab.embed import embed
from xmodal_lab.models import load_model

@pytest.fixture(scope="module")
def tiny(): return load_model()[0]

def test_coco_errors(coco_dir, tmp_path):
    img, cap, _ = coco_dir
    with pytest.raises(FileNotFoundError, match="captions file not found"): coco_captions(img, tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"): coco_captions(img, tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"foo": 1}))
    with pytest.raises(ValueError, match="COCO captions file"): coco_captions(img, tmp_path / "other.json")
    with pytest.raises(ImageError, match="image file not found"): coco_captions(tmp_path, cap)

def test_coco_groups_captions(coco_dir):
    img, cap, ds = coco_dir
    c = coco_captions(img, cap)
    assert c.n_images == 12 and len(c.captions) == 36
    assert np.bincount(c.image_of_text).tolist() == [3] * 12
    assert coco_captions(img, cap, max_images=5).n_images == 5

def test_csv(tmp_path, coco_dir):
    img, _, ds = coco_dir
    rows = ["filepath\ttitle"] + [f"images/{int(ds.image_of_text[j]):03d}.png\t{c}" for j, c in enumerate(ds.captions)]
    (img.parent / "train.tsv").write_text("\n".join(rows))
    c = csv_captions(img.parent / "train.tsv")
    assert (c.n_images, len(c.captions)) == (12, 36) and c.captions == ds.captions
    (img.parent / "bad.csv").write_text("path,text\nimages/000.png,hi\n")
    with pytest.raises(ValueError, match="no column 'filepath'"): csv_captions(img.parent / "bad.csv")
    c = csv_captions(img.parent / "bad.csv", img_key="path", caption_key="text")
    assert c.captions == ["hi"]
    (img.parent / "missing.csv").write_text("filepath,caption\nimages/zzz.png,hi\nimages/000.png,ho\n")
    with pytest.raises(ImageError, match="zzz.png"): csv_captions(img.parent / "missing.csv")
    with pytest.warns(UserWarning, match="skipped 1 missing"):
        c = csv_captions(img.parent / "missing.csv", on_error="skip")
    assert c.n_images == 1 and c.captions == ["ho"]
    (img.parent / "empty.csv").write_text("filepath,caption\n")
    with pytest.raises(ValueError, match="no image-caption pairs"): csv_captions(img.parent / "empty.csv")

def test_image_folder(tmp_path):
    for cls in ("cat", "dog_house"):
        (tmp_path / cls).mkdir()
        for i in range(2): Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "dog_house" / "notes.txt").write_text("not an image")
    d = image_folder(tmp_path)
    assert d.n_images == 4 and d.label_names["class"] == ["cat", "dog_house"] and d.labels["class"].tolist() == [0, 0, 1, 1]
    assert d.captions[-1] == "a photo of a dog house."
    with pytest.raises(FileNotFoundError): image_folder(tmp_path / "none")
    with pytest.raises(ValueError, match="no class subfolders"): image_folder(tmp_path / "cat")

def test_corrupt_image_raise_or_skip(tmp_path, tiny):
    ds = shapes("test", n=4)
    for i in range(4): ds.image(i).save(tmp_path / f"{i}.png")
    (tmp_path / "2.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    pairs = [(tmp_path / f"{i}.png", f"caption {i}") for i in range(4)]
    with pytest.raises(ImageError, match="2.png"):
        embed(tiny, from_pairs("x", pairs), progress=False, cache=False)
    with pytest.warns(UserWarning, match="skipped 1 missing or unreadable images"):
        e = embed(tiny, from_pairs("x", pairs, on_error="skip"), progress=False, cache=False)
    assert (e.n_images, e.n_texts, e.captions) == (3, 3, ["caption 0", "caption 1", "caption 3"])
    assert e.image_of_text.tolist() == [0, 1, 2] and e.meta["skipped_images"] == 1

def test_shapes_bad_arguments():
    with pytest.raises(ValueError, match="unknown split"): shapes("dev")
    with pytest.raises(ValueError, match="captions_per_image"): shapes(captions_per_image=9)
    with pytest.raises(ValueError, match="unknown background"): shapes(n=2, background="plaid").array(0)
