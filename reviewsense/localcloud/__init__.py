"""The local cloud: every AWS service ReviewSense uses, on one machine, with no AWS account."""
