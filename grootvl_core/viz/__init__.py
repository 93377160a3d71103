"""Pictures of trees and predictions: numpy/opencv in, ``(H, W, 3)`` uint8 RGB out. No gradio.

- :func:`draw_tree`: a spanning tree over a (resized) image, coloured by depth or edge weight.
- :func:`overlay_heatmap`: an affinity map over an image, with the clicked pixel marked.
- :func:`overlay_mask` / :func:`legend_entries`: a segmentation mask over an image.
- :func:`pixel_tree`: the minimum spanning tree built from the raw pixels alone (no model).
- :func:`draw_token_tree`: the tree over a prompt's tokens, drawn as arcs.
- :func:`compare_scans` / :func:`raster_affinity_from`: a block's tree vs the raster chain from one pixel.
- :func:`effective_receptive_fields`: per-stage ERFs (RepLKNet's input-gradient method).
- :func:`tree_to_dict` / :func:`tree_to_json`: a recorded tree as plain data.
"""

from .erf import StageERF, effective_receptive_fields
from .heatmap import overlay_heatmap
from .pixel_tree import pixel_tree
from .scan_compare import ScanComparison, compare_scans, raster_affinity_from
from .segmentation import legend_entries, overlay_mask
from .token_tree import draw_token_tree
from .tree_export import tree_to_dict, tree_to_json
from .tree_overlay import draw_tree, vertex_depths

__all__ = [
    "ScanComparison",
    "StageERF",
    "compare_scans",
    "draw_token_tree",
    "draw_tree",
    "effective_receptive_fields",
    "legend_entries",
    "overlay_heatmap",
    "overlay_mask",
    "pixel_tree",
    "raster_affinity_from",
    "tree_to_dict",
    "tree_to_json",
    "vertex_depths",
]
