"""Pictures of trees and predictions: numpy/opencv in, ``(H, W, 3)`` uint8 RGB out. No gradio.

- :func:`draw_tree`: a spanning tree over a (resized) image, coloured by depth or edge weight.
- :func:`overlay_heatmap`: an affinity map over an image, with the clicked pixel marked.
- :func:`overlay_mask` / :func:`legend_entries`: a segmentation mask over an image.
- :func:`pixel_tree`: the minimum spanning tree built from the raw pixels alone (no model).
- :func:`draw_token_tree`: the tree over a prompt's tokens, drawn as arcs.
"""

from .heatmap import overlay_heatmap
from .pixel_tree import pixel_tree
from .segmentation import legend_entries, overlay_mask
from .token_tree import draw_token_tree
from .tree_overlay import draw_tree, vertex_depths

__all__ = [
    "draw_token_tree",
    "draw_tree",
    "legend_entries",
    "overlay_heatmap",
    "overlay_mask",
    "pixel_tree",
    "vertex_depths",
]
