"""The second hardening round (issue 23): nothing silent, nothing lost. One test (or more) per numbered finding of the new
user's sweep; each failed on the main before the fix."""
import contextlib, json, math, os, subprocess, sys, textwrap, warnings
from pathlib import Path
import numpy as np
import pytest
import torch
from PIL import Image

CLI = str(Path(sys.executable).parent / "xmodal-lab")

def _cli(args, cwd, env=None, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)

@pytest.fixture
def files(tmp_path):
    "Six images (one of them corrupt) and a helper that writes a captions CSV beside them."
    (tmp_path / "img").mkdir()
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200)]
    for i, c in enumerate(colours): Image.new("RGB", (32, 32), c).save(tmp_path / "img" / f"{i}.png")
    (tmp_path / "img" / "corrupt.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    def csv(name, rows, header="filepath,caption", encoding="utf-8"):
        p = tmp_path / name
        p.write_bytes((header + "\n" + "".join(r + "\n" for r in rows)).encode(encoding))
        return p
    return tmp_path, csv

@pytest.fixture(scope="module")
def tiny():
    from xmodal_lab.models import load_model
    return load_model()

ROWS = [f"img/{i}.png,a {c} square" for i, c in enumerate(["red", "green", "blue", "yellow", "cyan"])]

# 1. the cache key holds on_error: a 'raise' call never gets what a 'skip' call cached
def test_cache_does_not_hide_a_corrupt_image(files, tiny):
    from xmodal_lab.data import csv_captions, ImageError
    from xmodal_lab.embed import embed
    root, csv = files
    p = csv("corrupt.csv", ROWS + ["img/corrupt.jpg,a broken file"])
    with pytest.warns(UserWarning, match="corrupt.jpg"):
        e = embed(tiny[0], csv_captions(p, on_error="skip"), progress=False, verbose=False)
    assert e.n_images == 5 and e.meta["skipped_images"] == 1 and e.meta["skipped"][0].endswith("corrupt.jpg")
    with pytest.raises(ImageError, match="corrupt.jpg"): embed(tiny[0], csv_captions(p), progress=False, verbose=False)
    # and through the command line, with the same cache
    env = {"XMODAL_CACHE": os.environ["XMODAL_CACHE"]}
    ok = _cli(["embed", "--data", f"csv:{p}", "--out", "a.safetensors", "--on-error", "skip", "--quiet"], root, env)
    assert ok.returncode == 0, ok.stderr
    bad = _cli(["embed", "--data", f"csv:{p}", "--out", "b.safetensors", "--quiet"], root, env)
    assert bad.returncode == 2 and "corrupt.jpg" in bad.stderr and not (root / "b.safetensors").exists()

def test_cache_hit_replays_the_skip_warning(files, tiny):
    from xmodal_lab.data import csv_captions
    from xmodal_lab.embed import embed
    root, csv = files
    p = csv("corrupt.csv", ROWS + ["img/corrupt.jpg,a broken file"])
    with pytest.warns(UserWarning): embed(tiny[0], csv_captions(p, on_error="skip"), progress=False, verbose=False)
    with pytest.warns(UserWarning, match="skipped 1 missing or unreadable"):
        e = embed(tiny[0], csv_captions(p, on_error="skip"), progress=False, verbose=False)
    assert "cache" in e.meta and e.meta["skipped_images"] == 1

# 2. random weights are a function of the seed
def test_random_weights_are_seeded():
    from xmodal_lab.models import load_model
    from xmodal_lab.models import weights_fingerprint
    a, b, c = (load_model("xmodal-tiny", "random", seed=s)[0] for s in (0, 0, 1))
    assert weights_fingerprint(a) == weights_fingerprint(b) != weights_fingerprint(c)
    assert a.xmodal["seed"] == 0 and "seed 0" in a.xmodal["weights"]

def test_torchrun_random_weights_shards(tmp_path):
    "Both ranks build the same random weights from the default seed: the sharded run succeeds and every shard is of one run."
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", CLI, "embed", "--pretrained", "random",
           "--data", "shapes:test:40", "--out", "shards", "--shard-size", "16", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    ix = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert len(ix["shards"]) == 3 and "seed 0" in ix["meta"]["weights"]

DIFFERENT = textwrap.dedent('''
    import sys, torch, torch.distributed as dist
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    from xmodal_lab.scale import embed_shards
    dist.init_process_group("gloo")
    model = load_model("xmodal-tiny", "random", seed=dist.get_rank())[0]      # the mistake: a seed per rank
    try: embed_shards(model, shapes("test", n=32), {out!r}, shard_size=16, progress=False)
    except ValueError as ex: print(f"rank {{dist.get_rank()}} refused: {{ex}}")
    dist.destroy_process_group()
''')

def test_ranks_with_other_weights_write_nothing(tmp_path):
    script = tmp_path / "w.py"; script.write_text(DIFFERENT.format(out=str(tmp_path / "shards")))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.stdout.count("refused") == 2 and "other weights than rank 0" in r.stdout, r.stdout + r.stderr[-2000:]
    assert not list((tmp_path / "shards").glob("shard-*.safetensors"))

# 3. an unquoted comma
def test_csv_row_with_an_unquoted_comma(files):
    from xmodal_lab.data import csv_captions
    root, csv = files
    p = csv("comma.csv", ROWS[:4] + ["img/4.png,a red circle, on the left"])
    with pytest.raises(ValueError, match=r"line 6.*quote"): csv_captions(p)
    with pytest.warns(UserWarning, match="1 rows have more fields"): ds = csv_captions(p, on_error="skip")
    assert ds.n_images == 4 and "a red circle" not in ds.captions
    q = csv("quoted.csv", ROWS[:4] + ['img/4.png,"a red circle, on the left"'])
    assert csv_captions(q).captions[-1] == "a red circle, on the left"

# 4. truncation at the text context
def test_truncation_is_said_and_recorded(files, tiny):
    from xmodal_lab.data import csv_captions
    from xmodal_lab.embed import embed, truncated_captions
    root, csv = files
    p = csv("long.csv", ROWS[:4] + ["img/4.png," + " ".join(["word"] * 5000)])
    with pytest.warns(UserWarning, match="1 captions of .* cut to 32 tokens"):
        e = embed(tiny[0], csv_captions(p), progress=False, verbose=False)
    assert e.meta["truncated_captions"] == 1 and e.meta["context_length"] == 32
    tok = tiny[2]
    assert truncated_captions(tok, ["a " * 30, "a " * 29, "a " * 31]) == (1, 32)     # 30 words + start + end = 32 fits exactly
    assert len(tok.encode("a " * 30)) + 2 == 32

# 5. empty captions
def test_empty_captions(files, tiny):
    from xmodal_lab.data import csv_captions
    from xmodal_lab.embed import embed
    root, csv = files
    p = csv("empty.csv", ROWS[:3] + ["img/3.png,", "img/4.png,   "])
    with pytest.raises(ValueError, match=r"2 empty captions: 3 \(image .*3.png\), 4"): embed(tiny[0], csv_captions(p), progress=False, verbose=False)
    with pytest.warns(UserWarning, match="2 captions of .* are empty"):
        e = embed(tiny[0], csv_captions(p, on_error="skip"), progress=False, verbose=False)
    assert e.meta["empty_captions"] == 2

def test_report_on_empty_captions_leaks_no_numpy_warning(files, tiny):
    from xmodal_lab.data import csv_captions
    from xmodal_lab.embed import embed
    from xmodal_lab.report import report
    root, csv = files
    p = csv("empty.csv", ROWS[:3] + ["img/3.png,", "img/4.png,"])
    with pytest.warns(UserWarning): e = embed(tiny[0], csv_captions(p, on_error="skip"), progress=False, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        report(e, root / "r.html")
    assert (root / "r.html").stat().st_size > 0

# 6. missing files are recorded
def test_missing_file_skips_are_recorded(files, tiny):
    from xmodal_lab.data import csv_captions
    from xmodal_lab.embed import embed
    root, csv = files
    p = csv("missing.csv", ROWS[:4] + ["img/nowhere.png,a lost square"])
    with pytest.warns(UserWarning): e = embed(tiny[0], csv_captions(p, on_error="skip"), progress=False, verbose=False)
    assert e.meta["skipped_images"] == 1 and e.meta["skipped"][0].endswith("nowhere.png")

# 7. exact duplicate rows
def test_duplicate_rows_are_counted(files):
    from xmodal_lab.data import csv_captions
    root, csv = files
    p = csv("dup.csv", ROWS + ROWS[:2])
    with pytest.warns(UserWarning, match="2 \\(image, caption\\) rows repeat"): ds = csv_captions(p)
    assert len(ds.captions) == 7

# 8. outputs are probed before the work, and a failed write keeps the last checkpoint
@pytest.fixture
def read_only(tmp_path):
    "A read-only folder: a read-only tmpfs when root (root writes through permission bits), else a folder without write bits."
    d = tmp_path / "ro"; d.mkdir()
    if os.geteuid() == 0:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)], capture_output=True, text=True)
        if r.returncode: pytest.skip(f"cannot mount a read-only tmpfs here: {r.stderr.strip()}")
        yield d
        subprocess.run(["umount", str(d)])
    else:
        d.chmod(0o500); yield d; d.chmod(0o700)

