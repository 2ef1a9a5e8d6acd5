"Gap statistics on the real features of Liang et al. (CLIP and ConVIRT, pre-trained and random-init), against float64."
import numpy as np
import pytest, torch
from xmodal_lab.core import Embeddings
from xmodal_lab.gap import gap_report, l2m_gap, cone_similarity, rmg, shift_sweep, shift, frechet_distance, l2i_gap, centroid_cosine

NAMES = ["clip", "clip_random", "convirt", "convirt_random"]

def unit(v): return v / np.linalg.norm(v, axis=1, keepdims=True)

def emb(a): return Embeddings(torch.from_numpy(a[0]), torch.from_numpy(a[1]))

def ref_stats(a):
    x, y = unit(a[0].astype(np.float64)), unit(a[1].astype(np.float64))
    n = len(x)
    gram = lambda z: z @ z.T
    cone = lambda z: (gram(z).sum() - np.trace(gram(z))) / (n * (n - 1))       # mean over i != j, by brute force
    d = lambda a_, b_: (1 - a_ @ b_.T) / 2
    m = max(np.mean((1 - np.sum(x * y, 1)) / 2), 1e-3)
    off = ~np.eye(n, dtype=bool)
    rmg_ = m / (m + 0.5 * (d(x, x)[off].mean() + d(y, y)[off].mean()))
    cx, cy = x.mean(0), y.mean(0)
    return {"gap": np.linalg.norm(cx - cy), "cone_x": cone(x), "cone_y": cone(y), "rmg": rmg_,
            "l2i": np.linalg.norm(x - y, axis=1).mean(), "ccos": cx @ cy / np.linalg.norm(cx) / np.linalg.norm(cy)}

@pytest.mark.parametrize("name", NAMES)
def test_statistics_against_float64(real_features, name):
    a = real_features(name); e = emb(a); r = ref_stats(a)
    assert l2m_gap(e) == pytest.approx(r["gap"], abs=1e-6)
    assert cone_similarity(e.image) == pytest.approx(r["cone_x"], abs=1e-6)
    assert cone_similarity(e.text) == pytest.approx(r["cone_y"], abs=1e-6)
    assert rmg(e) == pytest.approx(r["rmg"], abs=1e-6)
    assert l2i_gap(e) == pytest.approx(r["l2i"], abs=1e-6)
    assert centroid_cosine(e) == pytest.approx(r["ccos"], abs=1e-6)

@pytest.mark.parametrize("name", ["clip", "convirt"])
def test_shift_sweep_against_float64(real_features, name):
    a = real_features(name)
    x, y = unit(a[0].astype(np.float64)), unit(a[1].astype(np.float64))
    d = x.mean(0) - y.mean(0); d /= np.linalg.norm(d)
    sw = shift_sweep(emb(a), lams=(-1.0, -0.5, 0.0, 0.25, 0.5, 0.75), scales=(100.0,))
    for row in sw.rows:
        lam = row["lambda"]
        xs, ys = unit(x - lam / 2 * d), unit(y + lam / 2 * d)
        assert row["gap"] == pytest.approx(np.linalg.norm(xs.mean(0) - ys.mean(0)), abs=1e-5)
        s = xs @ ys.T
        assert row["i2t R@1"] == pytest.approx(np.mean(s.argmax(1) == np.arange(len(s))), abs=1 / len(s))
        logits = 100 * s
        ce = lambda L: np.mean(np.log(np.exp(L - L.max(1, keepdims=True)).sum(1)) + L.max(1) - np.diag(L))
        assert row["loss @ scale 100"] == pytest.approx((ce(logits) + ce(logits.T)) / 2, abs=1e-4)

def test_qualitative_claims(real_features):
    "Pre-trained CLIP's gap lies near the paper's 0.82; random init gives narrower cones than pre-training (CLIP)."
    st = {n: ref_stats(real_features(n)) for n in NAMES}
    assert 0.7 < st["clip"]["gap"] < 0.95
    assert st["clip_random"]["cone_x"] > st["clip"]["cone_x"] and st["clip_random"]["cone_y"] > st["clip"]["cone_y"]
    # ConVIRT is reported as measured, not asserted in either direction: see the printed table (pytest -s)
    for n in NAMES: print(n, {k: round(float(v), 4) for k, v in st[n].items()})

def test_report_runs_and_frechet(real_features):
    e = emb(real_features("clip"))
    r = gap_report(e)
    assert r.stats["linear separability"] > 0.95       # CLIP's modalities are linearly separable
    x, y = e.image.double().numpy(), e.text.double().numpy()
    from scipy.linalg import sqrtm
    sx, sy = np.cov(x.T), np.cov(y.T)
    ref = np.sum((x.mean(0) - y.mean(0)) ** 2) + np.trace(sx + sy - 2 * np.real(sqrtm(sx @ sy)))
    assert r.stats["Fréchet distance"] == pytest.approx(ref, rel=1e-3, abs=1e-4)

def test_bad_input():
    with pytest.raises(ValueError, match="at least 2 images"): gap_report(Embeddings(torch.randn(1, 4), torch.randn(1, 4)))
    with pytest.raises(ValueError, match="gap is zero"): shift(Embeddings(torch.eye(3), torch.eye(3)), 0.5)
    with pytest.raises(ValueError, match="dimension"): Embeddings(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(TypeError, match="Embeddings"): gap_report(torch.randn(4, 4))
