"""Saved features: every format has one reader, and its two memory models (in memory, memory-mapped) give the same rows,
captions and metadata, so every engine gives the same numbers either way."""
import warnings
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import pytest, torch
from xmodal_lab.core import Embeddings, l2_normalise
from xmodal_lab.io import (load_features, npy_pairs, clip_retrieval, read_shards, read_safetensors, write_index, mind_the_gap,
                           format_of, FORMATS)
from xmodal_lab.metrics import retrieval

REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-features"

def same(a:Embeddings, m:Embeddings):
    "In-memory `a` and memory-mapped `m` hold the same set: rows bit for bit, links, labels, captions and metadata."
    assert torch.equal(m.image.to_tensor(), a.image) and torch.equal(m.text.to_tensor(), a.text)
    assert torch.equal(m.image_of_text, a.image_of_text)
    assert a.labels.keys() == m.labels.keys() and all(torch.equal(a.labels[k], m.labels[k]) for k in a.labels)
    assert (a.captions, a.label_names) == (m.captions, m.label_names)
    assert {k: v for k, v in m.meta.items() if k != "mapped"} == a.meta and "mapped" in m.meta and "mapped" not in a.meta
    ra, rm = retrieval(a, ks=(1, 2)), retrieval(m, ks=(1, 2))
    for d in ("i2t", "t2i"):
        assert ra[d] == rm[d]
        assert torch.equal(ra.per_query[d]["first_rank"], rm.per_query[d]["first_rank"])