@pytest.mark.parametrize("args", [
    ["demo", "--report", "{ro}/report.html"],
    ["report", "--out", "{ro}/r.html"],
    ["report", "--out", "r.html", "--json", "{ro}/r.json"],
    ["embed", "--data", "shapes:test:8", "--out", "{ro}/e.safetensors"],
    ["embed", "--data", "shapes:test:8", "--out", "{ro}/shards"],
    ["finetune", "--data", "shapes:train:8", "--out", "{ro}/run", "--batch-size", "4"],
    ["train-tiny", "--out", "{ro}/w.safetensors", "--steps", "1"],
])
def test_read_only_output_fails_first(args, read_only, tmp_path):
    r = _cli([a.format(ro=read_only) for a in args], tmp_path)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip().splitlines()
    assert len(line) == 1 and str(read_only) in line[0] and "cannot write" in line[0], r.stderr
    assert "embeddings:" not in r.stdout and not (tmp_path / "r.html").exists()     # nothing computed, nothing half-written

def test_write_failure_during_training_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    from xmodal_lab import finetune as ft
    from xmodal_lab.models import load_model
    from xmodal_lab.data import shapes
    model = load_model("xmodal-tiny", "random")[0]
    real, calls = ft.save_checkpoint, []
    def failing(out, step, *a, **k):
        calls.append(step)
        if len(calls) == 2: raise OSError(28, "No space left on device", str(out / "step.tmp"))
        return real(out, step, *a, **k)
    monkeypatch.setattr(ft, "save_checkpoint", failing)
    with pytest.raises(OSError, match=r"failed at step 4 .*No space left.*last checkpoint is intact: .*step-0000002.safetensors \(step 2\)"):
        ft.finetune(model, shapes("train", n=8), epochs=2, batch_size=4, out=tmp_path / "run", progress=False, device="cpu")
    ft.load_checkpoint(tmp_path / "run", load_model("xmodal-tiny", "random")[0])       # the kept checkpoint reads back, verified

