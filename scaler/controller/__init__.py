"""``scaler run``: the loop that reads metrics, decides with the policy engine, and acts."""
