"""What `xmodal-lab reproduce` costs on a real architecture at COCO-5k scale, on this machine's CPU cores.

Open_clip ViT-B-32 with random weights (the timing is the weights' shape, not their values) on a stand-in for the 5,000
COCO val images with five captions each (shapes images, 224 px after preprocessing). Each paper's budget comes from
the same estimators `reproduce` uses to refuse a run before any work (one timed batch, scaled to the work), printed in
minutes and as a ratio to one embedding pass of the data. A second block times the reproductions themselves, end to
end, on xmodal-tiny with the shapes test set, against the same estimators: how well the estimate predicts.
Usage: python bench/reproduce.py [--images 5000] [--captions-per-image 5]
"""
import argparse, os, tempfile, time, warnings
import torch
from xmodal_lab.models import load_model
from xmodal_lab.data import shapes
from xmodal_lab.reproduce import (estimate_seconds, estimate_inversion_seconds, estimate_finetune_seconds, reproduce, M2_RECIPE)

class Stand_in:
    "n images of the shapes world with k captions each: all the estimators read (n_images, captions, image(i))."
    def __init__(self, n, k): self.ds, self.n_images, self.captions = shapes("test", n=n), n, [f"a photo {i}" for i in range(n * k)]
    def image(self, i): return self.ds.image(i)

def budgets(model, tok, data, train, seeds=3):
    "Seconds per paper at the command line's defaults."
    one = estimate_seconds(model, data, 0)
    return one, {"mind-the-gap": estimate_seconds(model, data, seeds),
                 "cross-the-gap": one + estimate_inversion_seconds(model, tok, (300, 150), (150, 1000)),
                 "m2-mix": estimate_finetune_seconds(model, train, M2_RECIPE, 2 * seeds) + (1 + 2 * seeds) * one,
                 "balance-act": one}

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--images", type=int, default=5000); ap.add_argument("--captions-per-image", type=int, default=5)
    a = ap.parse_args()
    warnings.filterwarnings("ignore")
    print(f"{torch.get_num_threads()} threads")
    model, _, tok = load_model("ViT-B-32", pretrained="random")
    data = Stand_in(a.images, a.captions_per_image)
    one, b = budgets(model, tok, data, shapes("train", n=a.images))
    print(f"ViT-B-32 (random weights), {a.images:,} images and {a.images * a.captions_per_image:,} captions: one embedding pass {one / 60:.1f} min")
    for paper, s in b.items(): print(f"  {paper:<14} {s / 60:8.1f} min   RATIO to one embedding pass = {s / one:.1f}x")
    # the estimators against the real thing: one embedding pass of ViT-B-32 on a slice, then whole reproductions on the default model
    from xmodal_lab.embed import embed
    part = shapes("test", n=256, captions_per_image=5)
    est = estimate_seconds(model, part, 0)
    t0 = time.perf_counter(); embed(model, part, cache=False, progress=False, verbose=False); took = time.perf_counter() - t0
    print(f"ViT-B-32, one pass of 256 images and 1,280 captions: estimated {est:6.1f} s, took {took:6.1f} s   RATIO took / estimated = {took / est:.2f}")
    tiny, _, ttok = load_model()
    test, kw = shapes("test"), dict(progress=False, max_minutes=None)
    runs = {"mind-the-gap": (lambda: reproduce("mind-the-gap", tiny, dataset=test, **kw), estimate_seconds(tiny, test, 3)),
            "cross-the-gap": (lambda: reproduce("cross-the-gap", tiny, dataset=test, labels=["shape"], n_queries=(100, 60), inversion_steps=(100, 150), **kw),
                              estimate_seconds(tiny, test, 0) + estimate_inversion_seconds(tiny, ttok, (100, 60), (100, 150)))}
    print("xmodal-tiny on shapes/test, each run with an empty embeddings cache (as the estimate assumes)")
    for paper, (run, est) in runs.items():
        with tempfile.TemporaryDirectory() as d:
            os.environ["XMODAL_CACHE"] = d
            t0 = time.perf_counter(); run(); took = time.perf_counter() - t0
        print(f"  {paper:<14} estimated {est:6.1f} s, took {took:6.1f} s   RATIO took / estimated = {took / est:.2f}")

if __name__ == "__main__": main()
