"""Property-based guard: every metric against a brute-force float64 reference on adversarial inputs.

The references build the whole similarity matrix from per-pair float64 dot products of the very float32 vectors the
package holds (so identical vectors score identically), sort explicitly, and apply the package's documented
conventions: pessimistic ties (a relevant item ranks after every item scoring the same), VSE++'s MedR, Guo et al.'s
ECE bins (k/B, (k+1)/B], uniformity over pairs i < j. Inputs: small integer coordinates (many exact ties and
duplicates), uneven captions per image (some images without any), tiny sizes, block sizes that do not divide N,
fp16/bf16 inputs and non-normalised rows.
"""
import math
import numpy as np
import pytest, torch
import scipy.stats
from hypothesis import given, settings, strategies as st, HealthCheck
from xmodal_lab.core import Embeddings
from xmodal_lab.metrics import retrieval, rank_queries
from xmodal_lab.hubness import hubness, hubness_remedies
from xmodal_lab.calibration import reliability, fit_temperature
from xmodal_lab.uniformity import uniformity, cross_uniformity
from xmodal_lab.zeroshot import zero_shot

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
TIE = 1e-12        # the references' tie tolerance; distinct float32 inputs here differ by far more

def _dtype_cast(x, dtype):
    return x.to(dtype).float() if dtype is not None else x

@st.composite
def embeddings(draw):
    "Embeddings with small-integer coordinates (exact ties), 0–3 captions per image, random scales and low precision."
    d = draw(st.integers(2, 5)); n_img = draw(st.integers(1, 7))
    coords = st.lists(st.integers(-2, 2), min_size=d, max_size=d).filter(lambda v: any(v))
    cpi = draw(st.lists(st.integers(0, 3), min_size=n_img, max_size=n_img).filter(lambda c: sum(c) > 0))
    x = torch.tensor([draw(coords) for _ in range(n_img)], dtype=torch.float32)
    y = torch.tensor([draw(coords) for _ in range(sum(cpi))], dtype=torch.float32)
    scale = draw(st.sampled_from([1.0, 0.01, 37.0]))
    dtype = draw(st.sampled_from([None, torch.float16, torch.bfloat16]))
    io = torch.arange(n_img).repeat_interleave(torch.tensor(cpi))
    lab = torch.tensor(draw(st.lists(st.integers(-1, 2), min_size=n_img, max_size=n_img)))
    return Embeddings(_dtype_cast(scale * x, dtype), _dtype_cast(scale * y, dtype), io, labels={"c": lab})

def _sim64(q, g): return (q[:, None, :].double() * g[None, :, :].double()).sum(-1)

def _metrics_bruteforce(q, g, q_grp, g_grp, ks):
    s = _sim64(q, g).numpy()
    first, ap = [], []
    for i in range(len(q)):
        rel = (g_grp == q_grp[i]).numpy() & (q_grp[i] >= 0).item()
        if not rel.any(): continue
        # item-wise pessimistic rank, then the standard k / r_k with r_k made strictly increasing for tied relevant items
        geq = np.array([((s[i] >= s[i, j] - TIE)).sum() for j in np.flatnonzero(rel)])
        rel_geq = np.array([((s[i, rel] >= s[i, j] - TIE)).sum() for j in np.flatnonzero(rel)])
        order = np.argsort(-s[i, rel], kind="stable")
        geq, rel_geq = geq[order], rel_geq[order]
        k = np.arange(1, rel.sum() + 1)
        r = k + geq - rel_geq
        first.append(r[0]); ap.append(np.mean(k / r))
    first = np.array(first, dtype=np.float64)
    out = {f"R@{k}": float(np.mean(first <= k)) for k in ks}
    out.update(MRR=float(np.mean(1 / first)), mAP=float(np.mean(ap)), MedR=float(np.floor(np.median(first - 1)) + 1), queries=len(first))
    return out

