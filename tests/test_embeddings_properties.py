"Property tests of `Embeddings` validation: valid input is accepted and normalised, each kind of bad input is refused."
import math
import numpy as np
import pytest, torch
from hypothesis import given, settings, strategies as st, HealthCheck
from hypothesis.extra.numpy import arrays
from xmodal_lab.core import Embeddings

finite = st.floats(-1e3, 1e3, allow_nan=False, width=32)
def mats(n, d): return arrays(np.float32, (n, d), elements=finite).filter(lambda a: (np.linalg.norm(a, axis=1) > 1e-3).all())

@st.composite
def valid(draw):
    n_img, d = draw(st.integers(1, 6)), draw(st.integers(1, 5))
    n_txt = draw(st.integers(1, 8))
    links = draw(st.lists(st.integers(0, n_img - 1), min_size=n_txt, max_size=n_txt))
    return draw(mats(n_img, d)), draw(mats(n_txt, d)), links

@given(valid())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_valid_inputs_are_normalised(case):
    x, y, links = case
    e = Embeddings(torch.from_numpy(x), torch.from_numpy(y), image_of_text=links)
    assert torch.allclose(e.image.norm(dim=1), torch.ones(len(x)), atol=1e-5)
    assert torch.allclose(e.text.norm(dim=1), torch.ones(len(y)), atol=1e-5)
    assert e.captions_per_image.sum().item() == len(y)

@given(valid(), st.sampled_from(["nan", "inf", "zero"]), st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_bad_rows_are_refused(case, kind, data):
    x, y, links = case
    side = data.draw(st.sampled_from(["image", "text"]))
    a = (x if side == "image" else y).copy()
    r = data.draw(st.integers(0, len(a) - 1))
    a[r] = 0 if kind == "zero" else a[r]
    if kind != "zero": a[r, data.draw(st.integers(0, a.shape[1] - 1))] = math.nan if kind == "nan" else math.inf
    x2, y2 = (a, y) if side == "image" else (x, a)
    with pytest.raises(ValueError, match=f"{side} embeddings have " + ("NaN/Inf" if kind != "zero" else "1 zero vectors")):
        Embeddings(torch.from_numpy(x2), torch.from_numpy(y2), image_of_text=links)

@given(valid(), st.integers(1, 4))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_dimension_mismatch(case, extra):
    x, y, links = case
    y2 = np.concatenate([y, np.ones((len(y), extra), np.float32)], 1)
    with pytest.raises(ValueError, match=f"text embeddings have dimension {y2.shape[1]} but image embeddings have {x.shape[1]}"):
        Embeddings(torch.from_numpy(x), torch.from_numpy(y2), image_of_text=links)

@given(valid(), st.integers(0, 100))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_links_out_of_range(case, off):
    x, y, links = case
    bad = list(links); bad[0] = len(x) + off
    with pytest.raises(ValueError, match="points outside"):
        Embeddings(torch.from_numpy(x), torch.from_numpy(y), image_of_text=bad)
    bad[0] = -1 - off
    with pytest.raises(ValueError, match="points outside"):
        Embeddings(torch.from_numpy(x), torch.from_numpy(y), image_of_text=bad)

@given(valid())
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
def test_save_load_roundtrip(tmp_path_factory, case):
    x, y, links = case
    e = Embeddings(torch.from_numpy(x), torch.from_numpy(y), image_of_text=links, labels={"c": list(range(len(x)))},
                   captions=[f"c{i}" for i in range(len(y))], meta={"model": "m"})
    p = e.save(tmp_path_factory.mktemp("e") / "e.safetensors")
    e2 = Embeddings.load(p)
    assert torch.equal(e.image, e2.image) and torch.equal(e.text, e2.text) and e2.captions == e.captions
    assert torch.equal(e2.labels["c"], e.labels["c"]) and e2.meta == e.meta

def test_empty_sides():
    with pytest.raises(ValueError, match="image embeddings are empty"): Embeddings(torch.zeros(0, 3), torch.ones(1, 3), image_of_text=[])
    with pytest.raises(ValueError, match="text embeddings are empty"): Embeddings(torch.ones(1, 3), torch.zeros(0, 3), image_of_text=[])
