"The explorer's selection, search, filters, metadata, queries and λ in fractions of the gap, against independent computations."
import re
import numpy as np
import pandas as pd
import pytest, torch
from xmodal_lab.core import Embeddings
from xmodal_lab.explore import Explorer, Selection, closing_shift, shift_fraction, own_ranks, k_occurrences, _arrow, MANY
from xmodal_lab.metrics import retrieval

WORDS = ["red", "green", "blue", "yellow"]

def toy(n=120, d=16, seed=0, per=2, gap=1.5):
    "n images, `per` captions each, a gap along the first axis, labels and captions."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + gap * torch.eye(d)[0]
    iot = torch.arange(n).repeat_interleave(per)
    y = x[iot] + 0.7 * torch.randn(n * per, d, generator=g) - gap * torch.eye(d)[0]
    c = torch.arange(n) % 4
    caps = [f"A {WORDS[int(c[i])]} thing, number {i} ({k})" for i in iot.tolist() for k in [0]]
    return Embeddings(x, y, image_of_text=iot, labels={"c": c}, label_names={"c": WORDS}, captions=caps)

def tight_cones(n=300, d=32, seed=1, spread=0.15):
    "Two narrow cones 150° apart: renormalising after a shift is far from linear there."
    g = torch.Generator().manual_seed(seed)
    a, b = torch.zeros(d), torch.zeros(d); a[0] = 1; b[0], b[1] = np.cos(np.radians(150)), np.sin(np.radians(150))
    return Embeddings(a + spread * torch.randn(n, d, generator=g), b + spread * torch.randn(n, d, generator=g))

def numpy_gap_after(e, s, f):
    "The centroid distance after moving images by −f·s/2, texts by +f·s/2 and renormalising, in numpy float64."
    x, y, s = e.image.double().numpy(), e.text.double().numpy(), s.numpy()
    xs, ys = x - f * s / 2, y + f * s / 2
    xs /= np.linalg.norm(xs, axis=1, keepdims=True); ys /= np.linalg.norm(ys, axis=1, keepdims=True)
    return np.linalg.norm(xs.mean(0) - ys.mean(0))

@pytest.mark.parametrize("make", [toy, tight_cones])
def test_lambda_one_closes_the_gap(make):
    e = make()
    s = closing_shift(e)
    assert numpy_gap_after(e, s, 1.0) < 1e-10
    d = (e.image.double().mean(0) - e.text.double().mean(0))
    assert numpy_gap_after(e, d, 1.0) > 1e-3           # the plain Δ does not close it: renormalising leaves a gap
    ex = Explorer(e, metric_images=10_000)
    ex.set_state(lam=1.0)
    pi, pt = ex._positions()
    scale = np.abs(np.concatenate([pi, pt])).max()
    assert np.abs(pi.mean(0) - pt.mean(0)).max() < 1e-6 * scale
    m = ex.metrics()
    assert m["gap ‖Δ‖"] < 1e-6 and abs(m["raw shift"] - s.norm().item()) < 1e-9
    ex.set_state(lam=1.3); assert ex.metrics()["signed gap"] < 0 < ex.set_state(lam=0.5).metrics()["signed gap"]

@pytest.mark.filterwarnings("ignore:.*longer than the text context")
def test_the_plain_fixed_point_fails_where_newton_does_not():
    "Why closing_shift takes Newton steps: s ← s + residual converges on many sets, but not on xmodal-tiny's dark domain (gap 1.15)."
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    e = embed(load_model()[0], shapes("test", n=1000, background="dark"), progress=False, verbose=False)
    x, y = e.image.double(), e.text.double()
    n = lambda z: z / z.norm(dim=1, keepdim=True)
    s = x.mean(0) - y.mean(0)
    for _ in range(100): s = s + (n(x - s / 2).mean(0) - n(y + s / 2).mean(0))
    assert numpy_gap_after(e, s, 1.0) > 0.1 and numpy_gap_after(e, closing_shift(e), 1.0) < 1e-10

def test_selection_from_code_is_data():
    e = toy()
    ex = Explorer(e)
    ex.select(indices={"image": [3, 1, 3], "caption": [10]})
    assert ex.selection.images.tolist() == [1, 3] and ex.selection.captions.tolist() == [10]
    ex.select("caption", 11, add=True)
    assert ex.selection.captions.tolist() == [10, 11] and ex.selected == ("caption", 11)
    df = ex.selection_frame()
    assert df[["modality", "index", "image"]].values.tolist() == [["image", 1, 1], ["image", 3, 3], ["caption", 10, 5], ["caption", 11, 5]]
    assert df.caption.tolist()[2:] == [e.captions[10], e.captions[11]] and df.c.tolist() == ["green", "yellow", "green", "green"]
    ri, rt = own_ranks(e); ni, nt = k_occurrences(e)
    assert df["own-pair rank"].tolist() == [ri[1], ri[3], rt[10], rt[11]]
    assert df["k-occurrence"].tolist() == [ni[1], ni[3], nt[10], nt[11]]
    before = ex.selection
    ex.set_state(method="pca"); assert ex.selection == before           # a change of projection keeps the selection
    with pytest.raises(ValueError, match="no caption 240: this set has 240 captions"): ex.select(indices={"caption": [240]})
    with pytest.raises(ValueError, match="keys 'image' and 'caption'"): ex.select(indices={"images": [1]})
    ex.clear_selection(); assert len(ex.selection) == 0 and ex.selected is None

