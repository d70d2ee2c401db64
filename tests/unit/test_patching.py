"""``Patches``: the one way the local cloud patches moto records originals and restores them exactly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reviewsense.localcloud.patching import Patches


class Base:
    inherited = "base"

    def greet(self) -> str:
        return "base"


class Target(Base):
    own = "own"

    def greet(self) -> str:
        return "target"

    @staticmethod
    def tool() -> str:
        return "tool"


def _patch_all(patches: Patches) -> None:
    patches.replace(Target, "greet", lambda self: "patched")
    patches.replace(Target, "own", "patched-own")
    patches.replace(Target, "inherited", "patched-inherited")
    patches.replace(Target, "added", "new")
    patches.replace(Target, "tool", staticmethod(lambda: "patched-tool"))


@pytest.fixture
def patches() -> Iterator[Patches]:
    created = Patches()
    yield created
    created.uninstall()


def test_install_replaces_and_uninstall_restores_the_own_attributes(patches: Patches) -> None:
    original_greet = Target.__dict__["greet"]
    original_tool = Target.__dict__["tool"]

    assert patches.install(_patch_all) is True
    assert patches.installed
    assert Target().greet() == "patched"
    assert Target.own == "patched-own"
    assert Target.tool() == "patched-tool"

    assert patches.uninstall() is True
    assert not patches.installed
    assert Target.__dict__["greet"] is original_greet
    assert Target.__dict__["tool"] is original_tool  # the staticmethod object itself, not its function
    assert Target().greet() == "target"
    assert Target.own == "own"
    assert Target.tool() == "tool"


def test_attributes_the_class_did_not_have_are_deleted_on_uninstall(patches: Patches) -> None:
    patches.install(_patch_all)
    assert Target.added == "new"  # type: ignore[attr-defined]
    assert Target.__dict__["inherited"] == "patched-inherited"

    patches.uninstall()

    assert "added" not in Target.__dict__
    assert not hasattr(Target, "added")
    assert "inherited" not in Target.__dict__  # inherited again, not copied onto the subclass
    assert Target.inherited == "base"
    assert Base.__dict__["inherited"] == "base"


def test_a_second_install_is_a_no_op(patches: Patches) -> None:
    calls: list[str] = []

    def apply(p: Patches) -> None:
        calls.append("applied")
        p.replace(Target, "own", f"patched-{len(calls)}")

    assert patches.install(apply) is True
    assert patches.install(apply) is False
    assert calls == ["applied"]
    assert Target.own == "patched-1"

    patches.uninstall()
    assert Target.own == "own"


def test_replacing_the_same_attribute_twice_restores_the_first_original(patches: Patches) -> None:
    def apply(p: Patches) -> None:
        p.replace(Target, "own", "first")
        p.replace(Target, "own", "second")
        p.replace(Target, "added", "first")
        p.replace(Target, "added", "second")

    patches.install(apply)
    assert Target.own == "second"

    patches.uninstall()
    assert Target.own == "own"
    assert "added" not in Target.__dict__


def test_uninstall_twice_is_safe_and_uninstall_before_install_does_nothing(patches: Patches) -> None:
    assert patches.uninstall() is False
    patches.install(_patch_all)

    assert patches.uninstall() is True
    assert patches.uninstall() is False
    assert Target.own == "own"
    assert "added" not in Target.__dict__


def test_install_again_after_uninstall_patches_again(patches: Patches) -> None:
    patches.install(_patch_all)
    patches.uninstall()

    assert patches.install(_patch_all) is True
    assert Target().greet() == "patched"
    patches.uninstall()
    assert Target().greet() == "target"


def test_a_failing_apply_restores_what_it_had_replaced_and_stays_uninstalled(patches: Patches) -> None:
    def apply(p: Patches) -> None:
        p.replace(Target, "own", "half-done")
        p.replace(Target, "added", "half-done")
        raise RuntimeError("moto changed")

    with pytest.raises(RuntimeError, match="moto changed"):
        patches.install(apply)

    assert not patches.installed
    assert Target.own == "own"
    assert "added" not in Target.__dict__
    assert patches.install(_patch_all) is True
