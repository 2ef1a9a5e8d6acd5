"The explorer without a browser: the gap plane, item checks, neighbours against brute force, escaping, sampling."
import html
import pytest, torch
from xmodal_lab.core import Embeddings, check_sets
from xmodal_lab.data import shapes
from xmodal_lab.gap import gap_plane, gap_vector, projection_figure
from xmodal_lab.explore import Explorer, sample_items

def toy(n=200, d=16, seed=0, caps=None, **kw):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + 1.5 * torch.eye(d)[0]
    y = x + 0.7 * torch.randn(n, d, generator=g) - 1.5 * torch.eye(d)[0]
    return Embeddings(x, y, labels={"c": torch.arange(n) % 4}, label_names={"c": ["red", "green", "blue", "yellow"]}, captions=caps, **kw)

def test_gap_plane_shows_the_gap_exactly():
    e = toy()
    V, mu = gap_plane(e)
    assert torch.allclose(V.T @ V, torch.eye(2, dtype=V.dtype), atol=1e-12)
    c = torch.stack([e.image.double().mean(0), e.text.double().mean(0)])
    p = (c - mu) @ V
    gap = gap_vector(e).double().norm()
    assert torch.allclose(p[:, 0], torch.stack([gap / 2, -gap / 2]), atol=1e-6) and p[:, 1].abs().max() < 1e-6
    # y: the top principal direction of what is left, against numpy's SVD on the residual
    z = torch.cat([e.image, e.text]).double() - mu
    u = V[:, 0]; r = z - (z @ u)[:, None] * u
    top = torch.linalg.svd(r, full_matrices=False).Vh[0]
    assert abs(abs(float(top @ V[:, 1])) - 1) < 1e-8

def test_projection_defaults_to_the_gap_plane():
    fig = projection_figure(toy())
    assert fig.layout.title.text.startswith("Gap projection") and "along the gap" in fig.layout.xaxis.title.text
    cx = fig.data[-1].x                                          # the centroids trace
    assert abs((cx[0] - cx[1]) - gap_vector(toy()).norm().item()) < 1e-3

def test_mismatched_sets_are_named():
    a = toy()
    with pytest.raises(ValueError, match="set 'b' has dimension 8 but 'a' has 16"): check_sets({"a": a, "b": toy(d=8)})
    with pytest.raises(ValueError, match="'a' and 'b' do not describe the same items .*fingerprints"):
        check_sets({"a": toy(meta={"fingerprint": "x1"}), "b": toy(meta={"fingerprint": "x2"})})
    with pytest.raises(ValueError, match="caption 3 reads"):
        caps = [f"c{i}" for i in range(200)]; other = list(caps); other[3] = "changed"
        check_sets({"a": toy(caps=caps), "b": toy(caps=other)})
    with pytest.raises(TypeError, match="not an Embeddings"): check_sets({"a": a, "b": a.image})

def test_dataset_must_match():
    ds = shapes("test", n=200)
    e = toy(meta={"fingerprint": "not-this-one"})
    with pytest.raises(ValueError, match="fingerprint .* is not the one the embeddings were computed from"): Explorer(e, ds)
    with pytest.raises(ValueError, match="has 200 images but the embeddings have 150"): Explorer(toy(n=150), ds)

def test_neighbours_and_ranks_against_brute_force():
    e = toy()
    ex = Explorer(e, k=5)
    for kind, i in (("image", 3), ("caption", 17)):
        nb = ex.neighbours(kind, i)
        q = (e.image if kind == "image" else e.text)[i].double()
        si, st = e.image.double() @ q, e.text.double() @ q
        if kind == "image": si[i] = -9
        else: st[i] = -9
        assert [j for j, _ in nb["images"]] == si.topk(5).indices.tolist()
        assert [j for j, _ in nb["captions"]] == st.topk(5).indices.tolist()
        own = nb["own"][0]
        s_other = (e.text if kind == "image" else e.image).double() @ q      # the other modality, nothing removed
        assert own[2] == int((s_other >= s_other[own[0]]).sum())         # pessimistic: ties count against
    with pytest.raises(ValueError, match="there is no image 500"): ex.neighbours("image", 500)

