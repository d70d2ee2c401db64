"""Where ``reviewsense.signedhttp`` finds a deployed stage's routes: the stack's ``EndpointURL`` output."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from moto import mock_aws

from reviewsense.errors import StageNotDeployedError
from reviewsense.signedhttp import deployed_api_url


def stack(cloudformation: Any, name: str, outputs: dict[str, Any]) -> None:
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": outputs,
    }
    cloudformation.create_stack(StackName=name, TemplateBody=json.dumps(template))


def test_the_deployed_url_is_the_stacks_endpoint_url_output() -> None:
    with mock_aws():
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        url = "https://abc123.execute-api.us-east-1.amazonaws.com/dev/"
        stack(cfn, "reviewsense-dev", {"EndpointURL": {"Value": url}, "Other": {"Value": "x"}})
        assert deployed_api_url(cfn, "reviewsense-dev") == url
        stack(cfn, "reviewsense-noroutes", {"Other": {"Value": "x"}})
        with pytest.raises(StageNotDeployedError):
            deployed_api_url(cfn, "reviewsense-noroutes")