def test_search_is_case_insensitive_substring_or_regex():
    e = toy()
    ex = Explorer(e)
    hits = ex.search("RED thing")
    assert hits.captions.tolist() == [j for j, c in enumerate(e.captions) if "red thing" in c.lower()]
    assert ex.message.startswith(f"{len(hits.captions)} captions of {len(hits.captions) // 2} images match")
    rx = ex.search(r"number 1\d \(", regex=True)
    assert rx.captions.tolist() == [j for j, c in enumerate(e.captions) if re.search(r"number 1\d \(", c)]
    assert ex.search("no such words", select=False).captions.numel() == 0 and len(ex.selection) == len(rx)
    with pytest.raises(ValueError, match="not a valid regular expression"): ex.search("(", regex=True)
    assert ex.search("(").captions.numel() == len(e.captions)         # as text, "(" is in every caption

def test_filters_keep_exactly_what_passes():
    e = toy()
    ex = Explorer(e)
    ri, rt = own_ranks(e); ni, nt = k_occurrences(e)
    ex.filter(values={"c": ["red", "blue"]}, rank=(1, 5))
    mi, mt = ex._masks()
    c = e.labels["c"].numpy()
    assert (mi == (np.isin(c, [0, 2]) & (ri.numpy() <= 5))).all()
    assert (mt == (np.isin(c[e.image_of_text.numpy()], [0, 2]) & (rt.numpy() <= 5))).all()
    ex.filter(k_occurrence=(3, None))
    assert (ex._masks()[0] == (ni.numpy() >= 3)).all()
    # the filtered metric line: retrieval on the kept images and all their captions, from the engine directly
    kept = ex._masks()[0].copy(); kept[e.image_of_text.numpy()[ex._masks()[1]]] = True
    r = retrieval(e.subset(torch.as_tensor(np.flatnonzero(kept))), ks=(1,))
    f = ex.metrics(filtered=True)
    assert (f["i2t R@1"], f["t2i R@1"], f["images"]) == (r["i2t"]["R@1"], r["t2i"]["R@1"], int(kept.sum()))
    g = ex.figure()
    assert np.isnan(np.asarray(g.data[1].x, float)).sum() == (~ex._masks()[0]).sum() and "filtered" in g.layout.title.text
    before = dict(ex.filters)
    with pytest.raises(ValueError, match="leaves no item"): ex.filter(rank=(10**6, None))
    assert ex.filters == before                                        # a refused filter changes nothing
    with pytest.raises(ValueError, match="'c' has no value purple"): ex.filter(values={"c": ["purple"]})
    with pytest.raises(ValueError, match="no label or metadata column 'size'"): ex.filter(values={"size": ["big"]})
    with pytest.raises(ValueError, match="range .* is empty"): ex.filter(rank=(5, 1))
    ex.filter(); assert ex.filters == {} and ex._masks()[0].all()

def test_metadata_colours_filters_and_shows():
    e = toy(n=40)
    md = pd.DataFrame({"source": ["web", "lab"] * 20, "score": np.linspace(0, 1, 40)})
    ex = Explorer(e, metadata=md, color_by="score")
    ci, ct, mk = ex._colour_values(ex.name)
    assert np.allclose(ci, md.score) and np.allclose(ct, md.score.values[e.image_of_text.numpy()]) and mk["colorscale"] == "Viridis"
    ex.filter(values={"source": ["lab"], "score": (0.5, None)})
    assert (ex._masks()[0] == ((md.source == "lab") & (md.score >= 0.5)).values).all()
    assert "source: web" in ex._hover_texts()[0][0] and "score: 0" in ex._hover_texts()[0][0]
    assert ex.select(indices={"image": [1]}).selection_frame().source.tolist() == ["lab"]
    with pytest.raises(ValueError, match="metadata has 39 rows but the embeddings have 40 images"): Explorer(e, metadata=md.iloc[:39])
    with pytest.raises(ValueError, match="index is not 0..39"): Explorer(e, metadata=md.set_index(md.index + 1))
    with pytest.raises(ValueError, match="has the name of a label"): Explorer(e, metadata={"c": [0] * 40})