@FAST
@given(embeddings(), st.sampled_from([None, "c"]), st.integers(1, 9))
def test_retrieval_bruteforce(e, by, block_rows):
    ks = (1, 2, 5)
    img_g = torch.arange(e.n_images) if by is None else e.labels[by]
    txt_g = img_g[e.image_of_text]
    try: r = retrieval(e, ks=ks, by=by, block_bytes=4 * max(e.n_images, e.n_texts) * block_rows)
    except ValueError as ex:
        assert "has a relevant item" in str(ex); return
    for d, (q, g, qg, gg) in {"i2t": (e.image, e.text, img_g, txt_g), "t2i": (e.text, e.image, txt_g, img_g)}.items():
        ref = _metrics_bruteforce(q, g, qg, gg, ks)
        for k, v in ref.items(): assert r[d][k] == pytest.approx(v, abs=1e-9), (d, k, r[d], ref)

@FAST
@given(st.integers(1, 6), st.integers(1, 8), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_identical_vectors_tie_whatever_the_blocks(n_q, n_g, block_rows, seed):
    "All queries and gallery items identical: the relevant item always ranks last among its ties, in any block size."
    v = torch.nn.functional.normalize(torch.randn(1, 96, generator=torch.Generator().manual_seed(seed)), dim=1)
    rel = torch.zeros(n_g, dtype=torch.long); rel[seed % n_g] = 1
    st_ = rank_queries(v.repeat(n_q, 1), v.repeat(n_g, 1), torch.ones(n_q, dtype=torch.long), rel, block_bytes=4 * n_g * block_rows)
    assert st_["first_rank"].tolist() == [n_g] * n_q

@st.composite
def continuous(draw, min_n=2):
    "Random continuous unit vectors (no ties), sizes that do not divide block sizes."
    n, m, d = draw(st.integers(min_n, 12)), draw(st.integers(2, 15)), draw(st.integers(2, 6))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g) * 3, torch.randn(m, d, generator=g) * 0.2

@FAST
@given(continuous(), st.integers(1, 5))
def test_hubness_bruteforce(qg, k):
    q, g = qg
    k = min(k, len(g))
    qn, gn = torch.nn.functional.normalize(q, dim=1), torch.nn.functional.normalize(g, dim=1)
    s = _sim64(qn, gn)
    nk = np.zeros(len(g), dtype=np.int64)
    for row in s.numpy(): nk[np.argsort(-row, kind="stable")[:k]] += 1
    h = hubness(Embeddings(g, q, image_of_text=torch.zeros(len(q), dtype=torch.long)), k=k, direction="t2i")
    assert h.n_k.tolist() == nk.tolist()
    assert h.skewness == pytest.approx(float(scipy.stats.skew(nk, bias=True)) if nk.std() > 0 else 0.0, abs=1e-9)
    assert h.anti_hub_share == pytest.approx(float(np.mean(nk == 0)))

@FAST
@given(continuous(min_n=2), st.integers(0, 2**31 - 1), st.sampled_from([1.0, 3.0, 0.1]))
def test_remedies_bruteforce(qg, seed, bank_scale):
    "QB-Norm and DBNorm R@K against the inverted-softmax formula on the full matrix, with banks of any scale."
    q, g = qg
    gen = torch.Generator().manual_seed(seed)
    e = Embeddings(g, q, image_of_text=torch.randint(0, len(g), (len(q),), generator=gen))
    qb, gb = torch.randn(7, q.shape[1], generator=gen), torch.randn(5, q.shape[1], generator=gen)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = hubness_remedies(e, bank_scale * qb, bank_scale * gb, k=1, ks=(1, 2))
    qn, gn = e.text.double(), e.image.double()
    qbn, gbn = torch.nn.functional.normalize(qb.double(), dim=1), torch.nn.functional.normalize(gb.double(), dim=1)
    S = _sim64(e.text, e.image)
    cq = torch.logsumexp(20 * (qbn.float().double() @ gn.T), 0)
    cg = torch.logsumexp(20 * (gbn.float().double() @ gn.T), 0)
    for name, sc in {"cosine": S, "QB-Norm": 20 * S - cq, "DBNorm": 40 * S - cq - cg}.items():
        ref = _metrics_bruteforce_scores(sc.numpy(), e.image_of_text.numpy(), (1, 2))
        for kk in ("R@1", "R@2", "MRR"): assert r.table[name][kk] == pytest.approx(ref[kk], abs=1e-6), (name, kk)

