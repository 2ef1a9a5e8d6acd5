"compare and report: the bootstrap against known truth, cross-space geometry against direct formulas, the report in a browser offline."
import json, math, os, shutil
from pathlib import Path
import numpy as np
import pytest, torch
from browser import launch as launch_chromium, require as require_chromium   # tools/browser.py (conftest puts tools/ on the path)
from xmodal_lab.core import Embeddings
from xmodal_lab.compare import (compare, paired_bootstrap, percentile_interval, linear_cka, spatial_disorder, affinity_kl,
                                fit_linear_map, backward_compatibility, reorder, check_comparable)
from xmodal_lab.io import npy_pairs, clip_retrieval, load_features, mind_the_gap
from xmodal_lab.report import report

def pairs(n=300, d=32, noise=0.8, seed=0, **kw):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return Embeddings(x + 2 * torch.eye(d)[0], x + noise * torch.randn(n, d, generator=g) - 2 * torch.eye(d)[0], **kw)

def test_bootstrap_covers_a_known_difference():
    "Two Bernoulli metrics with a known difference of 0.1: the 95% interval covers it in about 95% of repetitions."
    hits, reps, n = 0, 200, 400
    for r in range(reps):
        g = torch.Generator().manual_seed(r)
        u = torch.rand(n, generator=g)
        a = (u < 0.5).double(); b = (u < 0.6).double()          # paired: b is a plus a 10% slice of the items
        one = torch.ones(n, dtype=torch.float64)
        boot = paired_bootstrap({"a": {"m": (a, one)}, "b": {"m": (b, one)}}, n, n_boot=400, seed=r)
        lo, hi = percentile_interval(boot["b"]["m"] - boot["a"]["m"])
        # the truth for these items' population: 0.1; the sample difference itself scatters around it
        hits += lo <= 0.1 <= hi
    se = math.sqrt(0.95 * 0.05 / reps)
    assert abs(hits / reps - 0.95) < 4 * se + 0.02, hits / reps

def test_bootstrap_matches_the_closed_form_for_a_proportion():
    n = 2000; p = 0.3
    v = (torch.rand(n, generator=torch.Generator().manual_seed(0)) < p).double()
    boot = paired_bootstrap({"s": {"m": (v, torch.ones(n, dtype=torch.float64))}}, n, n_boot=4000, seed=1)
    lo, hi = percentile_interval(boot["s"]["m"])
    ph = float(v.mean()); w = 1.96 * math.sqrt(ph * (1 - ph) / n)
    assert abs(lo - (ph - w)) < 0.004 and abs(hi - (ph + w)) < 0.004

def test_cka_invariances():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 16, generator=g, dtype=torch.float64); y = x @ torch.randn(16, 16, generator=g, dtype=torch.float64) + 0.5 * torch.randn(500, 16, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    assert abs(linear_cka(x, x) - 1) < 1e-12
    assert abs(linear_cka(x, y) - linear_cka(x @ q, 3.0 * y)) < 1e-10            # orthogonal transform and isotropic scaling
    xc, yc = (x - x.mean(0)).double(), (y - y.mean(0)).double()                     # the direct formula, with N×N Gram matrices
    K, L = xc @ xc.T, yc @ yc.T
    direct = float((K * L).sum() / (K.norm() * L.norm()))
    assert abs(linear_cka(x, y, block=77) - direct) < 1e-10

def test_disorder_and_affinity():
    a = pairs(); b = pairs(seed=1)
    d0 = spatial_disorder(a, a)
    assert all(abs(v) < 1e-5 for v in d0.values()), d0
    k0 = affinity_kl(a, a)
    assert all(abs(v) < 1e-9 for v in k0.values())
    k1 = affinity_kl(a, b)
    assert all(v > 0 for v in k1.values())
    # against a direct computation of one row
    p = torch.softmax(a.image[0].double() @ a.text.double().T / 0.01, 0); q = torch.softmax(b.image[0].double() @ b.text.double().T / 0.01, 0)
    rows = torch.stack([torch.softmax(a.image[i].double() @ a.text.double().T / 0.01, 0) for i in range(a.n_images)])
    rowsb = torch.stack([torch.softmax(b.image[i].double() @ b.text.double().T / 0.01, 0) for i in range(b.n_images)])
    direct = float((rows * (rows.log() - rowsb.log())).sum(1).mean())
    assert abs(k1["affinity KL i2t"] - direct) < 1e-4 * max(1, direct)      # float32 products, float64 softmax
    sd = spatial_disorder(a, b)
    S_a, S_b = a.image.double() @ a.image.double().T, b.image.double() @ b.image.double().T
    assert abs(sd["image similarity change (relative)"] - float((S_a - S_b).norm() / S_a.norm())) < 1e-8

def test_linear_map_recovers_an_orthogonal_map():
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(24, 24, generator=g))
    a = pairs(n=400, d=24)
    b = Embeddings(a.image @ q.T, a.text @ q.T)                 # B = A rotated: B·q = A
    W = fit_linear_map(b.text, a.text, ridge=0)
    assert torch.allclose(W, q, atol=1e-4)
    bc = backward_compatibility(a, b)
    assert bc["rows"]["B→A text map"]["i2t"] == pytest.approx(bc["rows"]["A→A"]["i2t"], abs=1e-9)
    assert bc["rows"]["B→A raw"]["i2t"] < bc["rows"]["A→A"]["i2t"]

