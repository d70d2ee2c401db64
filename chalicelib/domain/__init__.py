"""Pure domain logic: no I/O, no environment, no AWS. Tested without any cloud."""
