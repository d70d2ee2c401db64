"""Which SageMaker framework container runs each job, chosen from the region and the instance type.

Approach: the jobs run in AWS's PyTorch Deep Learning Containers (DLC) and get what those images lack
through the containers' own documented dependency mechanisms, never through a custom image:

* training (script mode): the ``sagemaker-training`` toolkit in the image runs
  ``python -m pip install -r requirements.txt`` from the root of ``sourcedir.tar.gz`` before the entry
  point (``training/requirements.txt`` is published there);
* processing: the container installs nothing, so the job's entry point is ``training.bootstrap``, which
  installs the same ``requirements.txt`` (published next to the code) and then runs the step's module;
* inference: the ``sagemaker-pytorch-inference`` toolkit installs ``code/requirements.txt`` from
  ``model.tar.gz`` before loading ``code/inference.py`` (``training/serving_requirements.txt`` is copied
  there with the handler).

Images (checked against aws/deep-learning-containers and the ``sagemaker-core`` image-URI table; what
each image ships is recorded in ``training/images/<repository>_<tag>.txt``):

* training and processing: ``pytorch:2.13.0-cpu-amzn2023-sagemaker`` / ``pytorch:2.13.0-cu133-amzn2023-
  sagemaker`` (PyTorch 2.13.0, Python 3.12, released 2026-07-20): the newest SageMaker training DLC, with
  the same torch as the workstation and the SageMaker script-mode toolkit;
* inference: ``pytorch-inference:2.6.0-cpu-py312-ubuntu22.04-sagemaker`` / ``pytorch-inference:2.6.0-gpu-
  py312-cu124-ubuntu22.04-sagemaker``: the newest PyTorch *serving* DLC (the 2.11+ ``pytorch`` images
  are training-only). transformers 5 needs torch >= 2.6, which is why the former 2.5 images could not
  have served the model even with transformers installed.

A GPU instance family (``ml.g*``, ``ml.p*``) gets the GPU image; Graviton (``ml.c7g`` ...) and
Inferentia / Trainium families have no image here and are refused. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

JobKind = Literal["training", "processing", "inference"]
Accelerator = Literal["cpu", "gpu"]


@dataclass(frozen=True)
class FrameworkImage:
    """One image in a DLC registry: ``<account>.dkr.ecr.<region>.<domain>/<repository>:<tag>``."""

    repository: str
    tag: str
    python: str
    torch: str

    @property
    def manifest_name(self) -> str:
        """File under ``training/images/`` that lists the packages this image ships."""
        return f"{self.repository}_{self.tag}.txt"

    def uri(self, region: str) -> str:
        account, domain = dlc_registry(region)
        return f"{account}.dkr.ecr.{region}.{domain}/{self.repository}:{self.tag}"


TRAINING_CPU = FrameworkImage("pytorch", "2.13.0-cpu-amzn2023-sagemaker", python="3.12", torch="2.13.0")
TRAINING_GPU = FrameworkImage("pytorch", "2.13.0-cu133-amzn2023-sagemaker", python="3.12", torch="2.13.0")
INFERENCE_CPU = FrameworkImage(
    "pytorch-inference", "2.6.0-cpu-py312-ubuntu22.04-sagemaker", python="3.12", torch="2.6.0"
)
INFERENCE_GPU = FrameworkImage(
    "pytorch-inference", "2.6.0-gpu-py312-cu124-ubuntu22.04-sagemaker", python="3.12", torch="2.6.0"
)

FRAMEWORK_IMAGES: dict[tuple[JobKind, Accelerator], FrameworkImage] = {
    ("training", "cpu"): TRAINING_CPU,
    ("training", "gpu"): TRAINING_GPU,
    # Processing jobs run the training image: it has pandas, pyarrow and scikit-learn besides torch.
    ("processing", "cpu"): TRAINING_CPU,
    ("processing", "gpu"): TRAINING_GPU,
    ("inference", "cpu"): INFERENCE_CPU,
    ("inference", "gpu"): INFERENCE_GPU,
}

#: Deep Learning Containers registry account per region: aws/deep-learning-containers
#: docs/reference/region_availability.md, plus me-west-1 and GovCloud from sagemaker-core 2.27.0
#: image_uri_config/pytorch.json (the two tables agree where both list a region).
DLC_ACCOUNTS: dict[str, str] = {
    "us-east-1": "763104351884",
    "us-east-2": "763104351884",
    "us-west-1": "763104351884",
    "us-west-2": "763104351884",
    "af-south-1": "626614931356",
    "ap-east-1": "871362719292",
    "ap-east-2": "975050140332",
    "ap-south-1": "763104351884",
    "ap-south-2": "772153158452",
    "ap-northeast-1": "763104351884",
    "ap-northeast-2": "763104351884",
    "ap-northeast-3": "364406365360",
    "ap-southeast-1": "763104351884",
    "ap-southeast-2": "763104351884",
    "ap-southeast-3": "907027046896",
    "ap-southeast-4": "457447274322",
    "ap-southeast-5": "550225433462",
    "ap-southeast-6": "633930458069",
    "ap-southeast-7": "590183813437",
    "ca-central-1": "763104351884",
    "ca-west-1": "204538143572",
    "eu-central-1": "763104351884",
    "eu-central-2": "380420809688",
    "eu-north-1": "763104351884",
    "eu-south-1": "692866216735",
    "eu-south-2": "503227376785",
    "eu-west-1": "763104351884",
    "eu-west-2": "763104351884",
    "eu-west-3": "763104351884",
    "il-central-1": "780543022126",
    "me-central-1": "914824155844",
    "me-south-1": "217643126080",
    "me-west-1": "124382933778",
    "mx-central-1": "637423239942",
    "sa-east-1": "763104351884",
    "us-gov-east-1": "446045086412",
    "us-gov-west-1": "442386744353",
    "cn-north-1": "727897471807",
    "cn-northwest-1": "727897471807",
}

_INSTANCE = re.compile(r"^ml\.(?P<family>[a-z0-9-]+)\.[a-z0-9]+$")
_GRAVITON = re.compile(r"^[a-z]+\d+g[a-z]*$")  # m6g, c7g, r7gd, t4g ...


class UnsupportedInstanceError(ValueError):
    """No framework image here fits the instance type (Graviton, Inferentia, Trainium, or not ``ml.*``)."""


def dlc_registry(region: str) -> tuple[str, str]:
    """(account, ECR domain suffix) of the DLC registry serving ``region``."""
    try:
        account = DLC_ACCOUNTS[region]
    except KeyError:
        raise ValueError(
            f"no Deep Learning Containers registry known for region {region!r}; "
            "set the image URIs explicitly (REVIEWSENSE_*_IMAGE)"
        ) from None
    return account, "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"


def accelerator(instance_type: str) -> Accelerator:
    """``gpu`` for the NVIDIA families (``ml.g*``, ``ml.p*``), ``cpu`` for the x86 CPU families."""
    match = _INSTANCE.match(instance_type)
    if match is None:
        raise UnsupportedInstanceError(
            f"{instance_type!r} is not a SageMaker ML instance type (ml.<family>.<size>)"
        )
    family = match["family"]
    if family.startswith(("inf", "trn")):
        raise UnsupportedInstanceError(
            f"{instance_type}: Neuron instances need Neuron images, not configured here"
        )
    if _GRAVITON.match(family):
        raise UnsupportedInstanceError(f"{instance_type}: Graviton (arm64) instances need arm64 images")
    return "gpu" if family[0] in "gp" else "cpu"


def framework_image(kind: JobKind, instance_type: str) -> FrameworkImage:
    return FRAMEWORK_IMAGES[(kind, accelerator(instance_type))]


def framework_image_uri(kind: JobKind, region: str, instance_type: str) -> str:
    """The framework image URI a ``kind`` job on ``instance_type`` in ``region`` runs in."""
    return framework_image(kind, instance_type).uri(region)


def image_of_uri(uri: str) -> FrameworkImage | None:
    """The known framework image an ECR URI names (any region), or None for another image."""
    repository_tag = uri.rsplit("/", 1)[-1]
    for image in FRAMEWORK_IMAGES.values():
        if repository_tag == f"{image.repository}:{image.tag}":
            return image
    return None
