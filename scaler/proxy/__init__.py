"""``scaler proxy``: the queue-measuring admission proxy in front of each Ollama pod."""