def test_many_values_show_the_top_19_and_other():
    g = torch.Generator().manual_seed(0)
    lab = torch.cat([torch.full((50,), 7), torch.arange(600)])              # value 7 is the most frequent
    e = Embeddings(torch.randn(650, 8, generator=g), torch.randn(650, 8, generator=g), labels={"o": lab})
    ex = Explorer(e, color_by="o")
    ci, _, mk = ex._colour_values(ex.name)
    names = mk["colorbar"]["ticktext"]
    assert len(names) == MANY and names[0] == "7" and names[-1] == "other (581 values)"
    assert (ci == 0).sum() == 51 and (ci == MANY - 1).sum() == 650 - 51 - 18
    assert ex._key_html().count("<li>") == 600

def test_arrow_is_clipped_to_the_frame():
    frame = ((0.0, 1.0), (0.0, 1.0))
    inside = _arrow((0.2, 0.5), (0.8, 0.5), frame)
    assert len(inside) == 2 and inside[0]["x0"] == 0.2                 # a line and a head
    out = _arrow((0.5, 0.5), (2.0, 0.5), frame)
    assert len(out) == 1 and out[0]["x1"] == 1.0 and out[0]["y1"] == 0.5   # cut at the frame's edge, no head
    assert _arrow((2.0, 2.0), (3.0, 3.0), frame) == []

def test_placeholders_are_marked_not_quoted_and_captions_attach(tmp_path):
    e = toy(n=10)
    bare = Embeddings(e.image, e.text, image_of_text=e.image_of_text)
    ex = Explorer(bare)
    assert "no text" in ex._caption_html(3) and "“" not in ex._caption_html(3)
    with pytest.raises(ValueError, match="carries no caption text"): ex.search("red")
    pd.DataFrame({"caption": e.captions}).to_parquet(tmp_path / "meta.parquet")
    back = bare.with_captions(tmp_path / "meta.parquet")
    assert back.captions == e.captions and Explorer(back)._caption_html(3) == f"“{e.captions[3]}”"
    with pytest.raises(ValueError, match="no column 'text'"): bare.with_captions(tmp_path / "meta.parquet", column="text")

def test_static_view_is_light_and_keeps_the_selection():
    e = toy(n=1500, per=2)                                              # 4,500 points
    ex = Explorer(e).select(indices={"caption": list(range(0, 3000, 3))})
    f = ex.figure(); html = ex._static_html()
    assert "a seeded 1,333 of its 4,500 points" in html and "rows 1–50 of 1,000" in html   # 333 images (their share of 1,000) and all 1,000 selected captions
    from xmodal_lab.explore import _thin
    n = _thin(f, 1500, 0)
    assert len(f.data[1].x) + len(f.data[2].x) <= 1500 + 1 and len(f.data[2].selectedpoints) == 1000
    assert all(isinstance(v, float) for v in f.data[1].x[:5])

def test_query_needs_a_model_and_matches_brute_force():
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    from xmodal_lab.core import l2_normalise
    model, _, tok = load_model()
    ds = shapes("test", n=60)
    e = embed(model, ds, progress=False, verbose=False, cache=False)
    with pytest.raises(ValueError, match="querying needs the model"): Explorer(e).query(text="a red circle")
    ex = Explorer(e, ds, model=model)
    q = ex.query(text="a red circle", k=4)
    with torch.no_grad(): z = l2_normalise(model.encode_text(tok(["a red circle"])).float())[0]
    assert [j for j, _ in q["captions"]] == (e.text @ z).topk(4).indices.tolist()
    V, mu = ex._projector(ex.name, "gap")
    assert np.allclose(q["xy"], ((z.double() - mu) @ V).numpy(), atol=1e-6)
    qi = ex.query(image=ds.image(5), k=3)
    assert qi["images"][0][0] == 5                                   # an image's nearest image is itself
    with pytest.raises(ValueError, match="cannot read the image"): ex.query(image="/no/such/file.png")
    with pytest.raises(ValueError, match="give one of text= or image="): ex.query()

def test_widget_inputs_show_errors_and_stay_usable():
    ex = Explorer(toy())
    w = ex.widget
    c = ex._controls
    c["regex"].value = True; c["search"].value = "("
    assert "not a valid regular expression" in ex._status.value and len(ex.selection) == 0
    c["regex"].value = False; c["search"].value = "blue"
    assert "match 'blue'" in ex._status.value and len(ex.selection) > 0
    assert "blue" in ex._table.value and "rows 1–50" in ex._table.value
    c["filter_field"].value = "own-pair rank"; c["filter_lo"].value = "100000"
    [b for b in w.children[3].children if getattr(b, "description", "") == "apply"][0].click()
    assert "leaves no item" in ex._status.value and ex.filters == {}
    ex.clear_selection(); assert "none" in ex._sel_info.value