def toy(n=60, d=24, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    return Embeddings(torch.randn(n, d, generator=g), torch.randn(2 * n, d, generator=g), image_of_text=torch.arange(2 * n) // 2,
                      labels={"shape": torch.arange(n) % 4}, label_names={"shape": ["circle", "square", "triangle", "cross"]},
                      captions=[f"caption {i}" for i in range(2 * n)], meta={"model": "toy", "dataset": "random"}, **kw)

def test_issue_example_ranks_alike(tmp_path):
    "A unit row off by 5e-7 and a row of norm 3: before, the in-memory reader divided every row and the mapped one did not (R@1 0.333 vs 0.667)."
    p = tmp_path / "pairs.npy"
    np.save(p, np.array([[[.6, .8, 0, 0], [0, 0, 1, 0], [0, 0, 0, 3]], [[1.0000005, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 3]]], np.float32))
    a, m = npy_pairs(p), Embeddings.open(p)
    same(a, m)
    assert retrieval(a, ks=(1,)).per_query["i2t"]["first_rank"].tolist() == [1, 3, 1]
    assert torch.equal(a.text[0], torch.tensor([1.0000005, 0, 0, 0]))          # kept: within the rule's tolerance

@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_safetensors_both_ways(tmp_path, dtype):
    e = toy()
    p = e.save(tmp_path / "e.safetensors", dtype=dtype)
    a = Embeddings.load(p)
    same(a, Embeddings.open(p))
    same(read_safetensors(p), read_safetensors(p, mapped=True))
    if dtype == "float16":     # some float16 rows round to within 1e-6 of unit norm, most do not: one rule for both
        n = e.image.half().float().norm(dim=1)
        assert ((n - 1).abs() > 1e-6).any()
    else: assert torch.equal(a.image, e.image)

def test_shards_both_ways(tmp_path):
    e, ident, out = toy(), {"model": "toy", "key": "k", "dtype": "float16"}, tmp_path / "shards"
    out.mkdir()
    units = [[0, 25], [25, 50], [50, 60]]
    for k, (a, b) in enumerate(units):
        part = e.subset(range(a, b)); part.meta = {"model": "toy", "shard": {**ident, "unit": [a, b], "index": k}}
        part.save(out / f"shard-{k:05d}.safetensors", dtype="float16")
    write_index(out, units, ident, SimpleNamespace(label_names=e.label_names), {"model": "toy"})
    a = load_features(out)
    same(a, load_features(out, mapped=True))
    assert a.captions == e.captions and torch.equal(a.image_of_text, e.image_of_text) and a.meta["shards"] == 3

@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_npy_both_ways(tmp_path, dtype):
    e = toy()
    p = tmp_path / "f.npy"
    np.save(p, np.stack([3 * e.image.numpy(), 0.5 * e.text[::2].numpy()]).astype(dtype))
    same(npy_pairs(p, name="mine"), npy_pairs(p, name="mine", mapped=True))
    same(load_features(p, "mine"), load_features(p, "mine", mapped=True))
    assert load_features(p, "mine").meta["name"] == "mine"

def test_clip_retrieval_both_ways_with_captions(tmp_path):
    pd = pytest.importorskip("pandas"); pytest.importorskip("pyarrow")
    e, cr = toy(), tmp_path / "cr"
    for sub in ("img_emb", "text_emb", "metadata"): (cr / sub).mkdir(parents=True)
    bounds = [(0, 7)] + [(7 + 5 * k, 12 + 5 * k) for k in range(10)] + [(57, 60)]     # 12 shards: _10 and _11 sort after _9
    for k, (a, b) in enumerate(bounds):
        np.save(cr / "img_emb" / f"img_emb_{k}.npy", (2 * e.image[a:b]).half().numpy())
        np.save(cr / "text_emb" / f"text_emb_{k}.npy", e.text[2 * a:2 * b:2].half().numpy())
        pd.DataFrame({"caption": e.captions[2 * a:2 * b:2]}).to_parquet(cr / "metadata" / f"metadata_{k}.parquet")
    a, m = clip_retrieval(cr), load_features(cr, mapped=True)
    same(a, m)
    assert a.captions == e.captions[::2]                  # the mapped read has its captions too (it dropped them before)
    assert torch.equal(a.image, l2_normalise((2 * e.image).half().float()))         # as stored, normalised by the one rule
    pd.DataFrame({"caption": ["surplus"]}).to_parquet(cr / "metadata" / "metadata_12.parquet")
    with pytest.warns(UserWarning, match="has 61 rows but the embeddings have 60"): assert clip_retrieval(cr).captions is None

def test_format_errors(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="unknown features format"): load_features(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="no features at"): load_features(tmp_path / "none.npy")
    with pytest.raises(ValueError, match="folder without"): load_features(tmp_path)
    (tmp_path / "s").mkdir(); toy().save(tmp_path / "s" / "shard-00000.safetensors")
    with pytest.raises(FileNotFoundError, match="not a finished sharded embeddings folder"): load_features(tmp_path / "s")
    assert set(FORMATS) == {"safetensors", "shards", "npy", "clip-retrieval"} and format_of(tmp_path / "s") == "shards"

@pytest.mark.parametrize("name", ["clip", "clip_random", "convirt", "convirt_random"])
def test_mind_the_gap_release_both_ways(name):
    if not REAL.is_dir(): pytest.skip(f"real features not found at {REAL} (they live in ../shared, beside the project)")
    a, m = mind_the_gap(name, path=REAL, download=False), mind_the_gap(name, path=REAL, download=False, mapped=True)
    same(a, m)
    raw = np.load(REAL / f"{name}.npy").astype(np.float64)
    ref = raw[0] / np.linalg.norm(raw[0], axis=1, keepdims=True)                 # float64 truth
    assert np.abs(a.image.double().numpy() - ref).max() < 1e-6

def test_released_file_recognised_and_paper_figures_reported(tmp_path):
    "A Mind-the-Gap file under any name is recognised by its hash; reports set the paper's figures beside the measured ones, with the citation."
    if not REAL.is_dir(): pytest.skip(f"real features not found at {REAL} (they live in ../shared, beside the project)")
    import json, shutil
    from xmodal_lab.compare import compare
    from xmodal_lab.report import report
    shutil.copy(REAL / "clip.npy", tmp_path / "anything.npy")
    e = load_features(tmp_path / "anything.npy", name="my clip")
    assert e.meta["release"].endswith("Figure 1: clip") and e.meta["paper"]["L2M gap ‖Δ‖"] == 0.82 and "Liang et al." in e.meta["paper"]["source"]
    e.save(tmp_path / "c.safetensors")
    assert load_features(tmp_path / "c.safetensors").meta["paper"] == e.meta["paper"]          # kept through a save
    assert "paper" not in load_features(REAL / "clip_random.npy").meta                        # the paper gives no figures for it
    page = report(e, tmp_path / "r.html", json_path=tmp_path / "r.json").read_text()
    assert "the paper reports" in page and "<td>0.820</td>" in page and "5,000 MS-COCO" in page
    assert json.loads((tmp_path / "r.json").read_text())["paper"]["cone: image"] == 0.47
    c = compare({"clip": e, "random": load_features(REAL / "clip_random.npy")}, n_boot=100)
    assert "the paper reports" in c._repr_html_() and set(c.to_dict()["paper"]) == {"clip"}
