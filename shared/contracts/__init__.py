"""Event contracts: the JSON shapes on every topic, as pydantic models."""
