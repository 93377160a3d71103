"""Start the GrootVL demo: ``python app.py [--host 127.0.0.1] [--port 7860] [--share]``."""

from app import main

if __name__ == "__main__":
    main()