@pytest.mark.parametrize("lam", [0.6, 1.0, -0.5])
def test_neighbours_under_a_shift_against_the_shifted_set(lam):
    "With λ ≠ 0 the panel's cosines come from the lift (float32 products, bounds, float64 rescoring): they must equal a float64 shifted copy's."
    from xmodal_lab.explore import shift_fraction
    e = toy(n=300)
    ex = Explorer(e, k=6)
    ex.set_state(lam=lam)
    x, y = shift_fraction(e, lam, ex._closing(ex.name), double=True)        # the whole set shifted, float64: the truth
    for kind, i in (("image", 5), ("caption", 40)):
        nb = ex.neighbours(kind, i)
        q = (x if kind == "image" else y)[i]
        si, st = x @ q, y @ q
        (si if kind == "image" else st)[i] = -9
        for side, s in (("images", si), ("captions", st)):
            assert [j for j, _ in nb[side]] == s.topk(6).indices.tolist()
            assert max(abs(c - float(s[j])) for j, c in nb[side]) < 1e-12
        j, c, r = nb["own"][0]
        other = y if kind == "image" else x
        s_other = other @ q
        assert abs(c - float(s_other[j])) < 1e-12 and r == int((s_other >= s_other[j] - 1e-12).sum())

def test_ties_under_a_shift_stay_ties():
    "Identical captions stay identical after the shift: the float32 screen must not split them (each own caption ranks 4th)."
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 8, generator=g) + 2 * torch.eye(8)[0]
    y = torch.cat([torch.stack([x[0] - 2 * torch.eye(8)[0]] * 4), torch.randn(5, 8, generator=g) - 2 * torch.eye(8)[0]])
    ex = Explorer(Embeddings(x, y, image_of_text=torch.tensor([0, 0, 1, 2, 1, 3, 4, 5, 5])))
    ex.set_state(lam=0.7)
    own = ex.neighbours("image", 0)["own"]
    assert [r for _, _, r in own] == [4, 4]

def test_identical_captions_tie_pessimistically():
    x = torch.eye(4); y = torch.stack([torch.eye(4)[0]] * 4)      # four identical captions
    ex = Explorer(Embeddings(x, y, image_of_text=torch.tensor([0, 0, 1, 2])))
    own = ex.neighbours("image", 0)["own"]
    assert [r for _, _, r in own] == [4, 4]                      # all four score the same: each own caption ranks 4th

def test_captions_and_names_are_escaped():
    caps = [f"<script>alert({i})</script>\"><img src=x onerror=alert({i})>" for i in range(200)]
    ex = Explorer({"<b>model</b>": toy(caps=caps)})
    ex.select("image", 0)
    page = ex._static_html() + ex.details_html() + ex._hover_html("caption", 0)
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>model</b>" not in page
    assert html.escape("<script>alert(0)</script>") in page

def test_large_sets_are_sampled_by_whole_items():
    n = 200_000
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n // 2, 8, generator=g) + 1
    e = Embeddings(x, torch.cat([x, x]) - 2 + 0.1 * torch.randn(n, 8, generator=g), image_of_text=torch.arange(n) % (n // 2))
    keep = sample_items(e, 50_000)
    assert 3 * len(keep) <= 50_000 and 3 * len(keep) > 49_990    # two captions per image: whole items, as many as fit
    ex = Explorer(e)
    assert len(ex.captions) == 2 * len(ex.images)
    assert "of 300,000 points" in ex.figure().layout.title.text
    ex.set_state(lam=0.5)
    m = ex.metrics()
    assert m["images"] == 5_000 and m["captions"] == 10_000

def test_colour_options_and_bad_names():
    ex = Explorer(toy())
    assert ex.options == ["modality", "c", "own-pair rank", "k-occurrence"]
    for c in ex.options:
        ex.set_state(color_by=c); ex.figure()
    with pytest.raises(ValueError, match="no colour 'shape'"): ex.set_state(color_by="shape")
    with pytest.raises(ValueError, match="method must be one of"): ex.set_state(method="tsne")
    with pytest.raises(TypeError, match="unknown setting"): ex.set_state(zoom=2)