# 9. numbers are checked first
def test_bad_numbers_are_refused_first(tmp_path, tiny):
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    from xmodal_lab.scale import embed_shards
    ds = shapes("test", n=8)
    for bad in (2.5, 0, -1, True):
        with pytest.raises(ValueError, match="batch_size"): embed(tiny[0], ds, batch_size=bad, progress=False, verbose=False)
    with pytest.raises(ValueError, match="num_workers"): embed(tiny[0], ds, num_workers=-1, progress=False, verbose=False)
    embed(tiny[0], ds, progress=False, verbose=False)                                  # now the cache holds the set
    with pytest.raises(ValueError, match="batch_size"): embed(tiny[0], ds, batch_size=0, progress=False, verbose=False)
    for kw in ({"batch_size": -5}, {"num_workers": -1}, {"shard_size": 0}):
        with pytest.raises(ValueError): embed_shards(tiny[0], ds, tmp_path / "out", progress=False, **kw)
        assert not (tmp_path / "out").exists()
    for flag in (["--batch-size", "0"], ["--batch-size", "-1"], ["--workers", "-1"], ["--batch-size", "2.5"]):
        r = _cli(["embed", "--data", "shapes:test:8", "--out", "shards", *flag], tmp_path)
        assert r.returncode == 2 and "usage: xmodal-lab embed" in r.stderr and not (tmp_path / "shards").exists()

