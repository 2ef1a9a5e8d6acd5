"OTI/OVI on a real architecture (random-init open_clip ViT-B-32): the spliced paths are exact, and optimisation works."
import pytest, torch
from xmodal_lab.models import load_model
from xmodal_lab.inversion import encode_text_with, encode_image_with, placeholder_ids, oti, ovi, causal_cut

@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return load_model("ViT-B-32", pretrained="random")

def test_spliced_text_path_is_exact(vit):
    model, _, tok = vit
    ids, pos = placeholder_ids(tok, "a photo of a {}", 1)
    with torch.no_grad():
        v = model.token_embedding(tok(["dog"])[0][1])[None, None]
        assert torch.equal(encode_text_with(model, ids, pos, v, cut=False), model.encode_text(tok(["a photo of a dog"])))

# the tolerance the docs state for the cut after the end token: float32 rounding, relative to the feature's largest entry
CUT_TOL = 1e-5

def test_cut_after_the_end_token_matches_the_whole_context(vit):
    model, _, tok = vit
    ids, pos = placeholder_ids(tok, "a photo of {}", 1)
    n = causal_cut(model, ids)
    assert n == int(ids.argmax()) + 1 < 10 and len(ids) == 77          # about 6 of the 77 positions
    torch.manual_seed(1)
    v = 0.02 * torch.randn(16, 1, model.token_embedding.weight.shape[1])
    with torch.no_grad():
        full, cut = encode_text_with(model, ids, pos, v, cut=False), encode_text_with(model, ids, pos, v)
        noisy = ids.clone(); noisy[n:] = torch.randint(1, 40_000, (77 - n,))   # the premise: what follows the end token never reaches the feature
        assert torch.equal(encode_text_with(model, noisy, pos, v, cut=False), full)
    assert (cut - full).abs().max() <= CUT_TOL * full.abs().max()
    # through 20 AdamW steps the two paths stay together
    x = torch.nn.functional.normalize(torch.randn(4, 512), dim=1)
    a = oti(model, tok, x, steps=20, progress=False)
    b = oti(model, tok, x, steps=20, progress=False, cut=False)
    assert (a.features - b.features).abs().max() <= 1e-4 and (a.cosine - b.cosine).abs().max() <= 1e-5

def test_no_cut_where_it_would_not_be_exact(vit):
    model, _, tok = vit
    ids, pos = placeholder_ids(tok, "a photo of {}", 1)
    v = 0.02 * torch.randn(2, 1, model.token_embedding.weight.shape[1])
    for attr, value in [("text_pool_type", "last"), ("attn_mask", torch.zeros(77, 77))]:
        keep = getattr(model, attr); setattr(model, attr, value)
        try:
            assert causal_cut(model, ids) is None
            with torch.no_grad(): assert torch.equal(encode_text_with(model, ids, pos, v), encode_text_with(model, ids, pos, v, cut=False))
        finally: setattr(model, attr, keep)

def test_visual_token_path_is_exact(vit):
    model, _, _ = vit
    img = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        patches = model.visual.conv1(img).flatten(2).transpose(1, 2)
        assert torch.equal(encode_image_with(model, patches), model.encode_image(img))

def test_inversions_raise_the_cosine_and_are_seeded(vit):
    model, _, tok = vit
    x = torch.nn.functional.normalize(torch.randn(3, 512), dim=1)
    a, b = oti(model, tok, x, steps=4, progress=False), oti(model, tok, x, steps=4, progress=False)
    assert torch.equal(a.features, b.features) and a.trajectory.shape == (4, 3)
    r = ovi(model, x, steps=6, progress=False, n_tokens=2)
    assert r.tokens.shape == (3, 2, 768) and r.trajectory[-1].mean() > r.trajectory[0].mean()
    assert all(p.requires_grad for p in model.parameters())       # the model is left as it was
