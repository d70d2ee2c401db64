"""Framework image selection: the region's DLC registry, and a GPU image for a GPU instance type."""

from __future__ import annotations

import re

import pytest

from chalicelib import images
from chalicelib.config import Settings
from tests.helpers.paths import ROOT


@pytest.mark.parametrize(
    "instance_type", ["ml.g4dn.xlarge", "ml.g5.xlarge", "ml.g6e.2xlarge", "ml.p4d.24xlarge"]
)
@pytest.mark.parametrize("kind", ["training", "processing", "inference"])
def test_gpu_instance_types_get_gpu_images(kind: images.JobKind, instance_type: str) -> None:
    uri = images.framework_image_uri(kind, "us-east-1", instance_type)
    assert images.accelerator(instance_type) == "gpu"
    assert re.search(r":2\.\d+\.\d+-(gpu-py312-cu\d+|cu\d+)-", uri), uri


@pytest.mark.parametrize("instance_type", ["ml.m5.large", "ml.c5.2xlarge", "ml.r6i.xlarge", "ml.t3.medium"])
@pytest.mark.parametrize("kind", ["training", "processing", "inference"])
def test_cpu_instance_types_get_cpu_images(kind: images.JobKind, instance_type: str) -> None:
    assert "-cpu-" in images.framework_image_uri(kind, "us-east-1", instance_type)


def test_image_uris_in_full() -> None:
    assert images.framework_image_uri("training", "us-east-1", "ml.m5.2xlarge") == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch:2.13.0-cpu-amzn2023-sagemaker"
    )
    assert images.framework_image_uri("training", "us-west-2", "ml.g5.xlarge") == (
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch:2.13.0-cu133-amzn2023-sagemaker"
    )
    assert images.framework_image_uri("inference", "us-east-1", "ml.m5.large") == (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker"
    )
    assert images.framework_image_uri("inference", "eu-west-1", "ml.g5.xlarge") == (
        "763104351884.dkr.ecr.eu-west-1.amazonaws.com/"
        "pytorch-inference:2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker"
    )


def test_regional_registries() -> None:
    assert images.framework_image_uri("training", "eu-south-1", "ml.m5.xlarge").startswith(
        "692866216735.dkr.ecr.eu-south-1.amazonaws.com/"
    )
    assert images.framework_image_uri("inference", "cn-north-1", "ml.m5.xlarge").startswith(
        "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/"
    )
    with pytest.raises(ValueError, match="no Deep Learning Containers registry"):
        images.framework_image_uri("training", "xx-nowhere-1", "ml.m5.xlarge")


@pytest.mark.parametrize(
    "instance_type", ["ml.c7g.xlarge", "ml.m6gd.large", "ml.inf2.xlarge", "ml.trn1.2xlarge", "m5.xlarge"]
)
def test_instance_types_without_an_image_are_refused(instance_type: str) -> None:
    with pytest.raises(images.UnsupportedInstanceError):
        images.accelerator(instance_type)


def test_known_images_are_recognised_from_any_region() -> None:
    uri = images.framework_image_uri("training", "ap-southeast-3", "ml.g5.xlarge")
    assert images.image_of_uri(uri) == images.TRAINING_GPU
    assert images.image_of_uri("123.dkr.ecr.us-east-1.amazonaws.com/mine:latest") is None


def test_settings_derive_images_from_region_and_instance_types() -> None:
    s = Settings(region="eu-west-3", training_instance_type="ml.p4d.24xlarge")
    assert s.training_image == images.TRAINING_GPU.uri("eu-west-3")
    assert s.processing_image == images.TRAINING_CPU.uri("eu-west-3")
    assert s.inference_image == images.INFERENCE_CPU.uri("eu-west-3")
    explicit = Settings(training_image="123456789012.dkr.ecr.eu-west-3.amazonaws.com/own:1")
    assert explicit.training_image == "123456789012.dkr.ecr.eu-west-3.amazonaws.com/own:1"


def test_the_readme_gpu_recipe_gets_a_gpu_training_image() -> None:
    """Setting only the instance type (the README's GPU recipe) must switch the image too."""
    s = Settings.from_env({"AWS_REGION": "us-east-1", "REVIEWSENSE_TRAINING_INSTANCE_TYPE": "ml.g5.xlarge"})
    assert s.training_image == images.TRAINING_GPU.uri("us-east-1")
    s = Settings.from_env({"AWS_REGION": "us-east-1", "REVIEWSENSE_INFERENCE_INSTANCE_TYPE": "ml.g5.xlarge"})
    assert s.inference_image == images.INFERENCE_GPU.uri("us-east-1")
    pinned = Settings.from_env({"REVIEWSENSE_TRAINING_IMAGE": "x.dkr.ecr.us-east-1.amazonaws.com/own:1"})
    assert pinned.training_image == "x.dkr.ecr.us-east-1.amazonaws.com/own:1"


def test_no_region_literal_in_the_settings_defaults_but_the_default_region() -> None:
    source = (ROOT / "chalicelib" / "config.py").read_text()
    regions = re.findall(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)-[a-z]+-\d\b", source)
    assert regions == ["us-east-1"]
    assert 'region: str = "us-east-1"' in source
    assert Settings(region="ap-south-2").training_image.startswith("772153158452.dkr.ecr.ap-south-2.")