# 10. a missing GPU is named as such
def test_cuda_without_gpu_says_so():
    from xmodal_lab.models import load_model, ModelLoadError
    if torch.cuda.is_available(): pytest.skip("this machine has a GPU")
    with pytest.raises(ModelLoadError) as ex: load_model("xmodal-tiny", device="cuda")
    assert "no CUDA GPU" in str(ex.value) and "download" not in str(ex.value).lower()

def test_errors_are_classified_by_type():
    from xmodal_lab.models import _is_network_error
    assert not _is_network_error(RuntimeError("Download of the kernel failed"))   # the word alone is not the network
    assert _is_network_error(ConnectionError("refused"))
    try:
        try: raise TimeoutError("timed out")
        except TimeoutError as inner: raise RuntimeError("open_clip failed") from inner
    except RuntimeError as outer: assert _is_network_error(outer)

# 11. models whose tokenizer comes from Hugging Face
def test_siglip_offline(tmp_path, request):
    import importlib.util
    from xmodal_lab.models import load_model, ModelLoadError
    if importlib.util.find_spec("transformers") is None:
        with pytest.raises(ModelLoadError, match=r"transformers package: pip install 'xmodal-lab\[hf\]'"): load_model("ViT-B-16-SigLIP", "random")
        return
    with pytest.raises(ModelLoadError, match="tokenizer='/path/to/tok'"): load_model("ViT-B-16-SigLIP", "random")   # offline, no files: fast and named
    from xmodal_lab.data import shapes
    from xmodal_lab.embed import embed
    from xmodal_lab.gap import l2m_gap
    model, _, tok = load_model("ViT-B-16-SigLIP", "random", tokenizer=request.getfixturevalue("hf_tokenizer_dir"))
    e = embed(model, shapes("test", n=4), batch_size=4, progress=False, verbose=False)
    assert e.dim == 768 and e.n_images == 4 and math.isfinite(l2m_gap(e)) and e.meta["context_length"] == 64
    with pytest.raises(ModelLoadError, match="holds no tokenizer"): load_model("ViT-B-16-SigLIP", "random", tokenizer=tmp_path)

# 12. hf-hub names offline: fast, and advice that works
def test_hf_hub_offline_advice_works(tmp_path):
    from safetensors.torch import save_file
    from xmodal_lab.models import load_model, ModelLoadError, CONFIG_DIR
    from xmodal_lab.models import weights_fingerprint
    with pytest.raises(ModelLoadError, match=r"load_model\('local-dir:/path/to/xmodal-tiny-copy'\)") as ex:
        load_model("hf-hub:someone/xmodal-tiny-copy")
    assert "huggingface-cli download someone/xmodal-tiny-copy" in str(ex.value)
    # follow the advice: a folder with the config and the weights, loaded as local-dir:
    cfg = json.loads((CONFIG_DIR / "xmodal-tiny.json").read_text()); cfg.pop("xmodal", None)
    folder = tmp_path / "xmodal-tiny-copy"; folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}))
    ref = load_model("xmodal-tiny", "random", seed=3)[0]
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    m = load_model(f"local-dir:{folder}")[0]
    assert {k: v for k, v in m.state_dict().items()}.keys() == ref.state_dict().keys()
    assert all(torch.equal(m.state_dict()[k], v) for k, v in ref.state_dict().items())

