"""Sharded extraction under torchrun (2 CPU processes, gloo), its resume after a killed rank, memory-mapped opening, and the refusals."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
import torch

CLI = str(Path(sys.executable).parent / "xmodal-lab")
DATA = "shapes:test:300"

def _run(args, tmp_path, nproc=None, env=None, ok=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "XMODAL_CACHE": str(tmp_path / "cache"), **(env or {})}
    cmd = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", CLI] if nproc else [CLI]) + args
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    if ok: assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r

@pytest.fixture(scope="module")
def reference():
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    model, _, _ = load_model()
    return embed(model, shapes("test", n=300), cache=False, progress=False, verbose=False)

def _same(e, ref):
    assert torch.allclose(e.image.to_tensor(), ref.image, atol=1e-6) and torch.allclose(e.text.to_tensor(), ref.text, atol=1e-6)
    assert torch.equal(e.image_of_text, ref.image_of_text) and e.captions == ref.captions
    assert all(torch.equal(e.labels[k], ref.labels[k]) for k in ref.labels)

def test_two_processes_equal_one(tmp_path, reference):
    "Two gloo ranks write 5 shards of 64 images (rank 0: shards 0, 2, 4; rank 1: 1, 3); the opened set equals `embed` in one process, in order."
    from xmodal_lab.core import Embeddings
    _run(["embed", "--data", DATA, "--out", "shards", "--shard-size", "64", "--quiet"], tmp_path, nproc=2)
    ix = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert [s["images"] for s in ix["shards"]] == [[0, 64], [64, 128], [128, 192], [192, 256], [256, 300]]
    e = Embeddings.open(tmp_path / "shards")
    _same(e, reference)
    # one process, no torchrun: the same files, byte for byte
    _run(["embed", "--data", DATA, "--out", "one", "--shard-size", "64", "--quiet"], tmp_path)
    for s in ix["shards"]:
        assert (tmp_path / "one" / s["file"]).read_bytes() == (tmp_path / "shards" / s["file"]).read_bytes()

def test_killed_rank_resumes(tmp_path, reference):
    "Rank 1 dies after its first shard; the rerun keeps every finished shard untouched, redoes the rest, and gives the same set."
    from xmodal_lab.core import Embeddings
    r = _run(["embed", "--data", DATA, "--out", "shards", "--shard-size", "64", "--quiet"], tmp_path, nproc=2,
             env={"XMODAL_TEST_EXIT_AFTER": "1:1"}, ok=False)
    assert r.returncode != 0
    out = tmp_path / "shards"
    assert not (out / "index.json").exists()
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.safetensors")}
    assert "shard-00001.safetensors" in done and "shard-00003.safetensors" not in done, sorted(done)
    r = _run(["embed", "--data", DATA, "--out", "shards", "--shard-size", "64"], tmp_path, nproc=2)
    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("shard-*.safetensors")}
    assert {k: after[k] for k in done} == done                  # finished shards: not rewritten
    assert len(after) == 5
    _same(Embeddings.open(out), reference)

def test_refusals(tmp_path):
    "More ranks than shards; a shard of another model in the folder; a missing shard; an index whose shard changed; mixed dimensions."
    from xmodal_lab.core import Embeddings
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.scale import embed_shards
    r = _run(["embed", "--data", "shapes:test:50", "--out", "few", "--shard-size", "64", "--quiet"], tmp_path, nproc=2, ok=False)
    assert r.returncode != 0 and "2 ranks for 1 shard(s)" in r.stdout + r.stderr
    model, _, _ = load_model(); ds = shapes("test", n=40)
    a, b = tmp_path / "a", tmp_path / "b"
    embed_shards(model, ds, a, shard_size=16, progress=False)
    torch.manual_seed(0); other, _, _ = load_model("xmodal-tiny", "random")
    embed_shards(other, ds, b, shard_size=16, progress=False)
    shutil.copy(b / "shard-00001.safetensors", a / "shard-00001.safetensors")
    with pytest.raises(ValueError, match="changed since the index was written"): Embeddings.open(a)
    with pytest.raises(ValueError, match="written by another run"): embed_shards(model, ds, a, shard_size=16, progress=False)
    (a / "shard-00001.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="shard-00001.safetensors named by index.json is missing"): Embeddings.open(a)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="without index.json"): Embeddings.open(tmp_path / "empty")
    # a shard of another dimension, planted with a rewritten index: refused when the shards are joined
    from xmodal_lab.core import Embeddings as E
    c = tmp_path / "c"; embed_shards(model, ds, c, shard_size=16, progress=False)
    small = E(torch.randn(16, 8), torch.randn(48, 8), torch.arange(48) // 3); small.save(c / "shard-00001.safetensors")
    ix = json.loads((c / "index.json").read_text())
    from xmodal_lab.io import read_manifest
    ix["shards"][1].update(content_hash=read_manifest(c / "shard-00001.safetensors")["content_hash"], bytes=(c / "shard-00001.safetensors").stat().st_size)
    (c / "index.json").write_text(json.dumps(ix))
    with pytest.raises(ValueError, match="mix dimensions"): Embeddings.open(c)

def test_mapped_npy_and_clip_retrieval(tmp_path):
    "A (2, N, D) .npy and a clip-retrieval folder open without a copy and agree with the in-memory loaders."
    from xmodal_lab.core import Embeddings, is_mapped
    from xmodal_lab.io import npy_pairs, clip_retrieval
    from xmodal_lab.metrics import retrieval
    g = np.random.default_rng(0)
    a = g.standard_normal((2, 200, 16)).astype(np.float32) * 3
    np.save(tmp_path / "f.npy", a)
    m, r = Embeddings.open(tmp_path / "f.npy"), npy_pairs(tmp_path / "f.npy")
    assert is_mapped(m.image)
    assert torch.allclose(m.image.to_tensor(), r.image, atol=1e-6) and retrieval(m)["i2t"] == retrieval(r)["i2t"]
    f = tmp_path / "cr"; (f / "img_emb").mkdir(parents=True); (f / "text_emb").mkdir()
    for k in range(2):
        np.save(f / "img_emb" / f"img_emb_{k}.npy", a[0, k * 100:(k + 1) * 100].astype(np.float16))
        np.save(f / "text_emb" / f"text_emb_{k}.npy", a[1, k * 100:(k + 1) * 100].astype(np.float16))
    m, r = Embeddings.open(f), clip_retrieval(f)
    assert len(m.image.parts) == 2 and torch.allclose(m.text.to_tensor(), r.text, atol=1e-6)

def _tars(folder, n_tars=4, per=12, broken=()):
    "WebDataset shards of shapes images (PNG) with their first caption; `broken` keys get a bad image, a missing caption or image."
    import io, webdataset as wds
    from xmodal_lab.data import shapes
    folder.mkdir(parents=True, exist_ok=True); src = shapes("test", n=n_tars * per)
    for t in range(n_tars):
        with wds.TarWriter(str(folder / f"{t:05d}.tar")) as w:
            for i in range(t * per, (t + 1) * per):
                png = io.BytesIO(); src.image(i).save(png, format="PNG")
                s = {"__key__": f"{i:06d}", "png": png.getvalue(), "txt": src.captions[3 * i]}
                if i in broken: s = {"__key__": s["__key__"], **broken[i](s)}
                w.write(s)
    return src

def test_webdataset_two_ranks_two_workers(tmp_path):
    "4 tar shards, 2 ranks with 2 DataLoader workers each: one embedding shard per tar, equal to `embed` of the same images in order."
    from xmodal_lab.core import Embeddings
    from xmodal_lab.models import load_model
    from xmodal_lab.embed import embed
    src = _tars(tmp_path / "tars")
    _run(["embed", "--data", "wds:tars/{00000..00003}.tar", "--out", "wds", "--workers", "2", "--quiet"], tmp_path, nproc=2)
    e = Embeddings.open(tmp_path / "wds")
    ix = json.loads((tmp_path / "wds" / "index.json").read_text())
    assert [s["unit"].split("/")[-1] for s in ix["shards"]] == [f"{t:05d}.tar" for t in range(4)]
    model, _, _ = load_model()
    ref = embed(model, src, cache=False, progress=False, verbose=False)
    assert torch.allclose(e.image.to_tensor(), ref.image, atol=1e-5)
    assert e.captions == [src.captions[3 * i] for i in range(48)]

def test_webdataset_bad_samples(tmp_path):
    "A sample without a caption, one without an image, one whose image does not decode: named by shard and key, or skipped and counted."
    from xmodal_lab.core import Embeddings
    from xmodal_lab.models import load_model
    from xmodal_lab.data import webdataset_captions
    from xmodal_lab.scale import embed_shards
    from xmodal_lab.data import ImageError
    bad = {3: lambda s: {"png": s["png"]}, 14: lambda s: {"txt": s["txt"]}, 20: lambda s: {"png": b"\x89PNG broken", "txt": s["txt"]}}
    _tars(tmp_path / "tars", n_tars=2, broken=bad)
    model, _, _ = load_model()
    pat = str(tmp_path / "tars" / "{00000..00001}.tar")
    with pytest.raises(ImageError, match=r"00000.tar: sample 000003 has no caption 'txt'"): embed_shards(model, webdataset_captions(pat), tmp_path / "a", progress=False)
    with pytest.raises(ImageError, match=r"00001.tar: sample 000014 has no image"): list(webdataset_captions(str(tmp_path / "tars" / "00001.tar")).samples(split=False))
    with pytest.warns(UserWarning, match="skipped 3 samples"):
        embed_shards(model, webdataset_captions(pat, on_error="skip"), tmp_path / "c", progress=False)
    e = Embeddings.open(tmp_path / "c")
    assert e.n_images == 21
    skipped = json.loads((tmp_path / "c" / "index.json").read_text())["meta"]["skipped"]
    assert [s.split(": ")[1].split()[1] for s in skipped] == ["000003", "000014", "000020"]
    r = _run(["embed", "--data", pat, "--out", "x.safetensors"], tmp_path, ok=False)
    assert r.returncode == 2 and "unknown dataset spec" in r.stderr
    r = _run(["embed", "--data", "wds:" + pat, "--out", "x.safetensors"], tmp_path, ok=False)
    assert r.returncode == 2 and "give --out a folder" in r.stderr

def test_engines_on_mapped_equal_in_memory(tmp_path):
    "Retrieval (both directions, by label too), hubness, exact and sampled uniformity and the gap report give the in-memory numbers on a mapped set."
    from xmodal_lab.core import Embeddings
    from xmodal_lab.metrics import retrieval
    from xmodal_lab.hubness import hubness
    from xmodal_lab.uniformity import uniformity, uniformity_sampled
    from xmodal_lab.gap import gap_report
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1500, 32, generator=g) + 0.5; y = x.repeat_interleave(2, 0) + torch.randn(3000, 32, generator=g)
    e = Embeddings(x, y, torch.arange(3000) // 2, labels={"c": torch.arange(1500) % 7})
    e.save(tmp_path / "e.safetensors")
    m = Embeddings.open(tmp_path / "e.safetensors")
    for by in (None, "c"):
        a, b = retrieval(e, by=by), retrieval(m, by=by)
        assert a.metrics == b.metrics
    for d in ("i2t", "t2i"): assert torch.equal(hubness(e, direction=d).n_k, hubness(m, direction=d).n_k)
    assert abs(uniformity(e.image) - uniformity(m.image)) < 1e-9
    assert uniformity_sampled(e.text).value == uniformity_sampled(m.text).value
    ga, gb = gap_report(e).stats, gap_report(m).stats
    assert all(abs(ga[k] - gb[k]) < 1e-9 for k in ga), {k: (ga[k], gb[k]) for k in ga}
