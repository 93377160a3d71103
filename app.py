"""Start the GrootVL demo: ``python app.py [--host 127.0.0.1] [--port 7860] [--share]``."""

import os

if os.environ.get("SPACES_ZERO_GPU"):
    # ZeroGPU: `spaces` must be imported before torch (it patches torch's CUDA initialisation)
    try:
        import spaces  # noqa: F401
    except ImportError:
        pass

from app import main  # noqa: E402

if __name__ == "__main__":
    main()
