"""Small wrappers around one AWS service each; the boto3 client is always injected."""
