"""The GrootVL demo (Gradio): ``python app.py``. The only package that imports gradio."""

from .launch import main, parse_args
from .model_cache import ModelCache
from .ui import build_demo

__all__ = ["ModelCache", "build_demo", "main", "parse_args"]
