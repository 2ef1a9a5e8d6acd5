"""The trainer under conditions a CPU run never meets by default: bf16 autocast with the mix terms, GPU device
selection (CUDA mocked), and damaged checkpoints on disk."""
import json, warnings
from pathlib import Path
import pytest
import torch

KW = dict(epochs=1, batch_size=16, steps_per_epoch=3, lr=1e-3, progress=False, seed=0)

def _model():
    from xmodal_lab.models import load_model
    torch.set_num_threads(1)
    return load_model()[0]

def _finetune(model, **kw):
    from xmodal_lab.data import shapes
    from xmodal_lab.finetune import finetune
    from xmodal_lab.mixup import M2MixLoss
    return finetune(model, shapes("train", n=64), loss=M2MixLoss(m2=0.1, vmix=0.1, lmix=0.1, vlmix=0.1, seed=1), **{**KW, **kw})

def test_bf16_autocast_with_mix_terms(tmp_path):
    "`precision='bf16'` on the CPU with every mix term on: the logits used to become bf16 beside a float32 positive (index_put error)."
    run = _finetune(_model(), precision="bf16", device="cpu")
    assert run.settings["precision"] == "bf16" and len(run.steps) == 3
    for e in run.steps: assert all(torch.isfinite(torch.tensor(v)) for k, v in e.items() if k.endswith("loss"))

def test_cli_bf16_m2(tmp_path):
    "The reproduction the issue gave: `--precision bf16 --device cpu --m2 0.1`."
    from xmodal_lab.cli import main
    main(["finetune", "--data", "shapes:train:32", "--epochs", "1", "--batch-size", "16", "--precision", "bf16", "--device", "cpu",
          "--m2", "0.1", "--beta-m2", "0.2", "--quiet", "--out", str(tmp_path / "run")])
    assert (tmp_path / "run" / "final.safetensors").is_file()

@pytest.fixture
def fake_cuda(monkeypatch):
    "CUDA with `n` GPUs, as far as `_device` can tell; records set_device calls."
    calls = []
    def setup(n, local=None, world=None):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "set_device", lambda i: calls.append(i))
        for k, v in (("LOCAL_RANK", local), ("WORLD_SIZE", world)):
            if v is None: monkeypatch.delenv(k, raising=False)
            else: monkeypatch.setenv(k, str(v))
        return calls
    return setup

@pytest.mark.parametrize("device,n,local,world,expect", [
    ("auto", 1, None, None, "cuda:0"),        # one GPU, no torchrun: used to call set_device(torch.device("cuda")), which needs an index
    ("cuda", 1, None, None, "cuda:0"),
    ("cuda", 2, 1, 2, "cuda:1"),              # torchrun: each rank its LOCAL_RANK's GPU
    ("auto", 4, 3, 4, "cuda:3"),
    ("cuda", 1, 1, 2, "cuda:0"),              # one visible GPU per process (CUDA_VISIBLE_DEVICES per rank)
    ("cuda:1", 2, None, None, "cuda:1"),
    ("cpu", 2, 1, 2, "cpu"),
])
def test_device_selection(fake_cuda, device, n, local, world, expect):
    from xmodal_lab.scale import _device
    calls = fake_cuda(n, local, world)
    assert _device(device) == expect
    assert calls == ([] if expect == "cpu" else [int(expect[5:])])

def test_device_refusals(fake_cuda, monkeypatch):
    from xmodal_lab.scale import _device
    fake_cuda(2, 1, 2)
    with pytest.raises(ValueError, match="under torchrun would put rank LOCAL_RANK=1 on GPU 0"): _device("cuda:0")
    fake_cuda(2)
    with pytest.raises(ValueError, match="GPU 3 does not exist: this process sees 2"): _device("cuda:3")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"): _device("cuda")

def _two_checkpoints(out):
    "A run that leaves checkpoints at steps 2 and 3; returns the model state at step 2 and at step 3."
    from xmodal_lab.finetune import load_checkpoint
    _finetune(_model(), out=out, save_every=2, device="cpu", precision="fp32")
    assert sorted(p.name for p in out.glob("step-*.safetensors")) == ["step-0000002.safetensors", "step-0000003.safetensors"]
    from safetensors.torch import load_file
    return load_file(str(out / "step-0000002.safetensors")), load_file(str(out / "step-0000003.safetensors"))

def _equal(model, sd): return all(torch.equal(v, sd[k]) for k, v in model.state_dict().items())

def test_checkpoint_fallbacks(tmp_path):
    from xmodal_lab.finetune import load_checkpoint
    from xmodal_lab.models import CheckpointError
    out = tmp_path / "run"
    at2, at3 = _two_checkpoints(out)
    m = _model()
    assert load_checkpoint(out, m)["step"] == 3 and _equal(m, at3)                     # intact: the newest, no warning
    # a stale temporary file from an interrupted write is removed, with a word
    (out / ".step-0000004.safetensors.abc123.tmp").write_bytes(b"partial")
    with pytest.warns(UserWarning, match="removed 1 temporary file"): load_checkpoint(out, _model())
    assert not list(out.glob(".*.tmp"))
    # truncated newest weights: the older verified checkpoint is used, and the warning names the damaged file
    w3 = out / "step-0000003.safetensors"; good3 = w3.read_bytes(); w3.write_bytes(good3[:len(good3) // 2])
    m = _model()
    with pytest.warns(UserWarning, match=r"step 2 .*step-0000003.safetensors are missing or do not match"):
        assert load_checkpoint(out, m)["step"] == 2
    assert _equal(m, at2)
    # a bit flip that keeps the file readable is caught by the recorded hash
    flipped = bytearray(good3); flipped[-5] ^= 1; w3.write_bytes(bytes(flipped))
    with pytest.warns(UserWarning, match="do not match their recorded hash"): assert load_checkpoint(out, _model())["step"] == 2
    w3.write_bytes(good3)
    # a damaged latest.json: the files on disk are still found, newest first
    (out / "latest.json").write_text('{"step": 3, "weights": "step-0000003.safet')
    with pytest.warns(UserWarning, match=r"latest.json is damaged"): assert load_checkpoint(out, _model())["step"] == 3
    # nothing usable: one CheckpointError naming every file that failed
    for p in out.glob("step-*"): p.write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError, match=r"no usable checkpoint in .*step-0000003.state.pt.*step-0000002.state.pt"):
        load_checkpoint(out, _model())

def test_resume_after_damage_continues_from_older(tmp_path):
    "finetune(resume=True) with the newest weights truncated resumes from the older checkpoint and finishes the run."
    out = tmp_path / "run"
    _two_checkpoints(out)
    w3 = out / "step-0000003.safetensors"; w3.write_bytes(w3.read_bytes()[:100])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        run = _finetune(_model(), out=out, save_every=2, device="cpu", precision="fp32", resume=True)
    assert any("newest verified checkpoint, step 2" in str(x.message) for x in w)
    assert [e["step"] for e in run.steps] == [1, 2, 3]
    assert json.loads((out / "latest.json").read_text())["step"] == 3
    lines = (out / "log.jsonl").read_text().splitlines()
    assert [json.loads(l)["step"] for l in lines] == [1, 2, 3]        # the log holds each step once
