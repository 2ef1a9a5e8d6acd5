"""'Any open_clip model', tested: random-init architectures that build offline, through load_model → embed → gap_report →
OTI (2 steps) → OVI (2 steps). Each step works, or refuses with a message that names the unsupported tower.

SigLIP's tokenizer comes from the hub: the matrix loads it from a local folder (`load_model(..., tokenizer=DIR)`, the
`hf_tokenizer_dir` fixture), as a user without network would. The exactness test of its text tower (no causal mask,
last-token pooling) uses a stand-in with no start token: open_clip's BPE tokenizer at SigLIP's context length of 64, ids
folded into its 32,000-entry vocabulary."""
import re
import pytest, torch

ARCHS = ["ViT-B-32", "ViT-B-32-quickgelu", "ViT-S-16", "RN50", "coca_ViT-B-32", "MobileCLIP-S1", "ViT-B-16-SigLIP"]
# what each step must do: "ok", or a regular expression the refusal must match
EXPECT = {
    "RN50": {"ovi": r"OVI needs open_clip's own VisionTransformer image tower; ModifiedResNet is not supported"},
    "MobileCLIP-S1": {"ovi": r"OVI needs open_clip's own VisionTransformer image tower; TimmModel is not supported"},
    "ViT-B-16-SigLIP": {"ovi": r"OVI needs open_clip's own VisionTransformer image tower; TimmModel is not supported"},
}

class _NoStart:
    "A tokenizer without a start token (SigLIP/T5 style), made from open_clip's BPE tokenizer."
    def __init__(self, base, context_length=64, vocab=32000): self.tok, self.context_length, self.vocab = base, context_length, vocab
    def __call__(self, texts):
        ids = self.tok(texts)[:, 1:self.context_length + 1] % self.vocab       # SigLIP's vocabulary has 32,000 entries
        return torch.cat([ids, torch.zeros(len(ids), self.context_length - ids.shape[1], dtype=ids.dtype)], 1)

def _load(arch, monkeypatch, tokenizer_dir=None):
    import open_clip
    from xmodal_lab.models import load_model
    if "SigLIP" in arch and tokenizer_dir is not None: return load_model(arch, "random", tokenizer=tokenizer_dir)
    if "SigLIP" in arch:
        base = open_clip.get_tokenizer("ViT-B-32")
        monkeypatch.setenv("XMODAL_SKIP_NETWORK_CHECK", "1")          # the stand-in below replaces the hub tokenizer
        monkeypatch.setattr(open_clip, "get_tokenizer", lambda name, **kw: _NoStart(base))
    return load_model(arch, "random")

def _step(fn):
    try: fn(); return "ok"
    except TypeError as ex: return f"refused: {ex}"

@pytest.mark.parametrize("arch", ARCHS)
def test_architecture(arch, monkeypatch, record_property, request):
    from xmodal_lab.embed import embed
    from xmodal_lab.data import shapes
    from xmodal_lab.gap import gap_report
    from xmodal_lab.inversion import oti, ovi
    torch.manual_seed(0)
    model, _, tok = _load(arch, monkeypatch, request.getfixturevalue("hf_tokenizer_dir") if "SigLIP" in arch else None)
    emb = embed(model, shapes("test", n=2, captions_per_image=1), batch_size=2, cache=False, progress=False, verbose=False)
    assert emb.n_images == 2 and torch.isfinite(emb.image).all() and torch.isfinite(emb.text).all()
    rep = gap_report(emb, separability_probe=False)
    assert 0 <= rep.stats["L2M gap ‖Δ‖"] <= 2
    out = {"oti": _step(lambda: oti(model, tok, emb.image[:1], steps=2, progress=False)),
           "ovi": _step(lambda: ovi(model, emb.text[:1], steps=2, progress=False))}
    record_property("outcome", out)
    for step, got in out.items():
        want = EXPECT.get(arch, {}).get(step, "ok")
        if want == "ok": assert got == "ok", f"{arch} {step}: {got}"
        else: assert re.search(want, got), f"{arch} {step}: expected a refusal matching {want!r}, got {got!r}"

def test_oti_is_exact_on_coca(monkeypatch):
    "CoCa's text tower appends a class token: the spliced path must still reproduce encode_text exactly."
    from xmodal_lab.inversion import placeholder_ids, encode_text_with
    model, _, tok = _load("coca_ViT-B-32", monkeypatch)
    ids, pos = placeholder_ids(tok, "a photo of a {}", 1)
    with torch.no_grad():
        v = model.text.token_embedding(tok(["circle"])[0][1])[None, None]
        ours, ref = encode_text_with(model, ids, pos, v), model.encode_text(tok(["a photo of a circle"]), normalize=False)
    assert (ours - ref).abs().max().item() < 1e-6

def test_oti_is_exact_without_a_start_token(monkeypatch):
    "SigLIP's text tower with a tokenizer that has no start token: the placeholder is found, the path is exact."
    from xmodal_lab.inversion import placeholder_ids, encode_text_with
    model, _, tok = _load("ViT-B-16-SigLIP", monkeypatch)
    ids, pos = placeholder_ids(tok, "a photo of a {}", 1)
    assert pos.tolist() == [4]                                  # a, photo, of, a, * — no start token before them
    with torch.no_grad():
        v = model.text.token_embedding(tok(["circle"])[0][0])[None, None]
        assert (encode_text_with(model, ids, pos, v) - model.encode_text(tok(["a photo of a circle"]))).abs().max().item() < 1e-6
