"""Models built on the tree-scan op: the GrootV backbone, its UperNet segmenter, the Tree-SSM mixer.

Importing this package registers ``grootv_tiny``, ``grootv_small``, ``grootv_base`` and
``test_grootv`` with timm.
"""

from .grootl import GrootL, GrootLConfig, MambaLM, grootl_130m, grootl_nano, mamba_130m
from .grootv import GrootV, checkpoint_filter_fn, grootv_base, grootv_nano, grootv_small, grootv_tiny
from .token_tree_capture import TokenTreeRecord, capture_token_trees
from .tree_capture import TreeRecord, affinity_from, capture_trees
from .tree_ssm import SpanningTree, TreeSSM, build_grid_tree
from .upernet import GrootVSegmenter, UPerHead, upernet_grootv_nano, upernet_grootv_small, upernet_grootv_tiny

__all__ = [
    "GrootL",
    "GrootLConfig",
    "MambaLM",
    "grootl_130m",
    "grootl_nano",
    "mamba_130m",
    "GrootV",
    "GrootVSegmenter",
    "SpanningTree",
    "TokenTreeRecord",
    "TreeRecord",
    "TreeSSM",
    "UPerHead",
    "affinity_from",
    "build_grid_tree",
    "capture_token_trees",
    "capture_trees",
    "checkpoint_filter_fn",
    "grootv_base",
    "grootv_nano",
    "grootv_small",
    "grootv_tiny",
    "upernet_grootv_nano",
    "upernet_grootv_small",
    "upernet_grootv_tiny",
]
