"Alignment and uniformity on real CLIP and ConVIRT features, each number against an independent float64 computation."
import math
import numpy as np
import pytest, torch
from xmodal_lab.core import Embeddings
from xmodal_lab.uniformity import align_uniform_report, uniformity, uniformity_sampled, alignment, cross_uniformity

def ref_uniformity(z, t=2.0):
    "Wang & Isola's definition over i < j, numpy float64 (pdist-style)."
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    d2 = np.maximum(2 - 2 * z @ z.T, 0)
    iu = np.triu_indices(len(z), 1)
    return float(np.log(np.mean(np.exp(-t * d2[iu]))))

def ref_cross(x, y, t=2.0):
    x = x / np.linalg.norm(x, axis=1, keepdims=True); y = y / np.linalg.norm(y, axis=1, keepdims=True)
    d2 = np.maximum(2 - 2 * x @ y.T, 0)
    return float(np.log(np.mean(np.exp(-t * d2[~np.eye(len(x), dtype=bool)]))))

@pytest.mark.parametrize("name", ["clip", "clip_random", "convirt", "convirt_random"])
def test_report_against_float64(real_features, name):
    a = real_features(name).astype(np.float64)
    x, y = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in a)
    r = align_uniform_report(Embeddings(torch.from_numpy(a[0]).float(), torch.from_numpy(a[1]).float()), name=name).rows["raw"]
    assert r["alignment"] == pytest.approx(float(np.mean(np.sum((x - y) ** 2, 1))), abs=1e-5)
    assert r["uniformity (image)"] == pytest.approx(ref_uniformity(x), abs=1e-5)
    assert r["uniformity (text)"] == pytest.approx(ref_uniformity(y), abs=1e-5)
    assert r["uniformity (joint)"] == pytest.approx(ref_uniformity(np.concatenate([x, y])), abs=1e-5)
    assert r["uniformity (cross)"] == pytest.approx(ref_cross(x, y), abs=1e-5)

def test_pretrained_vs_random(real_features):
    "Training spreads each modality out (more uniform) and aligns pairs better than random init, for both models."
    rows = {n: align_uniform_report(Embeddings(*(torch.from_numpy(v) for v in real_features(n)))).rows["raw"]
            for n in ("clip", "clip_random", "convirt", "convirt_random")}
    for m in ("clip", "convirt"):
        assert rows[m]["uniformity (image)"] < rows[f"{m}_random"]["uniformity (image)"]
        assert rows[m]["uniformity (text)"] < rows[f"{m}_random"]["uniformity (text)"]

def test_sampled_interval_covers_exact(real_features):
    x = torch.from_numpy(real_features("clip")[0])
    exact, est = uniformity(x), uniformity_sampled(x, n_pairs=300_000, seed=3)
    lo, hi = est.interval(3.0)
    assert lo <= exact <= hi

def test_bad_input():
    with pytest.raises(ValueError, match="at least 2"): uniformity(torch.ones(1, 4))
    with pytest.raises(ValueError, match="positive"): uniformity(torch.randn(5, 4), t=-1)
    with pytest.raises(ValueError, match="NaN"): uniformity(torch.tensor([[1., float("nan")], [0., 1.]]))
    with pytest.raises(ValueError, match="matched pairs"): alignment(torch.randn(4, 3), torch.randn(5, 3))
