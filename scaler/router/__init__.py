"""``scaler router``: one shared queue in front of every Ollama pod (docs/router.md)."""