def _metrics_bruteforce_scores(s, target, ks):
    "R@K and MRR of one relevant item per row, pessimistic ties, from a dense score matrix."
    first = np.array([(s[i] >= s[i, target[i]] - 1e-9).sum() for i in range(len(s))], dtype=np.float64)
    out = {f"R@{k}": float(np.mean(first <= k)) for k in ks}; out["MRR"] = float(np.mean(1 / first)); return out

@FAST
@given(st.integers(1, 40), st.integers(2, 5), st.integers(1, 20), st.integers(0, 2**31 - 1), st.sampled_from([1.0, 10.0, 100.0]))
def test_ece_bruteforce(n, c, n_bins, seed, temp):
    g = torch.Generator().manual_seed(seed)
    z = torch.randint(-3, 4, (n, c), generator=g).double() * temp / 10       # many equal logits, confidences on bin edges
    y = torch.randint(0, c, (n,), generator=g)
    p = torch.softmax(z, 1); conf, pred = p.max(1)
    ece = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = [(i) for i in range(n) if (lo < conf[i] <= hi) or (b == 0 and conf[i] == 0)]
        if m:
            acc = np.mean([float(pred[i] == y[i]) for i in m]); cf = np.mean([conf[i].item() for i in m])
            ece += len(m) / n * abs(acc - cf)
    assert reliability(z, y, n_bins)["ece"] == pytest.approx(ece, abs=1e-12)

@FAST
@given(st.integers(10, 60), st.integers(2, 4), st.integers(0, 2**31 - 1))
def test_temperature_bruteforce(n, c, seed):
    "The fitted T minimises the NLL over a fine grid, or sits at a bound with the reason stated."
    import warnings
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g) * 4; y = torch.randint(0, c, (n,), generator=g)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        f = fit_temperature(z, y)
    grid = torch.logspace(-2, 2, 4001, dtype=torch.float64)
    nll = torch.stack([torch.nn.functional.cross_entropy(z.double() / T, y) for T in grid])
    best = grid[nll.argmin()].item()
    if f.at_bound: assert w and best in (grid[0].item(), grid[-1].item())
    else: assert f.nll <= nll.min().item() + 1e-9 and abs(math.log(f.T / best)) < 3e-3

@FAST
@given(st.integers(2, 40), st.integers(2, 6), st.integers(1, 13), st.sampled_from([0.5, 2.0, 10.0]), st.integers(0, 2**31 - 1),
       st.sampled_from([None, torch.float16, torch.bfloat16]))
def test_uniformity_bruteforce(n, d, block, t, seed, dtype):
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(-2, 3, (n, d), generator=g).float() + 0.01 * torch.randn(n, d, generator=g) * (seed % 2)
    x[(x == 0).all(1)] = 1.0
    x = _dtype_cast(x * 5, dtype)
    xn = torch.nn.functional.normalize(x, dim=1)
    s = _sim64(xn, xn)
    iu = torch.triu_indices(n, n, 1)
    ref = torch.logsumexp((-t * (2 - 2 * s[iu[0], iu[1]]).clamp(min=0)), 0).item() - math.log(iu.shape[1])
    tol = 4 * t * 2.0 ** -24 * 4                                                  # float32 exponents 2t·(x·y − 1)
    assert uniformity(x, t, block=block) == pytest.approx(ref, abs=tol)
    assert ref >= -2 * t * n / (n - 1) - 1e-9                                     # the stated lower bound holds
    y = torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)
    off = ~torch.eye(n, dtype=torch.bool)
    cref = torch.logsumexp(-t * (2 - 2 * _sim64(xn, y)[off]).clamp(min=0), 0).item() - math.log(off.sum().item())
    assert cross_uniformity(x, y, t=t, block=block) == pytest.approx(cref, abs=tol)

