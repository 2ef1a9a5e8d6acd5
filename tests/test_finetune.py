"""A run killed mid-way (no clean-up) resumes from its last checkpoint and ends bit-identical to an uninterrupted run."""
import json, multiprocessing as mp, os
from pathlib import Path
import pytest
import torch

KW = dict(epochs=2, batch_size=16, steps_per_epoch=3, lr=1e-3, save_every=2, progress=False, seed=3)

def _run(out, crash_at=None, resume=False):
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.finetune import finetune
    from xmodal_lab.mixup import M2MixLoss
    torch.set_num_threads(1)
    model, *_ = load_model()
    def crash(step, entry):
        if step == crash_at: os._exit(17)                            # like a kill: no exception handling, no clean-up
    finetune(model, shapes("train", n=64), loss=M2MixLoss(m2=0.5, vmix=0.2, seed=1), out=out, resume=resume, callback=crash, **KW)
    return model

def test_killed_run_resumes_bit_exactly(tmp_path):
    p = mp.get_context("spawn").Process(target=_run, args=(tmp_path / "a", 5))
    p.start(); p.join(300)
    assert p.exitcode == 17
    assert json.loads((tmp_path / "a" / "latest.json").read_text())["step"] == 4       # checkpoints at 2 and 4 survived
    assert not list((tmp_path / "a").glob("*.tmp"))
    resumed, straight = _run(tmp_path / "a", resume=True), _run(tmp_path / "b")
    for (k, a), b in zip(resumed.state_dict().items(), straight.state_dict().values()): assert torch.equal(a, b), k
    log = lambda d: (tmp_path / d / "log.jsonl").read_text().splitlines()
    assert log("a") == log("b") and len(log("a")) == 6

def test_resume_without_checkpoint_is_refused(tmp_path):
    from xmodal_lab.models import CheckpointError
    with pytest.raises(CheckpointError, match="nothing to resume"): _run(tmp_path / "empty", resume=True)
