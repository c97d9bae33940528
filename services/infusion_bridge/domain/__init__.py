"""The domain model: plain pydantic types and rules, no I/O."""
