"""Extraction throughput of `embed` against a plain open_clip loop on the same images, and the cache-hit speedup.

Random-init open_clip ViT-B-32 (the real architecture), 256 shapes images with one caption each, batch 64, CPU.
Each variant runs twice, alternating, and the faster run counts. Usage: python bench/embed.py [--n 256]
"""
import argparse, os, tempfile, time
import torch
from xmodal_lab.data import shapes
from xmodal_lab.embed import embed
from xmodal_lab.models import load_model

def plain_loop(model, preprocess, tokenizer, ds, bs):
    "What one writes by hand with open_clip: preprocess, stack, encode, normalise."
    xs, ys = [], []
    with torch.inference_mode():
        for i in range(0, ds.n_images, bs):
            x = torch.stack([preprocess(ds.image(j)) for j in range(i, min(i + bs, ds.n_images))])
            xs.append(torch.nn.functional.normalize(model.encode_image(x), dim=-1))
        for i in range(0, len(ds.captions), 4 * bs):
            ys.append(torch.nn.functional.normalize(model.encode_text(tokenizer(ds.captions[i:i + 4 * bs])), dim=-1))
    return torch.cat(xs), torch.cat(ys)

def timed(f):
    t = time.perf_counter(); r = f(); return time.perf_counter() - t, r

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--n", type=int, default=256); ap.add_argument("--bs", type=int, default=64)
    a = ap.parse_args()
    torch.manual_seed(0)
    model, preprocess, tokenizer = load_model("ViT-B-32", pretrained="random")
    ds = shapes("test", n=a.n, captions_per_image=1)
    print(f"ViT-B-32 (random init), {a.n} images + {len(ds.captions)} captions, batch {a.bs}, {torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as d:
        plain_loop(model, preprocess, tokenizer, shapes("test", n=8, captions_per_image=1), 8)     # warm-up
        tp, tx = [], []
        for _ in range(2):
            t, (x, y) = timed(lambda: plain_loop(model, preprocess, tokenizer, ds, a.bs)); tp.append(t)
            t, e = timed(lambda: embed(model, ds, batch_size=a.bs, cache=False, progress=False, verbose=False)); tx.append(t)
        assert torch.allclose(e.image, x, atol=1e-5) and torch.allclose(e.text, y, atol=1e-5), "embed and the plain loop disagree"
        t_miss, _ = timed(lambda: embed(model, ds, batch_size=a.bs, cache=True, cache_dir=d, progress=False, verbose=False))
        t_hit, _ = timed(lambda: embed(model, ds, batch_size=a.bs, cache=True, cache_dir=d, progress=False, verbose=False))
        t_bf16, _ = timed(lambda: embed(model, ds, batch_size=a.bs, bf16=True, cache=False, progress=False, verbose=False))
    p, x = min(tp), min(tx)
    print(f"plain open_clip loop      {p:7.2f} s  {a.n / p:6.1f} images/s (images and captions)")
    print(f"embed (no cache)          {x:7.2f} s  {a.n / x:6.1f} images/s")
    print(f"embed, bf16 autocast      {t_bf16:7.2f} s  {a.n / t_bf16:6.1f} images/s")
    print(f"embed, first call + write {t_miss:7.2f} s")
    print(f"embed, cache hit          {t_hit:7.3f} s")
    print(f"RATIO extraction time embed / plain loop = {x / p:.3f}  (goal <= 1.10)")
    print(f"RATIO cache-hit speedup = {t_miss / t_hit:.0f}x  ({t_hit:.3f} s vs {t_miss:.1f} s)")
    print(f"RATIO bf16 speedup = {x / t_bf16:.2f}x")

if __name__ == "__main__": main()
