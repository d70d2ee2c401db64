"""Use cases: combine domain logic with the adapters (ports) they are given."""
