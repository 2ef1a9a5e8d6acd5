"""DDP under torchrun: 2 CPU processes (gloo) give the loss and gradients of one process on the same global batch."""
import contextlib, os, subprocess, sys, textwrap
from pathlib import Path
import pytest
import torch

BATCH = 8

def _model_and_batch():
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.finetune import select_trainable, epoch_order, load_batch
    torch.manual_seed(0)
    model, preprocess, tokenizer = load_model("xmodal-tiny", "random")
    select_trainable(model, "all", learn_temperature=True)
    ds = shapes("train", n=BATCH)
    imgs, caps = epoch_order(ds, 0, 0, BATCH)[0]
    return model, load_batch(model, ds, imgs, caps, preprocess, tokenizer)

def _loss(rank=0, world=1, seed=0):
    from xmodal_lab.mixup import M2MixLoss
    return M2MixLoss(m2=1.0, vmix=0.5, lmix=0.5, vlmix=0.5, seed=seed, rank=rank, world_size=world, local_loss=world > 1, gather_with_grad=world > 1)

WORKER = textwrap.dedent('''
    import contextlib, os, sys, torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    sys.path.insert(0, {tests!r})
    from test_ddp import _model_and_batch, _loss, BATCH
    from xmodal_lab.finetune import train_step
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model, (images, tokens) = _model_and_batch()
    lo, hi = rank * BATCH // world, (rank + 1) * BATCH // world
    net = DDP(model)
    # each rank seeds its λ generator differently: the loss must take rank 0's draws, or the terms differ from one process
    terms = train_step(net, _loss(rank, world, seed=rank), images[lo:hi], tokens[lo:hi], contextlib.nullcontext())
    vals = torch.stack(list(terms.values())); dist.all_reduce(vals); vals /= world
    if rank == 0:
        torch.save({{"terms": dict(zip(terms, vals)), "grads": {{n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}}}}, {out!r})
    # Shut down in order: every rank past its last collective, the DDP reducer (which holds gloo work objects with
    # tensors) freed, then the group destroyed, all while the interpreter is alive. Gloo threads still holding Python
    # tensors at interpreter teardown abort the process with SIGABRT ("terminate called without an active exception").
    dist.barrier()
    del net, terms
    dist.destroy_process_group()
''')

def _torchrun(args, tmp_path, nproc=2):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r

def test_two_processes_match_one(tmp_path):
    """Loss terms and every gradient (logit scale included) of a 2-process DDP step equal the 1-process step on the whole batch,
    though rank 1 seeds its λ generator differently (λ is broadcast from rank 0)."""
    from xmodal_lab.finetune import train_step
    out = tmp_path / "ddp.pt"
    script = tmp_path / "worker.py"; script.write_text(WORKER.format(tests=str(Path(__file__).parent), out=str(out)))
    _torchrun([str(script)], tmp_path)
    ddp = torch.load(out)
    model, (images, tokens) = _model_and_batch()
    ref = train_step(model, _loss(), images, tokens, contextlib.nullcontext())
    assert set(ddp["terms"]) == set(ref) and len(ref) == 6          # total, CLIP and the four mix terms
    for k, v in ref.items(): torch.testing.assert_close(ddp["terms"][k], v, rtol=1e-5, atol=1e-6, msg=k)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == set(ddp["grads"]) and "logit_scale" in grads
    for n, g in grads.items(): torch.testing.assert_close(ddp["grads"][n], g, rtol=1e-4, atol=1e-6, msg=n)

def test_torchrun_finetune_equals_single_process(tmp_path):
    "The CLI under torchrun (2 processes, global batch 16) ends with the weights of the single-process run."
    from safetensors.torch import load_file
    args = ["finetune", "--data", "shapes:train:48", "--epochs", "1", "--batch-size", "16", "--lr", "1e-3",
            "--m2", "0.1", "--vmix", "0.1", "--quiet", "--precision", "fp32"]
    cli = str(Path(sys.executable).parent / "xmodal-lab")            # the console script, as a user runs it
    _torchrun(["--no-python", cli, *args, "--out", str(tmp_path / "two")], tmp_path)
    r = subprocess.run([cli, *args, "--out", str(tmp_path / "one")], capture_output=True, text=True,
                       env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    two, one = load_file(str(tmp_path / "two" / "final.safetensors")), load_file(str(tmp_path / "one" / "final.safetensors"))
    start = load_file(str(Path(__import__("xmodal_lab").__file__).parent / "weights" / "xmodal-tiny.safetensors"))
    moved = max((one[k].float() - start[k].float()).abs().max().item() for k in one)
    assert moved > 1e-3                                                 # training did something
    for k in one: torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)
