"""slerp properties (hypothesis) and the m²-mix loss on degenerate batches."""
import math
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays
from xmodal_lab.mixup import slerp, M2MixLoss

dims = st.integers(2, 12)
def unit_pair(d):
    vec = arrays(np.float64, d, elements=st.floats(-1, 1, allow_nan=False))
    return st.tuples(vec, vec).filter(lambda p: np.linalg.norm(p[0]) > 1e-3 and np.linalg.norm(p[1]) > 1e-3)
pairs = dims.flatmap(unit_pair)
lams = st.floats(0, 1)

def _t(v): return F.normalize(torch.tensor(v), dim=-1)
def _angle(u, v): return math.acos(max(-1.0, min(1.0, (u @ v).item())))

@settings(max_examples=300, deadline=None)
@given(pairs, lams)
def test_on_the_sphere(p, lam):
    out = slerp(_t(p[0]), _t(p[1]), lam)
    assert torch.isfinite(out).all() and abs(out.norm().item() - 1) < 1e-9

@settings(max_examples=300, deadline=None)
@given(pairs)
def test_endpoints(p):
    a, b = _t(p[0]), _t(p[1])
    torch.testing.assert_close(slerp(a, b, 0.0), a, atol=1e-9, rtol=0)
    torch.testing.assert_close(slerp(a, b, 1.0), b, atol=1e-9, rtol=0)

@settings(max_examples=300, deadline=None)
@given(pairs, lams)
def test_geodesic_angle_splits(p, lam):
    "angle(a, m) = λθ and angle(m, b) = (1-λ)θ, away from the antipodal case where the great circle is not unique."
    a, b = _t(p[0]), _t(p[1])
    theta = _angle(a, b)
    if theta > math.pi - 1e-3: return
    m = slerp(a, b, lam)
    assert abs(_angle(a, m) - lam * theta) < 2e-6 and abs(_angle(m, b) - (1 - lam) * theta) < 2e-6

@settings(max_examples=200, deadline=None)
@given(pairs, lams)
def test_textbook_formula(p, lam):
    "Equal to [sin((1-λ)θ) a + sin(λθ) b] / sin θ wherever that is well conditioned."
    a, b = _t(p[0]), _t(p[1])
    theta = _angle(a, b)
    if not 1e-2 < theta < math.pi - 1e-2: return
    ref = (math.sin((1 - lam) * theta) * a + math.sin(lam * theta) * b) / math.sin(theta)
    torch.testing.assert_close(slerp(a, b, lam), ref, atol=1e-9, rtol=0)

@settings(max_examples=200, deadline=None)
@given(dims.flatmap(lambda d: arrays(np.float64, d, elements=st.floats(-1, 1)).filter(lambda v: np.linalg.norm(v) > 1e-3)), lams)
def test_identical_and_antipodal_never_nan(v, lam):
    a = _t(v)
    same, opposite = slerp(a, a, lam), slerp(a, -a, lam)
    torch.testing.assert_close(same, a, atol=1e-9, rtol=0)
    assert torch.isfinite(opposite).all() and abs(opposite.norm().item() - 1) < 1e-9
    assert abs((opposite @ a).item() - math.cos(lam * math.pi)) < 1e-6      # halfway round the fixed great circle

def test_batched_and_per_row_lambda():
    g = torch.Generator().manual_seed(0)
    a, b = F.normalize(torch.randn(6, 5, generator=g), dim=-1), F.normalize(torch.randn(6, 5, generator=g), dim=-1)
    lam = torch.linspace(0, 1, 6)
    rows = torch.stack([slerp(a[i], b[i], lam[i].item()) for i in range(6)])
    torch.testing.assert_close(slerp(a, b, lam), rows)

def test_gradients_finite_on_degenerate_batches():
    "Identical image and text features (θ = 0 everywhere) and antipodal ones still give finite gradients."
    g = torch.Generator().manual_seed(1)
    x = F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    for y in (x.clone(), -x.clone()):
        xx, yy = x.clone().requires_grad_(True), y.requires_grad_(True)
        loss = M2MixLoss(m2=1, vmix=1, lmix=1, vlmix=1)(xx, yy, 100.0, output_dict=False)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(xx.grad).all() and torch.isfinite(yy.grad).all()

def test_schedule_and_weights():
    g = torch.Generator().manual_seed(2)
    x, y = F.normalize(torch.randn(8, 16, generator=g), dim=-1), F.normalize(torch.randn(8, 16, generator=g), dim=-1)
    a, b = M2MixLoss(m2=0.5, schedule=True, seed=4), M2MixLoss(m2=0.5, schedule=True, seed=4)
    b.epoch = 3
    assert torch.isclose(a(x, y, 50.0)["m2_loss"] / 4, b(x, y, 50.0)["m2_loss"])
    with pytest.raises(ValueError, match="weights must be"): M2MixLoss(vmix=-1)
    with pytest.raises(ValueError, match="tau_m"): M2MixLoss(tau_m=0)

def test_endpoints_near_antipodal():
    "b = -a + a tiny perturbation: the great circle is still defined, and λ = 1 must land on b (hypothesis found this once)."
    g = torch.Generator().manual_seed(3)
    for scale in (1e-12, 1e-9, 1e-7, 1e-5):
        a = F.normalize(torch.randn(64, 8, generator=g, dtype=torch.float64), dim=-1)
        b = F.normalize(-a + scale * torch.randn(64, 8, generator=g, dtype=torch.float64), dim=-1)
        torch.testing.assert_close(slerp(a, b, 1.0), b, atol=1e-12, rtol=0)
        torch.testing.assert_close(slerp(a, b, 0.0), a, atol=1e-12, rtol=0)
