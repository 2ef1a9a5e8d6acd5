"Figures build offline (no CDN), and UMAP projections are cached by content."
import numpy as np
import pytest, torch
from xmodal_lab.core import Embeddings
from xmodal_lab.gap import projection_figure, similarity_histograms, shift_sweep, umap_2d
from xmodal_lab.uniformity import sphere_figure, plane
from xmodal_lab.viz import XmodalRenderer

def toy(n=300, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g) + 2 * torch.eye(d)[0]
    return Embeddings(x, x + 0.8 * torch.randn(n, d, generator=g) - 2 * torch.eye(d)[0], labels={"c": torch.arange(n) % 3},
                      meta={"model": "toy"})

@pytest.mark.parametrize("make", [lambda e: projection_figure(e), lambda e: projection_figure(e, color_by="c"), similarity_histograms,
                                  lambda e: shift_sweep(e, lams=(-0.5, 0, 0.5), scales=(10.0,)).plot(), sphere_figure,
                                  lambda e: plane({"a": (1.0, -2.0), "b": (0.5, -3.0)})])
def test_figures_render_without_cdn(make):
    fig = make(toy())
    b = XmodalRenderer().to_mimebundle(fig.to_dict())
    assert "Plotly.newPlot" in b["text/html"] and "cdn" not in b["text/html"].lower()
    assert b["application/vnd.plotly.v1+json"]["data"]

def test_projection_samples_large_sets():
    fig = projection_figure(toy(n=400), max_points=200)
    assert "sample of 100 images and 100 captions" in fig.layout.title.text

def test_umap_is_cached_by_content(tmp_path, capsys):
    z = toy(n=120).image
    a = umap_2d(z, cache_dir=tmp_path)
    assert "computed" in capsys.readouterr().out
    b = umap_2d(z, cache_dir=tmp_path)
    assert "cache hit" in capsys.readouterr().out and np.array_equal(a, b)
    (f,) = list((tmp_path / "umap").glob("*.npy")); f.write_bytes(b"broken")
    with pytest.warns(UserWarning, match="unusable"): c = umap_2d(z, cache_dir=tmp_path)
    assert c.shape == (120, 2)
