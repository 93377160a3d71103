"""Models built on the tree-scan op: the GrootV backbone, its UperNet segmenter, the Tree-SSM mixer.

Importing this package registers ``grootv_tiny``, ``grootv_small``, ``grootv_base`` and
``test_grootv`` with timm.
"""

from .grootv import GrootV, checkpoint_filter_fn, grootv_base, grootv_small, grootv_tiny
from .grootl import GrootL, GrootLConfig, MambaLM, grootl_130m, mamba_130m
from .tree_capture import TreeRecord, affinity_from, capture_trees
from .tree_ssm import SpanningTree, TreeSSM, build_grid_tree
from .upernet import GrootVSegmenter, UPerHead, upernet_grootv_small, upernet_grootv_tiny

__all__ = [
    "GrootL",
    "GrootLConfig",
    "MambaLM",
    "grootl_130m",
    "mamba_130m",
    "GrootV",
    "GrootVSegmenter",
    "SpanningTree",
    "TreeRecord",
    "TreeSSM",
    "UPerHead",
    "affinity_from",
    "build_grid_tree",
    "capture_trees",
    "checkpoint_filter_fn",
    "grootv_base",
    "grootv_small",
    "grootv_tiny",
    "upernet_grootv_small",
    "upernet_grootv_tiny",
]
