"Retrieval, calibration and hubness against independent implementations: torchmetrics, scipy, numpy float64."
import math
import numpy as np
import pytest, torch
import scipy.stats
from xmodal_lab.core import Embeddings
from xmodal_lab.metrics import retrieval, rank_queries
from xmodal_lab.calibration import ece, calibration
from xmodal_lab.hubness import hubness, k_occurrence, hubness_remedies, bank_lse
from torchmetrics.retrieval import RetrievalMRR, RetrievalMAP, RetrievalRecall, RetrievalHitRate
from torchmetrics.classification import MulticlassCalibrationError

def random_emb(n_img=40, cpi=3, d=16, seed=0, noise=1.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n_img, d, generator=g)
    io = torch.arange(n_img).repeat_interleave(cpi)
    y = x[io] + noise * torch.randn(n_img * cpi, d, generator=g)
    return Embeddings(x, y, io, labels={"cls": torch.randint(0, 4, (n_img,), generator=g)})

def tm(metric, sim, rel):
    "torchmetrics over all queries; scores shifted positive (torchmetrics drops scores <= 0, see MEASURED.md)."
    n, m = sim.shape
    return metric(sim.flatten() + 2, rel.flatten(), indexes=torch.arange(n).repeat_interleave(m)).item()

@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("by", [None, "cls"])
def test_against_torchmetrics(seed, by):
    e = random_emb(seed=seed)
    r = retrieval(e, ks=(1, 5, 10), by=by)
    lab_i = torch.arange(e.n_images) if by is None else e.labels[by]
    lab_t = lab_i[e.image_of_text]
    for d, (q, g, rel) in {"i2t": (e.image, e.text, lab_i[:, None] == lab_t[None]),
                           "t2i": (e.text, e.image, lab_t[:, None] == lab_i[None])}.items():
        sim = q @ g.T
        assert r[d]["MRR"] == pytest.approx(tm(RetrievalMRR(), sim, rel), abs=1e-5)
        assert r[d]["mAP"] == pytest.approx(tm(RetrievalMAP(), sim, rel), abs=1e-5)
        for k in (1, 5, 10):
            assert r[d][f"R@{k}"] == pytest.approx(tm(RetrievalHitRate(top_k=k), sim, rel), abs=1e-6)   # any-of-K
        if by is None and d == "t2i":   # one relevant item: recall@K is the hit rate
            for k in (1, 5, 10): assert r[d][f"R@{k}"] == pytest.approx(tm(RetrievalRecall(top_k=k), sim, rel), abs=1e-6)

def test_recall_fraction_vs_any_of_k():
    "image→text R@K is any-of-K: at least the fraction of captions found (torchmetrics' RetrievalRecall)."
    e = random_emb(seed=5)
    sim, rel = e.image @ e.text.T, e.image_of_text[None] == torch.arange(e.n_images)[:, None]
    r = retrieval(e, ks=(5,))
    assert r["i2t"]["R@5"] >= tm(RetrievalRecall(top_k=5), sim, rel) - 1e-9

def test_precision_metrics_by_definition():
    "AP@R and R-precision against a plain sort-based computation in numpy float64."
    e = random_emb(seed=3)
    lab = e.labels["cls"]
    st = rank_queries(e.image, e.image, lab, lab, exclude=torch.arange(e.n_images))
    s = (e.image.double() @ e.image.double().T).numpy(); np.fill_diagonal(s, -np.inf)
    for i in range(e.n_images):
        rel = (lab == lab[i]).numpy(); rel[i] = False
        order = np.argsort(-s[i], kind="stable"); relo = rel[order][:-1]
        R = relo.sum()
        if R == 0: continue
        hits = np.cumsum(relo); prec = hits / np.arange(1, len(relo) + 1)
        assert st["r_precision"][i].item() == pytest.approx(hits[R - 1] / R)
        assert st["ap_at_r"][i].item() == pytest.approx((prec[:R] * relo[:R]).sum() / R)
        assert st["ap"][i].item() == pytest.approx((prec * relo).sum() / R)

def test_ece_against_torchmetrics():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3000, 7, generator=g) * 3
    y = torch.randint(0, 7, (3000,), generator=g)
    ref = MulticlassCalibrationError(num_classes=7, n_bins=15, norm="l1")(logits.softmax(1), y).item()
    assert ece(logits, y) == pytest.approx(ref, abs=1e-5)

def test_temperature_scaling_never_changes_predictions():
    g = torch.Generator().manual_seed(1)
    logits, y = torch.randn(500, 4, generator=g) * 5, torch.randint(0, 4, (500,), generator=g)
    c = calibration(logits, y)
    assert c.nll_scaled <= c.nll + 1e-9 or c.temperature == pytest.approx(1.0, abs=1e-3)

