"`reproduce` against independent computations: the released CLIP features (skipped where they are absent) and the CLI end to end on xmodal-tiny."
import csv, json, math, subprocess, sys
from pathlib import Path
import numpy as np
import pytest
from xmodal_lab.reproduce import paper_values, reproduce, PAPERS

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared/data/real-features"
needs_real = pytest.mark.skipif(not (REAL / "clip.npy").exists(), reason=f"the released Mind-the-Gap features are not at {REAL}")

def test_every_paper_value_carries_its_source():
    rows = paper_values()
    assert rows and {r["paper"] for r in rows} == set(PAPERS)
    for r in rows:
        assert r["source"] and r["backbone"] and r["dataset"] and r["transcribed_from"], r
        assert (r["value"] is None) != (not r["claim"]) or r["value"] is not None, r      # a number, or a claim in words

def test_the_release_metadata_quotes_the_transcription_file():
    "The released-features metadata (io.MIND_THE_GAP_PAPER) and the transcription file give the paper the same numbers."
    from xmodal_lab.io import MIND_THE_GAP_PAPER
    t = {r["quantity"]: r["value"] for r in paper_values("mind-the-gap")}
    for q, v in MIND_THE_GAP_PAPER["clip"].items():
        if q != "source": assert t[q] == v, q

def _np_loss(x, y, scale):
    "open_clip's symmetric InfoNCE, one caption per image, in float64 numpy."
    lg = scale * x @ y.T
    lse = lambda a, ax: np.log(np.exp(a - a.max(ax, keepdims=True)).sum(ax)) + a.max(ax)
    d = np.diag(lg)
    return float(((lse(lg, 1) - d).mean() + (lse(lg, 0) - d).mean()) / 2)

@needs_real
def test_mind_the_gap_on_released_clip_matches_numpy_and_the_committed_page():
    from xmodal_lab.io import mind_the_gap
    e, e0 = mind_the_gap("clip", path=REAL), mind_the_gap("clip_random", path=REAL)
    r = reproduce("mind-the-gap", embeddings=e, random_init=e0)
    a = np.load(REAL / "clip.npy").astype(np.float64); x, y = a[0], a[1]
    x /= np.linalg.norm(x, axis=1, keepdims=True); y /= np.linalg.norm(y, axis=1, keepdims=True)
    f = {q: row for q, row in zip(r.to_frame()["quantity"], r.to_frame().to_dict("records"))}
    gap = np.linalg.norm(x.mean(0) - y.mean(0))
    assert f["L2M gap ‖Δ‖"]["measured"] == pytest.approx(gap, abs=1e-6)
    assert f["L2M gap ‖Δ‖"]["lo"] < gap < f["L2M gap ‖Δ‖"]["hi"]
    n = len(x); G = x @ x.T
    assert f["cone: image"]["measured"] == pytest.approx((G.sum() - n) / (n * (n - 1)), abs=1e-6)
    # the shift and its losses, recomputed in numpy: x' = norm(x - λ/2 Δ̂), y' = norm(y + λ/2 Δ̂)
    d = (x.mean(0) - y.mean(0)); d /= np.linalg.norm(d)
    table = r.sections[2].tables[0][1]
    nrm = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
    for lam in table.index:
        xs, ys = nrm(x - lam / 2 * d), nrm(y + lam / 2 * d)
        assert table.loc[lam, "gap"] == pytest.approx(np.linalg.norm(xs.mean(0) - ys.mean(0)), abs=1e-6)
        assert table.loc[lam, "loss @ scale 100"] == pytest.approx(_np_loss(xs, ys, 100.0), rel=1e-5)
    losses = {lam: _np_loss(nrm(x - lam / 2 * d), nrm(y + lam / 2 * d), 100.0) for lam in table.index}
    assert min(losses, key=losses.get) == 0.0 == f["λ of the lowest loss at τ = 1/100"]["measured"]   # the paper's finding, on its own features
    # what the chapter shows is this run
    page = json.loads((ROOT / "nbs/results/reproduce_clip.json").read_text())["mind-the-gap"]
    committed = [g for s in page["sections"] for g in s["findings"]]
    assert [g["verdict"] for g in committed] == r.to_frame()["verdict"].tolist()
    assert np.allclose([g["measured"] for g in committed], r.to_frame()["measured"], atol=1e-9)

