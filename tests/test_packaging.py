"""Where shipped files are found: an installed wheel's copies inside the package, else the
top-level folders of a source checkout. (.ci/wheel builds and installs the real wheel.)"""

from __future__ import annotations

from asicsim import shipped
from asicsim.model.hf import MODELS_DIR


def test_a_checkout_reads_the_top_level_models_folder():
    assert MODELS_DIR.name == "models" and (MODELS_DIR / "llama-3.1-8b.json").is_file()


def test_an_installed_package_reads_its_own_copies(tmp_path, monkeypatch):
    package = tmp_path / "site-packages" / "asicsim"
    (package / "data" / "models").mkdir(parents=True)
    (tmp_path / "site-packages" / "models").mkdir()  # some other distribution's top-level folder
    monkeypatch.setattr(shipped, "_PACKAGE", package)
    assert shipped.shipped_dir("models") == package / "data" / "models"


def test_without_copies_the_folder_beside_the_package(tmp_path, monkeypatch):
    package = tmp_path / "checkout" / "asicsim"
    package.mkdir(parents=True)
    monkeypatch.setattr(shipped, "_PACKAGE", package)
    assert shipped.shipped_dir("scenarios") == tmp_path / "checkout" / "scenarios"
