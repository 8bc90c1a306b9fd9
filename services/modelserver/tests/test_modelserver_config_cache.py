"""The model config file is parsed again only when it changed; a model's version directory
listing is read again only when its directory changed, so a ``latest`` policy still follows
new versions without a config change."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from hydra_modelserver import repository
from hydra_modelserver.repository import configured


def _version(base: Path, name: str, version: int) -> Path:
    path = base / name / str(version)
    path.mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"")
    return path


def _write(cfg: Path, text: str) -> None:
    tmp = cfg.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, cfg)  # as the model-config writer does: a new file, atomically


def test_config_parsed_once_while_unchanged_and_versions_still_followed(tmp_path: Path) -> None:
    cfg = tmp_path / "models.config"
    v1 = _version(tmp_path, "cdc", 1)
    entry = 'config { name: "cdc" base_path: "%s" model_platform: "tensorflow" }'
    _write(cfg, "model_config_list { " + entry % (tmp_path / "cdc") + " }")
    assert configured(cfg) == {("cdc", 1): v1}
    parsed = repository._CONFIG_CACHE[cfg][1]

    v2 = _version(tmp_path, "cdc", 2)  # a new version, the config file untouched
    assert configured(cfg) == {("cdc", 2): v2}  # latest policy: the newest on disk
    assert repository._CONFIG_CACHE[cfg][1] is parsed  # not parsed again

    b1 = _version(tmp_path, "bcal", 1)
    _write(
        cfg,
        "model_config_list { "
        + entry % (tmp_path / "cdc")
        + " "
        + entry.replace("cdc", "bcal") % (tmp_path / "bcal")
        + " }",
    )
    assert configured(cfg) == {("cdc", 2): v2, ("bcal", 1): b1}
    assert repository._CONFIG_CACHE[cfg][1] is not parsed

    cfg.unlink()
    assert configured(cfg) is None and cfg not in repository._CONFIG_CACHE


def _age(path: Path, seconds: float = 60.0) -> None:
    """Date a directory's mtime back, as if it had not changed for a while."""
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_version_listings_are_reused_while_the_model_directory_is_unchanged(
    tmp_path: Path,
) -> None:
    cfg = tmp_path / "models.config"
    base = tmp_path / "cdc"
    entry = 'config { name: "cdc" base_path: "%s" model_platform: "tensorflow" '
    _write(cfg, "model_config_list { " + entry % base + "model_version_policy { all {} } } }")
    v1 = _version(tmp_path, "cdc", 1)
    assert configured(cfg) == {("cdc", 1): v1}
    # Changed under a second ago: a change in the same timestamp tick could hide, so the
    # listing is not kept.
    assert base not in repository._VERSIONS_CACHE
    _age(base)
    assert configured(cfg) == {("cdc", 1): v1}
    listing = repository._VERSIONS_CACHE[base]
    assert configured(cfg) == {("cdc", 1): v1}
    assert repository._VERSIONS_CACHE[base] is listing  # not listed again

    v2 = _version(tmp_path, "cdc", 2)  # a new version directory changes the parent's mtime
    _age(base)
    assert configured(cfg) == {("cdc", 1): v1, ("cdc", 2): v2}

    # An exporter writing in place: the directory first, saved_model.pb later, the parent's
    # mtime unchanged in between. A listing with such a directory is never kept.
    v3 = base / "3"
    v3.mkdir()
    _age(base)
    assert configured(cfg) == {("cdc", 1): v1, ("cdc", 2): v2}
    assert base not in repository._VERSIONS_CACHE
    (v3 / "saved_model.pb").write_bytes(b"")
    assert configured(cfg) == {("cdc", 1): v1, ("cdc", 2): v2, ("cdc", 3): v3}

    shutil.rmtree(v1)  # a version removed
    _age(base)
    assert configured(cfg) == {("cdc", 2): v2, ("cdc", 3): v3}
    shutil.rmtree(base)  # the whole model
    assert configured(cfg) == {}
    assert base not in repository._VERSIONS_CACHE