def _cli(*args, cwd):
    "The installed command, as a user runs it."
    return subprocess.run([str(Path(sys.executable).parent / "xmodal-lab"), *args], cwd=cwd, capture_output=True, text=True)

def test_cli_on_the_default_matches_the_chapters_numbers(tmp_path):
    p = _cli("reproduce", "mind-the-gap", "--model", "xmodal-tiny", "--data", "shapes:test", "--out", "r.html", "--json", "r.json",
             "--csv", "r.csv", "--seeds", "2", "--n-boot", "200", "--quiet", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    d = json.loads((tmp_path / "r.json").read_text())
    rows = list(csv.DictReader(open(tmp_path / "r.csv", encoding="utf-8")))
    assert len(rows) == sum(len(s["findings"]) for s in d["sections"]) and d["protocol"]["random initialisations"] == 2
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    from xmodal_lab.gap import l2m_gap, cone_similarity, separability
    emb = embed(load_model()[0], shapes("test"), progress=False, verbose=False)
    got = {r["quantity"]: float(r["measured"]) for r in rows}
    assert got["L2M gap ‖Δ‖"] == pytest.approx(l2m_gap(emb), abs=1e-9)
    assert got["cone: text"] == pytest.approx(cone_similarity(emb.text), abs=1e-9)
    assert got["linear separability (held-out accuracy)"] == pytest.approx(separability(emb), abs=1e-12)
    page = (tmp_path / "r.html").read_text()
    assert "Setting." in page and "backbone" in page and "data-figures" not in page   # the setting note; figures are drawn by the loader
    assert "13 of" in p.stdout or "comparable findings agree" in p.stdout

def test_cli_refuses_before_any_work(tmp_path):
    for args, words in [(["reproduce", "mind-the-gaps"], "xmodal-lab reproduces: mind-the-gap"),
                        (["reproduce", "mind-the-gap", "--random-features", "x.npy"], "no features at x.npy"),
                        (["reproduce", "mind-the-gap", "--max-minutes", "0.00001"], "--yes"),
                        (["reproduce", "mind-the-gap", "--labels", "species"], "no label 'species'")]:
        p = _cli(*args, cwd=tmp_path)
        assert p.returncode == 2 and words in p.stderr, (args, p.stderr)
    assert not [f for f in tmp_path.iterdir() if f.suffix in (".html", ".json", ".csv")]      # no report written

@needs_real
def test_balance_act_on_released_clip_matches_numpy_and_the_committed_page():
    "QB-Norm's R@1 on the test half recomputed in float64 numpy from the inverted softmax, and the committed page is this run."
    from xmodal_lab.io import mind_the_gap
    from xmodal_lab.reproduce import split_bank
    e = mind_the_gap("clip", path=REAL)
    r = reproduce("balance-act", embeddings=e)
    test, bank = split_bank(e)
    q, g, b = (t.numpy().astype(np.float64) for t in (test.text, test.image, bank.text))
    lse = lambda a: np.log(np.exp(a - a.max(0)).sum(0)) + a.max(0)
    s = 20 * q @ g.T - lse(20 * b @ g.T)                      # log of exp(βS(q,g)) / Σ_bank exp(βS(b,g))
    r1 = float((s.argmax(1) == test.image_of_text.numpy()).mean())
    assert r.sections[0].tables[0][1].loc["QB-Norm", "R@1"] == pytest.approx(r1, abs=1e-12)
    cos = float(((q @ g.T).argmax(1) == test.image_of_text.numpy()).mean())
    f = {x.quantity: x for x in r.sections[0].findings}
    assert f["text → image R@1: QB-Norm − cosine"].measured == pytest.approx(r1 - cos, abs=1e-12)
    page = json.loads((ROOT / "nbs/results/reproduce_clip.json").read_text())["balance-act"]
    assert [g["verdict"] for s in page["sections"] for g in s["findings"]] == r.to_frame()["verdict"].tolist()

def test_cross_the_gap_matches_the_inversion_chapter(tmp_path):
    "The CLI's OTI and OVI routes equal inversion_study's for the same settings; the native mAP equals scikit-learn's average precision."
    from sklearn.metrics import average_precision_score
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    from xmodal_lab.inversion import inversion_study
    p = _cli("reproduce", "cross-the-gap", "--data", "shapes:test", "--labels", "n_objects", "--queries", "60", "40", "--inversion-steps", "12", "12",
             "--out", "r.html", "--json", "r.json", "--quiet", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    d = json.loads((tmp_path / "r.json").read_text())
    tables = {t["caption"].split(":")[0]: {r["index"]: r for r in t["rows"]} for t in d["sections"][0]["tables"] if "native against" in t["caption"]}
    model, _, tok = load_model()
    emb = embed(model, shapes("test"), progress=False, verbose=False)
    st = inversion_study(model, tok, emb, "n_objects", n_images=60, n_texts=40, oti_steps=12, ovi_steps=12, progress=False)
    assert tables["image → image"]["mAP"]["OTI"] == pytest.approx(st["image"]["OTI: text-side query → image"]["mAP"], abs=1e-9)
    assert tables["text → text"]["mAP"]["OVI"] == pytest.approx(st["text"]["OVI: image-side query → text"]["mAP"], abs=1e-9)
    assert tables["image → image"]["mAP"]["gain"] == pytest.approx(st["image_gain"]["mean"], abs=1e-9)
    x, lab = emb.image[:60], emb.labels["n_objects"][:60]
    S = (x @ x.T).double().numpy(); aps = []
    for i in range(60):
        if lab[i] < 0: continue
        o = np.arange(60) != i; rel = (lab.numpy()[o] == lab[i].item())
        if rel.any(): aps.append(average_precision_score(rel, S[i, o]))
    assert tables["image → image"]["mAP"]["native"] == pytest.approx(np.mean(aps), abs=1e-6)

def test_cross_the_gap_runs_the_side_it_can(tmp_path):
    "A tower it cannot invert is named, and the other side still runs; data without labels are refused before any work."
    import torch
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    model, _, tok = load_model()
    class Wrapped(torch.nn.Module):                  # an image tower that is not open_clip's VisionTransformer
        def __init__(self, v): super().__init__(); self.v, self.output_dim = v, v.output_dim
        def forward(self, x): return self.v(x)
    model.visual = Wrapped(model.visual)
    r = reproduce("cross-the-gap", model, dataset=shapes("test", n=120, n_objects=1), labels=["shape"], n_queries=(40, 30), inversion_steps=(5, 5), progress=False)
    notes = " ".join(r.sections[0].notes)
    assert "OVI not run" in notes and "VisionTransformer" in notes
    assert {f.quantity.split(":")[0] for f in r.sections[0].findings} == {"image → image mAP", "image → image mAP@R", "image → image R-precision",
                                                                         "image → image P@1", "image → image"}
    with pytest.raises(ValueError, match="too few queries"):             # most images of the default test set hold several objects: no shape label
        reproduce("cross-the-gap", load_model()[0], dataset=shapes("test", n=120), labels=["shape"], progress=False)
    bare = shapes("test", n=50); bare.labels = {}
    with pytest.raises(ValueError, match="need a label per image"):
        reproduce("cross-the-gap", load_model()[0], dataset=bare, progress=False)

def test_m2_mix_end_to_end(tmp_path):
    "Two seeds of each loss on a small budget: the findings are the seed-paired differences of the table, and 'before' is numpy's alignment."
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    model = load_model()[0]
    val = shapes("test", n=200)
    r = reproduce("m2-mix", model, dataset=shapes("train", n=256), val=val, seeds=2, progress=False,
                  recipe=dict(epochs=1, batch_size=64, steps_per_epoch=2, lr=3e-4, wd=0.1))
    t = r.sections[0].tables[0][1]
    f = {x.quantity: x for x in r.sections[0].findings}
    assert f["uniformity: m²-mix − contrastive"].measured == pytest.approx(t.loc["m²-mix", "uniformity mean"] - t.loc["contrastive", "uniformity mean"], abs=1e-3)
    e = embed(model, val, progress=False, verbose=False)
    x, y = e.image.double().numpy()[e.image_of_text.numpy()], e.text.double().numpy()
    assert t.loc["before fine-tuning", "alignment mean"] == pytest.approx(((x - y) ** 2).sum(1).mean(), abs=1e-3)
    with pytest.raises(ValueError, match="at least 2"):
        reproduce("m2-mix", model, dataset=shapes("train", n=256), val=val, seeds=1)
