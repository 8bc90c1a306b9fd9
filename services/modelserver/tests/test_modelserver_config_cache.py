"""The model config file is parsed again only when it changed; the version directories are
still listed on every poll (a ``latest`` policy follows them without a config change)."""

from __future__ import annotations

import os
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
