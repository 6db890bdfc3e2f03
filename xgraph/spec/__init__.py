"""The spec language: YAML with locations, pydantic models, and expansion into the graph IR."""
