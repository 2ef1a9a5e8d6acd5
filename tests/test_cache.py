import time, warnings
import pytest, torch
from xmodal_lab.data import shapes
from xmodal_lab.core import default_cache_dir
from xmodal_lab.embed import embed
from xmodal_lab.models import load_model

@pytest.fixture(scope="module")
def tiny():
    return load_model()[0]

@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "empty"])
def test_corrupt_cache_is_recomputed(tiny, damage):
    ds = shapes("test", n=40)
    e = embed(tiny, ds, progress=False, verbose=False)
    (f,) = list((default_cache_dir() / "embeddings").glob("*.safetensors"))
    raw = bytearray(f.read_bytes())
    if damage == "truncate": raw = raw[: len(raw) // 2]
    elif damage == "flip": raw[-5] ^= 0x10
    elif damage == "garbage": raw = bytearray(b"\x00" * 64)
    else: raw = bytearray()
    f.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="unusable, recomputing"):
        e2 = embed(tiny, ds, progress=False, verbose=False)
    assert torch.allclose(e.image, e2.image) and torch.allclose(e.text, e2.text)
    e3 = embed(tiny, ds, progress=False, verbose=False)   # the rewritten file is good again
    assert torch.equal(e2.image, e3.image)

def test_key_changes_with_content(tiny, capsys):
    embed(tiny, shapes("test", n=20), progress=False)
    embed(tiny, shapes("test", n=21), progress=False)
    embed(tiny, shapes("test", n=20), progress=False, bf16=True)
    out = capsys.readouterr().out
    assert out.count("computed") == 3 and "cache hit" not in out
    with torch.no_grad(): tiny.visual.proj.add_(0.01)        # new weights → new key
    try:
        embed(tiny, shapes("test", n=20), progress=False)
        assert "computed" in capsys.readouterr().out
    finally:
        with torch.no_grad(): tiny.visual.proj.sub_(0.01)

def test_no_temporary_files_left(tiny):
    embed(tiny, shapes("test", n=10), progress=False, verbose=False)
    assert [p.name for p in (default_cache_dir() / "embeddings").iterdir() if p.name.startswith(".")] == []
