"""Offline evaluation: ranking metrics on MovieLens with baselines (more to come: LLM judge,
simulated users)."""