# 13. non-UTF-8 CSV
def test_non_utf8_csv(files):
    from xmodal_lab.data import csv_captions
    root, csv = files
    p = csv("latin.csv", ROWS[:3] + ["img/3.png,un carré rouge"], encoding="latin-1")
    with pytest.raises(ValueError, match=r"latin.csv is not valid utf-8 text: line 5 holds the byte 0xe9 .* encoding='latin-1'"): csv_captions(p)
    assert csv_captions(p, encoding="latin-1").captions[-1] == "un carré rouge"
    r = _cli(["embed", "--data", f"csv:{p}", "--out", "x.safetensors", "--quiet"], root)
    assert r.returncode == 2 and "--encoding latin-1" in r.stderr and "encoding=" not in r.stderr
    r = _cli(["embed", "--data", f"csv:{p}", "--out", "x.safetensors", "--quiet", "--encoding", "latin-1"], root)
    assert r.returncode == 0, r.stderr

# 14. the command line speaks in flags
def test_cli_messages_name_flags(files):
    root, csv = files
    p = csv("missing.csv", ROWS[:4] + ["img/nowhere.png,a lost square"])
    for cmd in (["embed", "--out", "x.safetensors"], ["finetune", "--out", "run", "--batch-size", "2", "--epochs", "1"]):
        r = _cli([*cmd, "--data", f"csv:{p}"], root)
        assert r.returncode == 2 and "--on-error skip" in r.stderr and "on_error=" not in r.stderr, r.stderr
    r = _cli(["finetune", "--data", f"csv:{p}", "--out", "run", "--batch-size", "2", "--epochs", "1", "--steps-per-epoch", "1", "--on-error", "skip", "--quiet"], root)
    assert r.returncode == 0, r.stderr[-2000:]
    from xmodal_lab.cli import cli_words
    assert cli_words("pass pretrained='random' and batch_size ≥ 1") == "pass --pretrained random and --batch-size ≥ 1"

# 15. OVI checks dimensions up front
def test_ovi_checks_the_dimension(tiny):
    from xmodal_lab.inversion import ovi
    with pytest.raises(ValueError, match="dimension 64, but the model's joint space has 128"): ovi(tiny[0], torch.randn(2, 64), steps=1, progress=False)

# 16. a class folder without images
def test_class_folders_without_images(tmp_path):
    from xmodal_lab.data import image_folder
    for c in ("cat", "dog"): (tmp_path / "data" / c).mkdir(parents=True)
    (tmp_path / "data" / "cat" / "notes.txt").write_text("no image")
    with pytest.raises(ValueError, match=r"class folders \(cat, dog\) hold no images") as ex: image_folder(tmp_path / "data")
    assert "column" not in str(ex.value)

