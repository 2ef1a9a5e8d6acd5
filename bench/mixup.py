"""Training-step time with m²-mix against plain open_clip ClipLoss, on the same batch, CPU.

Each loss runs a whole step (forward of both towers, loss, backward, AdamW update); the losses take turns, in an order
rotated every repetition, so drift hits all of them; the median step time is compared. The loss alone (forward and
backward on leaf features of the same shape) is timed too: it is the part m2-mix adds, free of the towers' noise. Two settings from the issue:
the shipped xmodal-tiny at batch 128, and a random-init open_clip ViT-B-32 (the real architecture) at batch 32.
Goal: m²-mix step / ClipLoss step <= 1.05 (the mixing is O(B^2 D); the towers cost far more).
Usage: python bench/mixup.py [--reps 5] [--skip-vit]
"""
import argparse, contextlib, statistics, time
import torch
from open_clip import ClipLoss
from xmodal_lab.models import load_model
from xmodal_lab.data import shapes
from xmodal_lab.finetune import epoch_order, load_batch, select_trainable, train_step
from xmodal_lab.mixup import M2MixLoss

def measure(name, pretrained, batch, reps):
    torch.manual_seed(0)
    model, preprocess, tok = load_model(name, pretrained)
    select_trainable(model, "all"); model.train()
    ds = shapes("train", n=batch)
    images, tokens = load_batch(model, ds, *epoch_order(ds, 0, 0, batch)[0], preprocess, tok)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-7)
    losses = {"ClipLoss": ClipLoss(), "m2-mix": M2MixLoss(m2=0.1), "m2 + V + L + VL": M2MixLoss(m2=0.1, vmix=0.1, lmix=0.1, vlmix=0.1)}
    def step(loss):
        opt.zero_grad(set_to_none=True)
        t = time.perf_counter(); train_step(model, loss, images, tokens, contextlib.nullcontext()); opt.step()
        return time.perf_counter() - t
    for l in losses.values(): step(l)                                   # warm-up
    times = {k: [] for k in losses}
    names = list(losses)
    for r in range(reps):                                               # rotate the order: no loss always runs first
        for k in names[r % len(names):] + names[:r % len(names)]: times[k].append(step(losses[k]))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{name} ({pretrained or 'shipped'} weights), batch {batch}, {torch.get_num_threads()} threads, median of {reps}: "
          + ", ".join(f"{k} {v:.3f} s" for k, v in med.items()))
    for k in list(losses)[1:]:
        print(f"RATIO {name} b{batch}: {k} step / ClipLoss step = {med[k] / med['ClipLoss']:.3f}  (goal <= 1.05)")
    # the loss alone (forward + backward on leaf features of the same shape): the part m2-mix adds, free of tower noise
    with torch.no_grad(): f = model(images, tokens)
    x, y, s = (f["image_features"], f["text_features"], f["logit_scale"]) if isinstance(f, dict) else f[:3]
    def loss_only(loss, n=50):
        t = time.perf_counter()
        for _ in range(n):
            xx, yy = x.clone().requires_grad_(True), y.clone().requires_grad_(True)
            sum(loss(xx, yy, s, output_dict=True).values()).backward()
        return (time.perf_counter() - t) / n
    lo = {k: loss_only(l) for k, l in losses.items()}
    print("  loss alone (forward + backward): " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in lo.items()))
    for k in list(losses)[1:]:
        print(f"RATIO {name} b{batch}: (ClipLoss step + extra loss time of {k}) / ClipLoss step = {(med['ClipLoss'] + lo[k] - lo['ClipLoss']) / med['ClipLoss']:.4f}")

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--reps", type=int, default=5); ap.add_argument("--skip-vit", action="store_true")
    a = ap.parse_args()
    measure("xmodal-tiny", None, 128, a.reps)
    if not a.skip_vit: measure("ViT-B-32", "random", 32, max(3, a.reps - 2))

if __name__ == "__main__": main()