def test_compare_refuses_what_it_cannot_compare():
    a = pairs()
    with pytest.raises(ValueError, match="at least two sets, got 1"): compare({"a": a})
    with pytest.raises(ValueError, match="at least two sets, got 0"): compare({})
    with pytest.raises(ValueError, match="do not describe the same items"): compare({"a": a, "b": pairs(n=200)})
    with pytest.raises(ValueError, match="fingerprints"): compare({"a": pairs(meta={"fingerprint": "x"}), "b": pairs(meta={"fingerprint": "y"})})
    bad = pairs(); bad.text[3, 0] = float("nan")
    with pytest.raises(ValueError, match="set 'b' has NaN/Inf in its text"): compare({"a": a, "b": bad})
    with pytest.raises(TypeError, match="dict"): compare([a, a])
    with pytest.raises(ValueError, match="baseline 'c'"): compare({"a": a, "b": a}, baseline="c")

def test_align_by_matches_items_by_id():
    a = pairs(n=50, labels={"id": torch.arange(50) * 7}, captions=[f"item {i}" for i in range(50)])
    b = reorder(a, torch.randperm(50, generator=torch.Generator().manual_seed(3)))
    with pytest.raises(ValueError, match="caption 0 reads"): check_comparable({"a": a, "b": b})       # by position: refused
    c = compare({"a": a, "b": b}, align_by="id", n_boot=200, geometry=False)
    for m in c.metrics: assert c.table["a"][m] == pytest.approx(c.table["b"][m], abs=1e-9, nan_ok=True), m
    with pytest.raises(ValueError, match="no label 'key'"): compare({"a": a, "b": b}, align_by="key")

def test_identical_sets_differ_by_zero():
    a = pairs()
    c = compare({"a": a, "a again": a}, n_boot=200)
    for m, (d, lo, hi) in c.diffs["a again"].items(): assert d == lo == hi == 0, m
    assert c.geometry["a again"]["CKA image"] == pytest.approx(1.0)
    s = json.loads(c.to_json()); assert s["protocol"]["baseline"] == "a"

def test_report_offline_escaped_and_small(tmp_path):
    require_chromium("open the report in a browser")
    from playwright.sync_api import sync_playwright
    evil = "<script>window.__xss=1</script>\"><img src=x onerror=\"window.__xss=2\">"
    n = 5000
    caps = [f"{evil} caption {i}" for i in range(n)]
    a = pairs(n=n, d=64, captions=caps, meta={"model": evil})
    b = pairs(n=n, d=64, seed=5, captions=caps, meta={"model": "other"})
    one = report(a, tmp_path / "one.html", json_path=tmp_path / "one.json", csv_path=tmp_path / "one.csv")
    two = report({evil: a, "b": b}, tmp_path / "two.html", n_boot=200, json_path=tmp_path / "two.json")
    for f in (one, two): assert f.stat().st_size < 5 * 2**20, f.stat().st_size
    json.loads((tmp_path / "one.json").read_text()); json.loads((tmp_path / "two.json").read_text())
    with sync_playwright() as p:
        br = launch_chromium(p)
        for f in (one, two):
            page = br.new_page()
            left = []
            def route(r):
                if r.request.url.startswith(("file:", "data:", "blob:")): r.continue_()
                else: left.append(r.request.url); r.abort()
            page.route("**/*", route)
            errors = []; page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f.as_uri())
            page.wait_for_function("document.body.dataset.figures", timeout=60_000)
            assert page.evaluate("document.body.dataset.figures") == "drawn" and not errors, errors
            n_figs = page.locator(".xmodal-fig").count()
            assert n_figs >= 3 and page.locator(".xmodal-fig .main-svg").count() >= n_figs
            assert page.evaluate("window.__xss") is None                               # nothing injected ran
            assert "<script>window.__xss=1</script>" in page.inner_text("body")         # it shows as text
            assert not left, left
            page.close()
        br.close()

def test_feature_loaders(tmp_path, real_features):
    a = pairs(n=40, d=8)
    np.save(tmp_path / "f.npy", np.stack([a.image.numpy(), a.text.numpy()]))
    e = load_features(tmp_path / "f.npy")
    assert torch.allclose(e.image, a.image) and e.n_texts == 40
    np.save(tmp_path / "bad.npy", a.image.numpy())
    with pytest.raises(ValueError, match=r"expected \(2, N, D\)"): npy_pairs(tmp_path / "bad.npy")
    d = tmp_path / "cr"; (d / "img_emb").mkdir(parents=True); (d / "text_emb").mkdir()
    for k in range(2):
        np.save(d / "img_emb" / f"img_emb_{k}.npy", a.image[20 * k:20 * (k + 1)].numpy()); np.save(d / "text_emb" / f"text_emb_{k}.npy", a.text[20 * k:20 * (k + 1)].numpy())
    e = load_features(d)
    assert torch.allclose(e.image, a.image) and torch.allclose(e.text, a.text) and e.captions is None
    import pandas as pd
    (d / "metadata").mkdir()
    for k in range(2): pd.DataFrame({"caption": [f"caption {i}" for i in range(20 * k, 20 * (k + 1))]}).to_parquet(d / "metadata" / f"metadata_{k}.parquet")
    e = load_features(d, "retrieval")
    assert e.captions[25] == "caption 25" and e.meta["name"] == "retrieval"
    np.save(d / "text_emb" / "text_emb_1.npy", a.text[20:30].numpy())
    with pytest.raises(ValueError, match="40 image rows but 30 text rows"): load_features(d)
    clip = mind_the_gap("clip", path=Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "real-features", download=False)
    assert clip.n_images == 500 and clip.dim == 512
    bad = tmp_path / "clip.npy"; np.save(bad, real_features("clip")[:, :10])
    with pytest.raises(ValueError, match="does not match the released"): mind_the_gap("clip", path=bad, download=False)
    with pytest.raises(FileNotFoundError, match="not cached"): mind_the_gap("convirt", cache_dir=tmp_path / "nothing", download=False)
