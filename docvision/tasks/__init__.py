"""Tasks: what the model is asked (ask, summarize, extract) and how its text becomes a record.

Each task decides which pages the model sees, builds the prompt (pure functions, unit-tested) and turns
the model's answer into a record body (docvision.records).
"""
