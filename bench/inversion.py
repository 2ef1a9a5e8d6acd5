"""OTI speed on a random-init open_clip ViT-B-32 (the real architecture), CPU.

1. Batching: OTI steps at batch 32 against a loop that inverts the same 32 images one at a time (same settings),
   as throughput in image-steps per second (goal >= 8x).
2. Overhead: one OTI step at batch 32 on the whole context against one forward and backward pass of the model's own
   text encoder on a batch of 32 real captions of the same length (goal <= 1.2x).
3. The cut after the end token (causal mask, end-token pooling): OTI steps on the tokens up to the end token against
   the whole 77-token context, same images and settings, as a speed ratio, with the largest difference of the results.
Usage: python bench/inversion.py [--steps 3] [--batch 32]
"""
import argparse, time
import torch
from xmodal_lab.models import load_model
from xmodal_lab.inversion import oti, placeholder_ids, causal_cut

T = "a photo of a {}"      # the placeholder sits at token 5, where fwd_bwd puts its real word

def main():
    ap = argparse.ArgumentParser(); ap.add_argument("--steps", type=int, default=3); ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    torch.manual_seed(0)
    model, _, tok = load_model("ViT-B-32", pretrained="random")
    x = torch.nn.functional.normalize(torch.randn(a.batch, 512), dim=1)
    print(f"ViT-B-32 (random init), {torch.get_num_threads()} threads, batch {a.batch}, {a.steps} steps per measurement")
    oti(model, tok, x[:2], steps=1, progress=False)                                                # warm-up
    t = time.perf_counter(); oti(model, tok, x, steps=a.steps, batch_size=a.batch, template=T, progress=False, cut=False); tb = time.perf_counter() - t
    t = time.perf_counter(); oti(model, tok, x, steps=a.steps, batch_size=1, template=T, progress=False, cut=False); t1 = time.perf_counter() - t
    print(f"batched: {a.batch * a.steps / tb:.2f} image-steps/s; one at a time: {a.batch * a.steps / t1:.2f} image-steps/s")
    print(f"RATIO batching throughput gain = {t1 / tb:.2f}x  (goal >= 8)")
    # one forward+backward of the text encoder on real captions, parameters trainable as in fine-tuning
    ids, _ = placeholder_ids(tok, T, 1)
    toks = ids.expand(a.batch, -1).clone(); toks[:, 5] = tok(["dog"])[0][1]
    for p in model.parameters(): p.requires_grad_(False)
    emb_in = model.token_embedding(toks).detach().requires_grad_(True)
    def fwd_bwd():
        h = emb_in + model.positional_embedding
        h = model.ln_final(model.transformer(h, attn_mask=model.attn_mask))
        f = h[torch.arange(a.batch), toks.argmax(-1)] @ model.text_projection
        (1 - torch.nn.functional.cosine_similarity(f, x)).sum().backward()
    fwd_bwd()
    t = time.perf_counter()
    for _ in range(a.steps): fwd_bwd()
    tf = (time.perf_counter() - t) / a.steps
    print(f"one OTI step at batch {a.batch}: {tb / a.steps:.3f} s; text encoder forward+backward (gradient to the input embeddings): {tf:.3f} s")
    print(f"RATIO OTI step / text-encoder forward+backward = {tb / a.steps / tf:.3f}  (goal <= 1.2)")
    # the cut: both paths timed back to back, twice, the better of each kept
    ids, _ = placeholder_ids(tok, "a photo of {}", 1)
    run = lambda cut: oti(model, tok, x, steps=a.steps, batch_size=a.batch, progress=False, cut=cut)
    times, res = {True: [], False: []}, {}
    for _ in range(2):
        for cut in (False, True):
            t = time.perf_counter(); res[cut] = run(cut); times[cut].append(time.perf_counter() - t)
    tc, tw = min(times[True]), min(times[False])
    diff = (res[True].features - res[False].features).abs().max().item()
    print(f"'a photo of {{}}' uses {causal_cut(model, ids)} of {len(ids)} positions; OTI step at batch {a.batch}: "
          f"whole context {tw / a.steps:.3f} s, cut {tc / a.steps:.3f} s; largest feature difference after {a.steps} steps {diff:.1e}")
    print(f"RATIO OTI speed-up from the cut after the end token = {tw / tc:.2f}x")

if __name__ == "__main__": main()