class _Axes(torch.nn.Module):
    "A stand-in text tower: the prompt for class k embeds to a fixed integer vector (classes may coincide)."
    logit_scale = torch.tensor(0.0)
    def __init__(self, w): super().__init__(); self.w = w
    def encode_text(self, toks): return self.w[toks]

@FAST
@given(st.integers(2, 5), st.integers(1, 12), st.integers(0, 2**31 - 1))
def test_zero_shot_bruteforce(c, n, seed):
    "Top-1/top-k accuracy with pessimistic ties (a class must beat every other class strictly) against a per-row count."
    g = torch.Generator().manual_seed(seed)
    w = torch.randint(-1, 2, (c, 3), generator=g).float(); w[(w == 0).all(1)] = 1.0       # duplicate classes are likely
    x = torch.randint(-1, 2, (n, 3), generator=g).float(); x[(x == 0).all(1)] = 1.0
    y = torch.randint(0, c, (n,), generator=g)
    tok = lambda texts: torch.tensor([int(t.split()[-1]) for t in texts])
    r = zero_shot(_Axes(w), tok, x, [str(k) for k in range(c)], templates=["class {}"], labels=y)
    s = _sim64(torch.nn.functional.normalize(x, dim=1), torch.nn.functional.normalize(w, dim=1)).numpy()
    rank = np.array([(s[i] >= s[i, y[i]] - TIE).sum() for i in range(n)])
    assert r.top1 == pytest.approx(float(np.mean(rank == 1)), abs=1e-6)
    assert r.top5 == pytest.approx(float(np.mean(rank <= min(5, c))), abs=1e-6)
    assert int(r.confusion.trace()) == int((rank == 1).sum())

@FAST
@given(st.integers(1, 8), st.integers(2, 40), st.integers(1, 6), st.integers(1, 12), st.sampled_from([64, 256, 2048, 2**20]), st.integers(0, 2**31 - 1))
def test_topk_ties_in_index_order_whatever_the_blocks(n_q, n_g, n_distinct, k, block_bytes, seed):
    """Exact duplicates straddling the top-k boundary: every engine returns the documented order (score, then the lower
    index first), so that N_k and hubness do not depend on the block size. Reference: a stable float64 sort."""
    from xmodal_lab.hubness import top_k_indices
    g_ = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.normalize(torch.randint(-2, 3, (n_distinct, 4), generator=g_).float() + 0.01, dim=1)
    gal = base[torch.randint(0, n_distinct, (n_g,), generator=g_)]
    q = torch.nn.functional.normalize(torch.randint(-2, 3, (n_q, 4), generator=g_).float() + 0.01, dim=1)
    k = min(k, n_g)
    # correctly rounded float64 scores (fsum of products, each exact for float32 inputs): identical rows score identically,
    # which a BLAS product does not promise (seen: 9 identical rows, the 9th 1 ulp apart, summed by another kernel)
    q64, g64 = q.double().numpy(), gal.double().numpy()
    s = np.array([[math.fsum(q64[i] * g64[j]) for j in range(n_g)] for i in range(n_q)])
    ref = torch.tensor(np.stack([np.lexsort((np.arange(n_g), -row))[:k] for row in s]))
    got = top_k_indices(q, gal, k, block_bytes=block_bytes)
    # identical gallery rows score identically in float32 too; distinct rows differ far beyond float32 rounding here
    assert torch.equal(got, ref), (got, ref)
    assert torch.equal(rank_queries(q, gal, torch.zeros(n_q, dtype=torch.long), torch.zeros(n_g, dtype=torch.long), topk=k, block_bytes=block_bytes)["topk"], ref)
