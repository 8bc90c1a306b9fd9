"""The service registry: every package declares itself, and the shared library names none."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from hydra_common import launcher, plugins
from hydra_common.cli import db_app
from hydra_common.launcher import SERVICES, Ports, stack_environment

ROOT = Path(__file__).resolve().parents[1]
SERVICE_PACKAGES = re.compile(r"hydra_(feeder|balancer|predictor|keeper|api|trainer|modelserver)\b")


def test_every_service_package_declares_one_entry_point_that_loads() -> None:
    declared: dict[str, str] = {}
    for pyproject in sorted(ROOT.glob("services/*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        entries = project.get("entry-points", {}).get(plugins.GROUP, {})
        if project["name"] == "hydra-testsupport":  # development only, not a service
            assert entries == {}
            continue
        assert len(entries) == 1, f"{pyproject}: one {plugins.GROUP} entry point expected"
        declared.update(entries)
    registry = plugins.services()
    assert set(registry) == set(declared)
    for name, descriptor in registry.items():
        assert descriptor.name == name
        assert descriptor.settings is None or descriptor.settings.__module__.startswith("hydra_")


def test_the_shared_library_names_no_service() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sorted((ROOT / "services/common/src").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if SERVICE_PACKAGES.search(line)
    ]
    assert offenders == []


def hydra_app() -> typer.Typer:
    """A fresh ``hydra`` application, put together as ``hydra_common.cli`` puts its own."""
    app = typer.Typer(no_args_is_help=True)
    app.add_typer(db_app, name="db")
    for descriptor in plugins.services().values():
        if descriptor.register_cli is not None:
            descriptor.register_cli(app)
    launcher.register(app)
    return app


def test_each_listener_and_command_is_real() -> None:
    app = hydra_app()
    commands = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for descriptor in plugins.services().values():
        if descriptor.image_command:
            assert descriptor.image_command[0] in commands, descriptor.name
        if descriptor.command:
            assert descriptor.command[0] in commands, descriptor.name
        listener = descriptor.listener
        if listener is not None:
            assert descriptor.settings is not None
            fields = descriptor.settings.model_fields
            assert {listener.port_setting, listener.host_setting} <= set(fields), descriptor.name
            assert descriptor.default_port() > 0


def test_hydra_up_runs_the_registry_in_order_and_wires_each_server() -> None:
    registry = plugins.services()
    assert SERVICES == plugins.stack_services()
    assert "trainer" not in SERVICES and {"feeder", "api", "modelconfig"} <= set(SERVICES)
    # Writers first, then servers, then clients; the feeder stops first.
    assert SERVICES[0] == "modelconfig"
    assert min(SERVICES, key=lambda s: registry[s].stop_order) == "feeder"
    ports = Ports.free()
    env = stack_environment(ports, base={})
    for name, port in ports.servers.items():
        listener = registry[name].listener
        assert listener is not None
        assert env[plugins.env_name(listener.port_setting)] == str(port)
        if listener.address_setting:
            assert env[plugins.env_name(listener.address_setting)] == f"127.0.0.1:{port}"
    assert ports.balancer == ports.servers["balancer"]
    targets = env["HYDRA_STATUS_TARGETS"]
    assert f"balancer=http://127.0.0.1:{ports.metrics['balancer']}/metrics" in targets
    assert "keeper=" not in targets


def test_the_images_are_the_services_with_an_image_command(
    capsys: pytest.CaptureFixture[str],
) -> None:
    spec = importlib.util.spec_from_file_location(
        "image_contents", ROOT / "deploy/image_contents.py"
    )
    assert spec is not None and spec.loader is not None
    image_contents = importlib.util.module_from_spec(spec)
    sys.modules["image_contents"] = image_contents  # its dataclasses look themselves up
    spec.loader.exec_module(image_contents)
    assert plugins.main(["images"]) == 0  # what `make images` builds
    listed = capsys.readouterr().out.split()
    assert sorted(listed) == sorted(image_contents.SERVICES)
    assert "modelconfig" not in listed  # it runs in the API's image
    assert plugins.main(["image-command", "modelserver"]) == 0
    assert capsys.readouterr().out.strip() == "model-server"
    assert plugins.main(["nonsense"]) == 2


def test_every_command_answers_help() -> None:
    """A command whose registration broke (a bad option default, a module that no longer
    imports, a missing docstring) fails here rather than in a hall."""
    app = hydra_app()
    commands: dict[tuple[str, ...], str] = {}  # each command's path and its help text

    def walk(command: object, path: tuple[str, ...]) -> None:
        commands[path] = getattr(command, "help", None) or ""
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, (*path, name))

    walk(typer.main.get_command(app), ())
    # The walk reaches the groups' commands, every service's and the trainer's among them.
    assert {("db", "upgrade"), ("up",), ("feeder",), ("train",), ("plot-type", "add")} <= set(
        commands
    )
    assert {("label", "set"), ("promote",), ("rollback",), ("simulate",), ("demo",)} <= set(
        commands
    )
    runner = CliRunner()
    for path, help_text in commands.items():
        if not path:
            continue
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert f"{path[-1]} [OPTIONS]" in result.output, (path, result.output)
        summary = help_text.split()
        assert summary, f"hydra {' '.join(path)} has no help text"
        assert summary[0] in result.output, (path, result.output)