@pytest.mark.parametrize("k", [1, 5, 10])
def test_hubness_against_scipy_and_full_matrix(k):
    e = random_emb(n_img=200, cpi=2, d=8, seed=k)
    s = e.text @ e.image.T
    nk_ref = torch.bincount(s.topk(k, 1).indices.flatten(), minlength=e.n_images)
    h = hubness(e, k=k)
    assert torch.equal(h.n_k, nk_ref)
    assert h.skewness == pytest.approx(scipy.stats.skew(nk_ref.numpy()), abs=1e-9)
    assert h.anti_hub_share == pytest.approx((nk_ref == 0).float().mean().item())
    top = sorted(nk_ref.tolist(), reverse=True)[:math.ceil(0.01 * e.n_images)]
    assert h.top1pct_occupancy == pytest.approx(sum(top) / (len(s) * k))
    assert hubness(s, k=k).skewness == pytest.approx(h.skewness)

def test_qbnorm_and_dbnorm_against_full_matrix():
    e = random_emb(n_img=60, cpi=2, d=8, seed=7, noise=1.5)
    bank_q, bank_g = random_emb(n_img=80, cpi=1, d=8, seed=8).text, random_emb(n_img=80, cpi=1, d=8, seed=9).image
    beta = 20.0
    s = (e.text @ e.image.T).double()
    qb = torch.exp(beta * s) / torch.exp(beta * (bank_q.double() @ e.image.T.double())).sum(0)
    db = qb * torch.exp(beta * s) / torch.exp(beta * (bank_g.double() @ e.image.T.double())).sum(0)
    r = hubness_remedies(e, bank_q, bank_g, beta=beta, k=5)
    for name, sp in (("QB-Norm", qb), ("DBNorm", db)):
        rank = 1 + (sp > sp.gather(1, e.image_of_text[:, None])).sum(1)
        assert r.table[name]["R@1"] == pytest.approx((rank <= 1).double().mean().item())
        assert r.table[name]["MRR"] == pytest.approx((1 / rank.double()).mean().item(), abs=1e-6)
        nk = torch.bincount(sp.topk(5, 1).indices.flatten(), minlength=e.n_images)
        assert r.table[name]["skewness"] == pytest.approx(scipy.stats.skew(nk.numpy()), abs=1e-9)

def test_bad_input():
    e = random_emb()
    with pytest.raises(ValueError, match="gallery is empty"): rank_queries(e.image, torch.zeros(0, 16), torch.arange(40), torch.zeros(0))
    with pytest.raises(ValueError, match="larger than the gallery"): hubness(e, k=1000)
    with pytest.raises(ValueError, match="larger than the gallery"): rank_queries(e.image, e.text, torch.arange(40), e.image_of_text, topk=500)
    with pytest.raises(ValueError, match="NaN"): hubness(torch.tensor([[0.1, float("nan")]]), k=1)
    q = e.image.clone(); q[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"): rank_queries(q, e.text, torch.arange(40), e.image_of_text)
    with pytest.raises(ValueError, match=r"\[0, 3\)"): ece(torch.zeros(2, 3), torch.tensor([0, 5]))
    with pytest.raises(ValueError, match="no label 'colour'"): retrieval(e, by="colour")
    with pytest.raises(ValueError, match="empty"): hubness_remedies(e, query_bank=torch.zeros(0, 16))

def test_real_clip(real_features):
    "R@1, MRR and k-occurrence skewness on real CLIP features (500 COCO pairs), against numpy float64."
    a = real_features("clip").astype(np.float64)
    x, y = (v / np.linalg.norm(v, axis=1, keepdims=True) for v in a)   # cosine: the stored rows are unit only to ~5e-4
    e = Embeddings(torch.from_numpy(a[0]), torch.from_numpy(a[1]))
    r = retrieval(e, ks=(1, 5))
    for d, s in (("i2t", x @ y.T), ("t2i", y @ x.T)):
        diff = s - np.diag(s)[:, None]
        rank = 1 + (diff > 0).sum(1)
        ours = r.per_query[d]["first_rank"].numpy()
        # float32 scores may order near-ties (|Δ| < 1e-6) differently from float64; nothing else may differ
        near = (np.abs(diff) < 1e-6).sum(1) > 1
        assert (ours[~near] == rank[~near]).all() and near.sum() <= 3, (near.sum(), np.nonzero(ours != rank))
        ok = ~near
        assert (ours[ok] == 1).mean() == pytest.approx((rank[ok] == 1).mean(), abs=1e-12)
        assert (1 / ours[ok]).mean() == pytest.approx((1 / rank[ok]).mean(), abs=1e-12)
        assert r[d]["MRR"] == pytest.approx((1 / rank).mean(), abs=near.sum() / 500)
    s = y @ x.T
    nk = np.bincount(np.argsort(-s, 1)[:, :10].ravel(), minlength=500)
    h = hubness(e, k=10)
    assert h.n_k.tolist() == nk.tolist()
    assert h.skewness == pytest.approx(scipy.stats.skew(nk), abs=1e-9)
    assert 0.2 < r["i2t"]["R@1"] < 0.95 and h.skewness > 0     # a real model: good, not perfect, and hubby
