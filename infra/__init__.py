"""Deployment tooling: the merge template, the deploy/teardown script and the template checks."""