# 17. report on an unfinished shard folder
def test_report_on_unfinished_shards(tmp_path):
    r = _cli(["embed", "--data", "shapes:test:20", "--out", "shards", "--shard-size", "10", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "shards" / "index.json").unlink()
    r = _cli(["report", "shards", "--out", "r.html"], tmp_path)
    assert r.returncode == 2 and "index.json" in r.stderr and "clip-retrieval" not in r.stderr, r.stderr

# 18, 19. usage of the subcommand; help that tells the whole grammar; --out extensions
def test_cli_usage_and_help(tmp_path):
    r = _cli(["report", "--no-such-flag"], tmp_path)
    assert r.returncode == 2 and "usage: xmodal-lab report" in r.stderr and "unrecognized arguments: --no-such-flag" in r.stderr
    for cmd in ("embed", "finetune", "report", "demo"):
        h = _cli([cmd, "--help"], tmp_path, {"COLUMNS": "400"}).stdout
        assert "wds:" in h and "--on-error" in h and "--seed" in h and "local-dir:" in h, cmd
    r = _cli(["embed", "--data", "shapes:test:8", "--out", "feats.npy"], tmp_path)
    assert r.returncode == 2 and "'.npy' is neither" in r.stderr and not (tmp_path / "feats.npy").exists()
    r = _cli(["embed", "--data", "shapes:test:8", "--out", "Feats.SafeTensors", "--quiet"], tmp_path)
    assert r.returncode == 0 and (tmp_path / "Feats.SafeTensors").is_file(), r.stderr

# 20. uniformity at a large t on a long tile
def test_uniformity_no_overflow():
    from xmodal_lab.uniformity import uniformity
    x = torch.zeros(6200, 4); x[:, 0] = 1
    assert uniformity(x, t=40, block=6200) == 0.0 and uniformity(x, t=40, block_bytes=2**28) == 0.0

# 21, 22. tiled top-k: k beyond the tile, and ties in index order whatever the blocks
def test_tiled_topk_small_tiles_and_ties():
    from xmodal_lab.hubness import top_k_indices, hubness
    from xmodal_lab.metrics import rank_queries, stable_topk
    g = torch.nn.functional.normalize(torch.randn(7, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    assert torch.equal(top_k_indices(g[:5], g, 3, block_bytes=64), top_k_indices(g[:5], g, 3))
    assert torch.equal(rank_queries(g[:5], g, torch.arange(5), torch.arange(7), topk=3, block_bytes=64)["topk"],
                       rank_queries(g[:5], g, torch.arange(5), torch.arange(7), topk=3)["topk"])
    gen = torch.Generator().manual_seed(1)
    base = torch.nn.functional.normalize(torch.randn(10, 16, generator=gen), dim=1)
    gal = base[torch.randint(0, 10, (3000,), generator=gen)]
    q = torch.nn.functional.normalize(torch.randn(200, 16, generator=gen), dim=1)
    rows = top_k_indices(q, gal, 10)
    for bb in (2**16, 2**12, 512):
        assert torch.equal(top_k_indices(q, gal, 10, block_bytes=bb), rows)
    ties = stable_topk(torch.ones(1, 10), 3)[1]
    assert ties.tolist() == [[0, 1, 2]]
    nk = torch.bincount(rows.flatten(), minlength=3000)
    assert torch.equal(nk, torch.bincount(top_k_indices(q, gal, 10, block_bytes=2**16).flatten(), minlength=3000))

# 23. float64 where float64 is claimed
def test_float64_results():
    from xmodal_lab.core import Embeddings
    from xmodal_lab.gap import gap_vector, l2m_gap, cone_similarity
    from xmodal_lab.hubness import hubness_stats
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(300, 32, generator=gen), dim=1)
    y = torch.nn.functional.normalize(x + 1e-3 * torch.randn(300, 32, generator=gen), dim=1)
    e = Embeddings(x, y, torch.arange(300))
    d64 = x.double().mean(0) - y.double().mean(0)
    assert gap_vector(e).dtype == torch.float64 and abs(l2m_gap(e) - d64.norm().item()) < 1e-12 * max(1, d64.norm().item())
    xd = x.double(); ref = ((xd @ xd.T).sum() - (xd * xd).sum()) / (300 * 299)
    assert abs(cone_similarity(x) - ref.item()) < 1e-13
    occ = hubness_stats(torch.tensor([3, 0, 1] * 33 + [16777217]), 1).top1pct_occupancy
    assert occ == 16777217 / (16777217 + 33 * 4)

def test_compare_gap_statistic_is_float64():
    from xmodal_lab.core import Embeddings
    from xmodal_lab.compare import _gap_stat
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(400, 64, generator=gen), dim=1)
    y = torch.nn.functional.normalize(x + 1e-6 * torch.randn(400, 64, generator=gen), dim=1)
    e = Embeddings(x, y, torch.arange(400))
    W = torch.ones(1, 400)
    ref = (x.double().mean(0) - y.double().mean(0)).norm().item()
    assert abs(_gap_stat(e)(W).item() - ref) < 1e-15

# 24. rank_queries wants unit rows
def test_rank_queries_refuses_non_unit_rows():
    from xmodal_lab.metrics import rank_queries
    q = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    with pytest.raises(ValueError, match="not unit vectors .* norm 1000"): rank_queries(q * 1000, q, torch.arange(5), torch.arange(5))
    with pytest.raises(ValueError, match="gallery are not unit"): rank_queries(q, q * 3, torch.arange(5), torch.arange(5))

# 25. the m²-mix loss keeps float64
def test_m2mix_keeps_float64():
    from xmodal_lab.mixup import M2MixLoss
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.nn.functional.normalize(torch.randn(8, 16, generator=gen, dtype=torch.float64), dim=1) for _ in range(2))
    out = M2MixLoss(m2=1.0)(a, b, torch.tensor(100.0, dtype=torch.float64))
    assert all(v.dtype == torch.float64 for v in out.values())
    logits = 100 * a @ b.T; lab = torch.arange(8)
    clip = (torch.nn.functional.cross_entropy(logits, lab) + torch.nn.functional.cross_entropy(logits.T, lab)) / 2
    assert abs(out["contrastive_loss"].item() - clip.item()) < 1e-12
    half = M2MixLoss(m2=1.0)(a.bfloat16(), b.bfloat16(), torch.tensor(100.0))
    assert all(v.dtype == torch.float32 for v in half.values())

