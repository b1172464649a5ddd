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


def test_the_environment_snapshot_sees_an_install_and_a_re_pointed_package(tmp_path):
    """What the session fixture in conftest compares: a new distribution, and asicsim imported
    from somewhere else, each show as a change."""
    import os

    from environment import changes, snapshot

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    before = snapshot(env)
    assert not changes(before, snapshot(env))
    (tmp_path / "fake_pkg-1.0.dist-info").mkdir()
    (tmp_path / "fake_pkg-1.0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-pkg\nVersion: 1.0\n")
    (tmp_path / "asicsim").mkdir()
    (tmp_path / "asicsim" / "__init__.py").write_text("")
    found = changes(before, snapshot(env))
    assert any("added or changed: fake-pkg==1.0" in line for line in found), found
    assert any(line.startswith("asicsim was imported from") and str(tmp_path) in line for line in found), found
