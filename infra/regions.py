"""Per-region facts the template needs, as data: AWS-owned account ids and the pandas layer version.

Two things differ by region and can only come from a table: the account that publishes the SageMaker
deep-learning-container images (763104351884 in most regions, others in opt-in and China regions), and
the AWS SDK for pandas Lambda layer (account 336392948345 in most regions; account and version differ
elsewhere). The template turns this table into a CloudFormation Mapping keyed by ``AWS::Region``; every
ARN and image URI is then built with ``AWS::Partition``/``AWS::Region``/``AWS::URLSuffix``, never a literal.

The DLC accounts are not repeated here: they are ``chalicelib.images.DLC_ACCOUNTS``, the table the
functions derive their image URIs from, so the template's Mapping and the code cannot disagree.
Sources (checked offline, 2026-11): the layer ARNs from aws-sdk-pandas ``docs/source/layers.rst`` for
release 3.17.0, Python 3.11, x86_64 (the newest table published; the workstation pins awswrangler
3.17.1, a patch release with the same API). A region missing here has no Python 3.11 layer or no DLC
images: deploying there fails at the Mapping lookup instead of at the first invocation.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Name of the layer the functions use (``import awswrangler`` is lazy, in the Athena query path only).
PANDAS_LAYER_NAME = "AWSSDKPandas-Python311"
#: aws-sdk-pandas release the layer versions below belong to.
PANDAS_LAYER_RELEASE = "3.17.0"
#: Largest unzipped size reported for a recent layer release (3.16.1: 204 MB; 3.16.0 and 3.15.1: 167 MB;
#: aws/aws-sdk-pandas issue 3331). 3.17.0 removed the ICU libraries that caused the 3.16.1 growth; the
#: bundle check budgets for the worst of these, not the best.
PANDAS_LAYER_UNZIPPED_MB = 204


@dataclass(frozen=True)
class Regional:
    layer_account: str
    layer_version: int


REGIONS: dict[str, Regional] = {
    "af-south-1": Regional("336392948345", 32),
    "ap-east-1": Regional("839552336658", 32),
    "ap-northeast-1": Regional("336392948345", 33),
    "ap-northeast-2": Regional("336392948345", 33),
    "ap-northeast-3": Regional("336392948345", 33),
    "ap-south-1": Regional("336392948345", 33),
    "ap-south-2": Regional("246107603503", 31),
    "ap-southeast-1": Regional("336392948345", 33),
    "ap-southeast-2": Regional("336392948345", 33),
    "ap-southeast-3": Regional("258944054355", 32),
    "ap-southeast-4": Regional("945386623051", 31),
    "ca-central-1": Regional("336392948345", 33),
    "ca-west-1": Regional("941713567376", 3),
    "cn-north-1": Regional("406640652441", 26),
    "cn-northwest-1": Regional("406640652441", 25),
    "eu-central-1": Regional("336392948345", 33),
    "eu-central-2": Regional("956415814219", 31),
    "eu-north-1": Regional("336392948345", 33),
    "eu-south-1": Regional("774444163449", 32),
    "eu-south-2": Regional("982086096842", 31),
    "eu-west-1": Regional("336392948345", 33),
    "eu-west-2": Regional("336392948345", 33),
    "eu-west-3": Regional("336392948345", 33),
    "il-central-1": Regional("263840725265", 30),
    "me-central-1": Regional("593833071574", 30),
    "sa-east-1": Regional("336392948345", 33),
    "us-east-1": Regional("336392948345", 33),
    "us-east-2": Regional("336392948345", 33),
    "us-west-1": Regional("336392948345", 33),
    "us-west-2": Regional("336392948345", 33),
}
