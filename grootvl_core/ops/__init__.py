"""The tree-scan op and its graph helpers (design.md "Op API").

    edges   = grid_edges(H, W)                                  # (E, 2)
    weights = cosine_edge_weights(u)                            # (B, E) float32, exp(-cos)
    tree    = bfs(minimum_spanning_tree(edges, weights, H * W)) # TreeOrder, root 0
    # the same in one op (one native call on the CPU): (tree edges (B, V-1, 2), TreeOrder)
    tree_edges, tree = grid_spanning_tree(u)
    y       = tree_scan(x, a, tree, mode="full")                # (B, D, V)

Each op has a pure-PyTorch ``*_ref`` twin with the same signature; ``backend()`` says which
implementation runs: ``"cpu"`` (native C++), ``"cuda"`` (compiled CUDA), ``"triton"`` or
``"reference"`` (``GROOTVL_OPS=reference|native|cuda|triton`` forces one; ``ops/backend.py`` has the
chain and ``python -m grootvl_core.ops.selfcheck`` the GPU self-check).
"""

from .backend import backend
from .chain import chain_tree
from .depthwise_conv import depthwise_conv_silu
from .graph import cosine_edge_weights, grid_edges, num_grid_edges
from .grid_tree import grid_spanning_tree, grid_spanning_tree_ref
from .spanning_tree import TreeOrder, bfs, bfs_ref, minimum_spanning_tree, minimum_spanning_tree_ref
from .ssm_discretize import ssm_discretize
from .ssm_output import ssm_output
from .tree_scan import tree_scan, tree_scan_ref

__all__ = [
    "TreeOrder",
    "backend",
    "bfs",
    "bfs_ref",
    "chain_tree",
    "cosine_edge_weights",
    "depthwise_conv_silu",
    "grid_edges",
    "grid_spanning_tree",
    "grid_spanning_tree_ref",
    "minimum_spanning_tree",
    "minimum_spanning_tree_ref",
    "num_grid_edges",
    "ssm_discretize",
    "ssm_output",
    "tree_scan",
    "tree_scan_ref",
]
