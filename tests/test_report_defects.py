"""Report and compare defects of issue 25, each reproduced: these tests failed before the fixes."""
import html, re
import pytest, torch
from xmodal_lab.core import Embeddings, fmt
from xmodal_lab.compare import compare
RESOLUTION = 1e-6     # compare.RESOLUTION

def pairs(n=300, d=32, seed=0, noise=2.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    return Embeddings(x, x + noise * torch.randn(n, d, generator=g), meta={"model": f"toy{seed}"})

def test_no_star_on_float_rounding():
    "A rotated and scaled copy is the same space: its differences are float32 rounding (1e-8), never significant, never printed -0.000."
    a = pairs()
    q, _ = torch.linalg.qr(torch.randn(32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64))
    b = Embeddings(3 * (a.image.double() @ q).float(), 3 * (a.text.double() @ q).float(), meta={"model": "rotated"})
    c = compare({"a": a, "rotated": b}, n_boot=200)
    tiny = {m: d for m, d in c.diffs["rotated"].items() if d[0] != 0}
    assert all(abs(d[0]) < RESOLUTION for d in tiny.values()), tiny
    assert not any(c.significant("rotated", m) for m in c.metrics)
    text, page = str(c), c.metrics_html()
    body = text.split("\n", 1)[1]                                    # the first line is the legend, which names the star
    assert "★" not in body and "★" not in page and "-0.000" not in text and "-0.000" not in page
    assert fmt(-5.7e-8) == "0.000"

def test_geometry_rows_of_every_set():
    "Sets of 16, 24 and 16 dimensions: the third set's rotation rows (same dimension as the baseline) reach the HTML, not just the JSON."
    a, b, c3 = pairs(d=16), pairs(d=24, seed=1), pairs(d=16, seed=2)
    c = compare({"a": a, "b": b, "c": c3}, n_boot=100)
    only_c = set(c.geometry["c"]) - set(c.geometry["b"])
    assert only_c, "the 16-D set has rows the 24-D one has not"
    page = c.geometry_html()
    for k in only_c: assert f">{html.escape(k)}" in page, k

def test_outputs_checked_before_the_work_and_written_all_or_none(tmp_path, monkeypatch):
    "A folder given as --json failed after the whole report, with the HTML written and the JSON not."
    import xmodal_lab.report as rp
    e = pairs(n=60)
    monkeypatch.setattr(rp, "_single", lambda *a, **k: (_ for _ in ()).throw(AssertionError("the work started")))
    (tmp_path / "a folder").mkdir()
    with pytest.raises(IsADirectoryError, match="a folder"): rp.report(e, tmp_path / "r.html", json_path=tmp_path / "a folder")
    with pytest.raises(ValueError, match="two outputs name one file"): rp.report(e, tmp_path / "r.html", json_path=tmp_path / "r.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a folder"]
    from xmodal_lab.core import atomic_write_all
    def boom(tmp): raise OSError(28, "No space left on device")
    with pytest.raises(OSError): atomic_write_all([(tmp_path / "one.html", lambda t: open(t, "w").write("x")), (tmp_path / "two.json", boom)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a folder"]          # neither file, and no temporary left

def test_user_strings_shown_literally(tmp_path):
    "A 100 kB caption is cut with the rest a click away; an unclosed U+202E in a name cannot reverse the sentence after it; plotly labels stay text."
    from xmodal_lab.report import report, _caption_html
    from xmodal_lab.core import plotly_text
    long = "word " * 20_000
    cut = _caption_html(long)
    assert cut.startswith("<details><summary>") and "(100,000 characters)" in cut and len(cut) > 100_000
    rlo = "evil\u202e"
    c = compare({"a": pairs(), rlo: pairs(seed=3)}, n_boot=100)
    assert "\u2068evil\u202e\u2069" in c.geometry_html()                 # isolated: U+2069 closes the override
    assert plotly_text("<b>x</b> & <a href='y'>z</a>") == "\u2068&lt;b&gt;x&lt;/b&gt; &amp; &lt;a href='y'&gt;z&lt;/a&gt;\u2069"
    fig = c.plot()
    assert "&quot;" not in fig.layout.title.text and "\u2068" in fig.data[0].name

def test_report_lists_the_packages_warnings(tmp_path):
    "The small-gallery hubness warning went to stderr only; the page now says it too."
    from xmodal_lab.report import report
    with pytest.warns(UserWarning, match="says little"):
        p = report(pairs(n=40), tmp_path / "r.html")
    page = p.read_text()
    assert "<h2>Warnings</h2>" in page and "says little" in page

def test_cli_names_with_equals_and_slash(tmp_path):
    "NAME=PATH cannot name a set 'lr=1e-4' or 'runs/a': --name NAME PATH can."
    from xmodal_lab.cli import main
    a, b = pairs(n=80).save(tmp_path / "a.safetensors"), pairs(n=80, seed=1).save(tmp_path / "b.safetensors")
    assert main(["report", "--name", "lr=1e-4", str(a), "--name", "runs/b", str(b), "--n-boot", "100",
                 "--out", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")]) == 0
    import json
    assert list(json.loads((tmp_path / "r.json").read_text())["sets"]) == ["lr=1e-4", "runs/b"]

def test_medr_is_a_whole_rank():
    from xmodal_lab.metrics import retrieval
    r = retrieval(pairs(n=50), ks=(1,))
    assert isinstance(r["i2t"]["MedR"], int) and ".000" not in r._repr_html_().split("MedR")[1][:40]

def test_single_report_intervals_match_the_binomial(tmp_path):
    "R@1 on n items is a proportion: its bootstrap interval matches the normal approximation to the binomial (independent truth)."
    from xmodal_lab.report import retrieval_intervals
    e = pairs(n=1000, d=32, noise=2.5)
    v, lo, hi = retrieval_intervals(e, n_boot=2000)["i2t R@1"]
    w = 1.96 * (v * (1 - v) / 1000) ** 0.5
    assert 0.05 < v < 0.95 and abs(lo - (v - w)) < 0.008 and abs(hi - (v + w)) < 0.008, (v, lo, hi, w)

def test_comparison_caveats_and_protocol():
    "The protocol card says ties and relevance; weights are not the set names again; Mod-X angles carry their caveat; XBT warns when underdetermined."
    a = pairs(n=300, d=64); b = pairs(n=300, d=64, seed=4)
    b.meta = {"model": "another"}
    c = compare({"a": a, "b": b}, n_boot=100)
    assert {"ties", "relevance", "inputs"} <= set(c.protocol) and c.protocol["weights"] == "—"
    page = c.geometry_html()
    assert "rotation, mean angle (°) †" in page and "mean little between spaces" in page
    assert "Fewer fit items" not in page                                  # 150 fit items, 64 dimensions
    same = compare({"a": a, "a again": Embeddings(a.image, a.text, meta=dict(a.meta))}, n_boot=100)
    assert "†" not in same.geometry_html()
    wide = compare({"a": pairs(n=300, d=200), "b": pairs(n=300, d=200, seed=5)}, n_boot=100)
    assert "Fewer fit items (150) than dimensions (200)" in wide.geometry_html()

def test_cli_report_redacts_paths_and_hashes_inputs(tmp_path):
    import hashlib, json
    from xmodal_lab.cli import main
    a = pairs(n=80); a.meta = {**a.meta, "source": str(tmp_path / "deep" / "secret" / "a.npy")}
    pa, pb = a.save(tmp_path / "a.safetensors"), pairs(n=80, seed=1).save(tmp_path / "b.safetensors")
    assert main(["report", f"a={pa}", f"b={pb}", "--n-boot", "100", "--out", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json")]) == 0
    text = (tmp_path / "r.json").read_text() + (tmp_path / "r.html").read_text()
    assert str(tmp_path) not in text and "secret" not in text
    assert json.loads((tmp_path / "r.json").read_text())["protocol"]["inputs"]["a"] == hashlib.sha256(pa.read_bytes()).hexdigest()
    assert main(["report", f"a={pa}", "--no-redact-paths", "--out", str(tmp_path / "k.html")]) == 0
    assert "secret" in (tmp_path / "k.html").read_text()

def test_holm_across_the_table():
    "Ten metrics per set are starred one interval at a time; with holm=True the family-wise reading, and the protocol says which was used."
    from xmodal_lab.compare import holm_adjust
    a, b = pairs(n=300), pairs(n=300, noise=2.1, seed=0)         # the same images, slightly noisier captions: small differences
    plain, holm = compare({"a": a, "b": b}, n_boot=400), compare({"a": a, "b": b}, n_boot=400, holm=True)
    assert plain.protocol["multiplicity"].startswith("none") and holm.protocol["multiplicity"].startswith("Holm")
    stars = lambda c: {m for m in c.metrics if c.significant("b", m)}
    assert stars(holm) <= stars(plain)                            # Holm never adds a star
    k = len(holm.adjusted["b"]); p = {m: v for m, v in holm.adjusted["b"].items()}
    raw = sorted(((v, m) for m, v in holm_adjust({"b": {m: 0.5 ** (i + 2) for i, m in enumerate(p)}})["b"].items()))
    assert raw[0][0] == k * 0.5 ** (k + 1)                        # the smallest p times the family size
    assert all(0 <= v <= 1 for v in p.values())

def test_single_report_plane_has_the_random_twin(tmp_path):
    "One point on the alignment–uniformity plane says little; the random-initialised twin on the same data is the reference."
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    from xmodal_lab.report import report, random_twin
    from xmodal_lab.evaluation import evaluate
    model, _, tok = load_model()
    ds = shapes("test", n=60)
    e = embed(model, ds, progress=False, verbose=False, cache=False)
    twin = random_twin(model, ds, cache=False)
    assert twin.meta["name"] == "xmodal-tiny at random init (seed 0)" and twin.n_texts == e.n_texts
    page = report(e, tmp_path / "r.html", reference=twin).read_text()
    assert "Reference: \u2068xmodal-tiny at random init (seed 0)\u2069" in page and "at random init (seed 0)" in page.split("Alignment and uniformity")[-1]
    assert "No reference point" in report(e, tmp_path / "s.html").read_text()
    ev = evaluate(e, model, tok)                                   # 60 images: too few to fit a temperature; no crash, no calibration row
    assert all(int(0.5 * len(z.labels)) >= 10 for k, z in ev.zero_shot.items() if k in ev.calibration)

def test_xbt_reports_the_identity_maps_ceiling():
    "An identical space through a map fitted on fewer items than dimensions loses accuracy: the A→A map rows say how much (the ceiling)."
    from xmodal_lab.compare import backward_compatibility
    a = pairs(n=300, d=200, noise=4.0)
    rows = backward_compatibility(a, Embeddings(a.image, a.text, meta=dict(a.meta)))["rows"]
    for k in ("text map", "pair map"):
        assert rows[f"A→A {k} (ceiling)"] == rows[f"B→A {k}"]            # B is A: the B→A fit is the A→A fit
    assert rows["A→A text map (ceiling)"]["i2t"] < rows["A→A"]["i2t"]    # 150 fit items, 200 dimensions: the map itself costs R@1
    wide = compare({"a": a, "b": pairs(n=300, d=200, seed=5, noise=4.0)}, n_boot=100).geometry_html()
    assert "A→A text map (ceiling)" in wide and "A→A pair map (ceiling)" in wide
