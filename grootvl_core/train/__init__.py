"""Training and evaluation loops (single process and torchrun / DDP).

``evaluate``: top-1 / top-5 over an ImageFolder, sharded without duplicates across ranks
(reference 3.6). ``loop``: the small resumable training loop of the bundled-model recipes.
Import the submodules directly (``from grootvl_core.train.evaluate import evaluate_folder``).
"""
