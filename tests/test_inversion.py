"OTI/OVI on a real architecture (random-init open_clip ViT-B-32): the spliced paths are exact, and optimisation works."
import pytest, torch
from xmodal_lab.models import load_model
from xmodal_lab.inversion import encode_text_with, encode_image_with, placeholder_ids, oti, ovi

@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    return load_model("ViT-B-32", pretrained="random")

def test_spliced_text_path_is_exact(vit):
    model, _, tok = vit
    ids, pos = placeholder_ids(tok, "a photo of a {}", 1)
    with torch.no_grad():
        v = model.token_embedding(tok(["dog"])[0][1])[None, None]
        assert torch.equal(encode_text_with(model, ids, pos, v), model.encode_text(tok(["a photo of a dog"])))

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
