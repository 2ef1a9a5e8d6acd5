import os, subprocess, sys
import pytest, torch
from xmodal_lab.models import load_model, save_weights, CheckpointError, TINY

def test_local_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(1)
    m, _, _ = load_model(TINY, pretrained="random")
    tokens = load_model()[2](["a small red circle"])
    for name, save in [("ck.safetensors", lambda p: save_weights(m, p, TINY)), ("ck.pt", lambda p: torch.save(m.state_dict(), p)),
                       ("ck_wrapped.pt", lambda p: torch.save({"state_dict": {"module." + k: v for k, v in m.state_dict().items()}}, p))]:
        save(tmp_path / name)
        m2, _, _ = load_model(TINY, pretrained=str(tmp_path / name))
        for k, v in m.state_dict().items(): assert torch.equal(v, m2.state_dict()[k]), k
        with torch.no_grad(): assert torch.equal(m.encode_text(tokens), m2.encode_text(tokens))
        assert m2.xmodal["pretrained"] == str(tmp_path / name)

def test_wrong_architecture_is_refused(tmp_path):
    vit, _, _ = load_model("ViT-B-32", pretrained="random")
    save_weights(vit, tmp_path / "vit.safetensors", "ViT-B-32")
    with pytest.raises(CheckpointError, match="saved from 'ViT-B-32', not 'xmodal-tiny'"):
        load_model(TINY, pretrained=tmp_path / "vit.safetensors")
    torch.save(vit.state_dict(), tmp_path / "vit.pt")
    with pytest.raises(CheckpointError, match="does not fit xmodal-tiny"):
        load_model(TINY, pretrained=tmp_path / "vit.pt")

def test_pickled_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self): return (os.system, ("echo pwned",))
    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        load_model(TINY, pretrained=tmp_path / "evil.pt")

def test_truncated_checkpoint(tmp_path):
    m, _, _ = load_model(TINY, pretrained="random")
    p = save_weights(m, tmp_path / "t.safetensors", TINY)
    p.write_bytes(p.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(TINY, pretrained=p)

def test_offline_download_error_says_what_to_do():
    code = ("from xmodal_lab.models import load_model\n"
            "try: load_model('ViT-B-32', pretrained='openai')\n"
            "except Exception as ex: print(type(ex).__name__, ex)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "ModelLoadError" in r.stdout and "could not download" in r.stdout and "pretrained='/path/to/" in r.stdout, r.stdout + r.stderr

def test_unknown_tag_lists_the_problem():
    with pytest.raises(Exception, match="not a known tag"):
        load_model("ViT-B-32", pretrained="no_such_tag")
