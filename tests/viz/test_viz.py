"""Drawing functions: shapes, colours where they must be, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from grootvl_core import viz
from grootvl_core.viz.image import as_rgb_uint8, colormap


def test_as_rgb_handles_odd_modes():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert as_rgb_uint8(grey).shape == (3, 4, 3)
    rgba = np.zeros((3, 4, 4), np.uint8)
    assert as_rgb_uint8(rgba).shape == (3, 4, 3)
    sixteen = np.full((2, 2), 65535, np.uint16)
    assert (as_rgb_uint8(sixteen) == 255).all()
    assert (as_rgb_uint8(np.ones((2, 2, 3))) == 255).all()
    with pytest.raises(ValueError, match="image"):
        as_rgb_uint8(np.zeros((2, 2, 5)))


def test_colormap_is_monotone_in_its_range_and_greys_nan():
    c = colormap(np.array([0.0, 0.5, 1.0, np.nan]), "viridis")
    assert c.shape == (4, 3) and tuple(c[3]) == (128, 128, 128)
    assert not np.array_equal(c[0], c[2])
    with pytest.raises(ValueError, match="colormap"):
        colormap(np.zeros(2), "rainbowz")


def test_pixel_tree_follows_image_structure():
    # two flat halves: the l2 MST joins every pixel within a half by zero-weight edges and crosses
    # the border exactly once.
    img = np.zeros((8, 10, 3), np.uint8)
    img[:, 5:] = 200
    t = viz.pixel_tree(img, max_side=10)
    assert t["grid"] == (8, 10) and t["edges"].shape == (79, 2)
    crossing = [(s, d) for s, d in t["edges"].tolist() if (s % 10 < 5) != (d % 10 < 5)]
    assert len(crossing) == 1
    assert (t["weights"] > 0).sum() == 1
    assert t["order"][0] == 0 and sorted(t["order"].tolist()) == list(range(80))


def test_draw_tree_draws_on_the_image():
    img = np.full((40, 40, 3), 255, np.uint8)
    t = viz.pixel_tree(img, max_side=8)
    out = viz.draw_tree(img, t["edges"], t["grid"], size=160)
    assert out.shape == (160, 160, 3) and out.dtype == np.uint8
    plain = viz.draw_tree(img, np.zeros((0, 2), int), (1, 1), size=160)
    assert (out != plain).any()
    w = viz.draw_tree(img, t["edges"], t["grid"], color_by="weight", edge_values=np.arange(63), size=160)
    assert (w != out).any()
    with pytest.raises(ValueError, match="63 edges"):
        viz.draw_tree(img, t["edges"][:-1], t["grid"])
    with pytest.raises(ValueError, match="edge_values"):
        viz.draw_tree(img, t["edges"], t["grid"], color_by="weight")


def test_vertex_depths_of_a_chain():
    edges = np.array([[0, 1], [1, 2], [2, 3]])
    assert viz.vertex_depths(edges, 4, root=0).tolist() == [0, 1, 2, 3]
    assert viz.vertex_depths(edges, 4, root=2).tolist() == [2, 1, 0, 1]


def test_overlay_heatmap_and_mask():
    img = np.zeros((30, 20, 3), np.uint8)
    heat = np.zeros((3, 2))
    heat[0, 0] = 1.0
    out = viz.overlay_heatmap(img, heat, alpha=1.0, size=60, log_scale=False)
    assert out.shape == (60, 40, 3)
    assert not np.array_equal(out[5, 5], out[-5, -5]), "the hot cell differs from a cold one"
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        viz.overlay_heatmap(img, np.zeros(4))
    mask = np.zeros((30, 20), np.int64)
    mask[:10] = 2
    pal = [(0, 0, 0), (255, 0, 0), (0, 255, 0)]
    m = viz.overlay_mask(img, mask, pal, alpha=1.0)
    assert tuple(m[0, 0]) == (0, 255, 0) and tuple(m[-1, -1]) == (0, 0, 0)
    with pytest.raises(ValueError, match="class ids"):
        viz.overlay_mask(img, mask + 5, pal)
    legend = viz.legend_entries(mask, ["bg", "a", "b"], pal)
    assert [name for name, _, _ in legend] == ["bg", "b"] and legend[1][1] == "#00ff00"
    assert abs(sum(f for _, _, f in legend) - 1.0) < 1e-9


def test_token_tree_picture():
    out = viz.draw_token_tree(["a", "b", "c"], [[0, 1], [0, 2]], strengths=[0.1, 1.0, 0.5])
    assert out.ndim == 3 and out.shape[2] == 3 and out.shape[1] >= 3 * 40
    with pytest.raises(ValueError, match="edge ids"):
        viz.draw_token_tree(["a"], [[0, 1]])
    with pytest.raises(ValueError, match="no tokens"):
        viz.draw_token_tree([], [])
    long = viz.draw_token_tree([str(i) for i in range(100)], [[i, i + 1] for i in range(99)], max_tokens=10)
    assert long.shape[1] < 100 * 40
