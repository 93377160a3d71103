"""grootvl: GrootVL ("Tree Topology is All You Need in State Space Model", NeurIPS 2024).

Subpackages: ``ops`` (the tree-scan op), ``models`` (GrootV, UperNet, GrootL), ``zoo`` (named
models and where their weights live), ``viz`` (tree drawings), ``cli``.
"""

__version__ = "0.1.0"