# 26. a report on a small set is still written
def test_report_on_a_small_set(tmp_path):
    r = _cli(["report", "--data", "shapes:test:200", "--out", "r.html", "--json", "r.json", "--quiet"], tmp_path)
    assert r.returncode == 0, r.stderr
    page = (tmp_path / "r.html").read_text()
    assert "No temperature was fitted" in page and "ECE shape" in (tmp_path / "r.json").read_text()

# memory: one budget, read by every streaming engine; a smaller budget gives the same numbers in more blocks
def test_one_memory_budget(monkeypatch):
    import xmodal_lab.core as core
    from xmodal_lab.core import Embeddings
    from xmodal_lab.metrics import retrieval
    from xmodal_lab.hubness import hubness
    from xmodal_lab.uniformity import uniformity
    from xmodal_lab.gap import gap_report, matched_blocks
    gen = torch.Generator().manual_seed(0)
    x = torch.nn.functional.normalize(torch.randn(300, 32, generator=gen), dim=1)
    e = Embeddings(x, torch.nn.functional.normalize(x + 0.5 * torch.randn(300, 32, generator=gen), dim=1), torch.arange(300))
    run = lambda: (retrieval(e).metrics, hubness(e).skewness, uniformity(e.image), gap_report(e, separability_probe=False).stats)
    big = run()
    monkeypatch.setattr(core, "MEMORY_BUDGET", 1 << 16)
    assert len(list(matched_blocks(e))) == 10                   # 64 KiB / (64 · 32 bytes) = 32 rows a block: the budget reaches them
    small = run()
    assert small[0] == big[0] and small[1] == big[1] and abs(small[2] - big[2]) < 1e-8     # float32 tiles of another shape: the same sum, rounded otherwise
    assert all(abs(small[3][k] - big[3][k]) < 1e-9 for k in big[3])
    with pytest.raises(ValueError, match="XMODAL_MEMORY_BUDGET"): core._parse_bytes("a lot")
