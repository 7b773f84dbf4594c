"""A saved plan loads only YAML that resolves inside the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.sealpaths import PlanPathError, confined_files


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    here = tmp_path / "checkout"
    (here / "desired").mkdir(parents=True)
    (here / "desired" / "yext.yaml").write_text("providers: {}\n")
    return here


def test_names_inside_are_kept_as_written(checkout: Path):
    assert confined_files(["desired"], checkout) == ["desired/yext.yaml"]
    assert confined_files(["desired/yext.yaml"], checkout) == ["desired/yext.yaml"]


def test_a_directory_inside_whose_yaml_links_outside_is_refused(checkout: Path, monkeypatch):
    monkeypatch.chdir(checkout)
    outside = checkout.parent / "elsewhere.yaml"
    outside.write_text("providers: {}\n")
    (checkout / "linked").mkdir()
    (checkout / "linked" / "a.yaml").symlink_to(outside)
    with pytest.raises(PlanPathError, match="outside the working directory"):
        confined_files(["linked"], checkout)
    (checkout / "desired" / "b.yaml").symlink_to(outside)
    with pytest.raises(PlanPathError, match="outside the working directory"):
        confined_files(["desired"], checkout)


def test_a_symlinked_directory_leading_outside_is_refused(checkout: Path):
    (checkout.parent / "elsewhere.yaml").write_text("providers: {}\n")
    (checkout / "door").symlink_to(checkout.parent)
    assert confined_files(["door/checkout/desired/yext.yaml"], checkout) == [
        "door/checkout/desired/yext.yaml"], "it leads back inside: allowed"
    with pytest.raises(PlanPathError, match="outside the working directory"):
        confined_files(["door/elsewhere.yaml"], checkout)
    with pytest.raises(PlanPathError, match="outside the working directory"):
        confined_files(["../checkout/../elsewhere.yaml"], checkout)
    with pytest.raises(PlanPathError, match="outside the working directory"):
        confined_files(["/etc"], checkout)


@pytest.mark.parametrize("name", ["desired/\x00.yaml", "d/" + "y" * 5000 + ".yaml",
                                  "x/" * 3000, "", 42])
def test_names_no_file_can_have_are_one_line_errors(checkout: Path, name: object):
    with pytest.raises(PlanPathError) as refused:
        confined_files([name], checkout)
    assert "\n" not in str(refused.value) and "\x00" not in str(refused.value)
    assert len(str(refused.value)) < 300
