"""The deployment material (Dockerfile, deploy/) agrees with the code it deploys."""

from __future__ import annotations

import json
import re
import shlex
from fnmatch import fnmatch
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import AGENT, ProxyFactory, Sim, settings_for
from tests.functional.finesse import sign_in
from webproxy.cli import build_parser
from webproxy.config import load_settings

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
COMPOSE: Final = DEPLOY / "docker-compose.yml"
ALERTS: Final = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS: Final = DEPLOY / "prometheus" / "alerts_test.yml"
SCRAPE: Final = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD: Final = DEPLOY / "grafana" / "webproxy-dashboard.json"
SIDECAR: Final = DEPLOY / "kubernetes" / "webproxy-sidecar.yaml"

#: Every sample name the alerts and the dashboard rely on: the one list to update when they
#: use a new metric. A running proxy must expose each (test_a_running_proxy_exposes_...).
DEPLOYED_METRICS: Final = frozenset({
    "webproxy_requests_total",
    "webproxy_cache_lookups_total",
    "webproxy_cache_purges_total",
    "webproxy_cache_entries",
    "webproxy_cache_bytes",
    "webproxy_upstream_request_duration_seconds_bucket",
    "webproxy_upstream_request_duration_seconds_count",
    "webproxy_upstream_errors_total",
    "webproxy_store_errors_total",
    "webproxy_coalesced_requests_total",
    "webproxy_identities",
})  # fmt: skip
METRIC_NAME: Final = re.compile(r"\bwebproxy_[a-z_]+")
#: The sample names a family of each type exposes once it has a series (exposition format).
SAMPLE_SUFFIXES: Final = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
REASON_CODES: Final = "/finesse/api/TeamResource/5000/ReasonCodes?category=ALL"
HIT: Final = {"cache": "rest", "resource": "TeamResource", "result": "hit"}
LOCAL_URL: Final = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)")
ALERT_NAMES: Final = (
    "WebproxyCacheHitRatioLow",
    "WebproxyUpstreamErrorRate",
    "WebproxyStoreErrors",
    "WebproxyDown",
)


def dig(node: object, *path: str | int) -> object:
    """The value at `path` in parsed YAML or JSON; fails naming the missing step."""
    for step in path:
        if isinstance(step, int):
            assert isinstance(node, list) and len(node) > step, f"no item {step}: {node!r:.80}"
            node = node[step]
        else:
            assert isinstance(node, dict) and step in node, f"no key {step!r}: {node!r:.80}"
            node = node[step]
    return node


def table(node: object, *path: str | int) -> dict[str, object]:
    value = dig(node, *path)
    assert isinstance(value, dict), f"{path}: not a mapping"
    return value


def items(node: object, *path: str | int) -> list[object]:
    value = dig(node, *path)
    assert isinstance(value, list), f"{path}: not a list"
    return value


def text(node: object, *path: str | int) -> str:
    value = dig(node, *path)
    assert isinstance(value, str), f"{path}: not a string"
    return value


def documents(path: Path) -> list[object]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def k8s(kind: str) -> dict[str, object]:
    (found,) = [doc for doc in documents(SIDECAR) if table(doc).get("kind") == kind]
    return table(found)


def pod_container(name: str) -> dict[str, object]:
    containers = items(k8s("Deployment"), "spec", "template", "spec", "containers")
    (found,) = [table(c) for c in containers if table(c).get("name") == name]
    return found


def compose_service(name: str) -> dict[str, object]:
    return table(documents(COMPOSE)[0], "services", name)


def interpolated(value: object) -> str:
    """A compose value with each `${VAR:-default}` at its default (VAR unset)."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value))


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each Dockerfile instruction, continuations joined."""
    lines = [ln for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip()]
    joined = "\n".join(ln for ln in lines if not ln.lstrip().startswith("#"))
    logical = re.sub(r"\\\n", " ", joined).splitlines()
    return [(word.upper(), rest.strip()) for word, _, rest in (ln.partition(" ") for ln in logical)]


def instructions(name: str) -> list[str]:
    return [args for word, args in dockerfile() if word == name]


def expressions() -> dict[str, list[str]]:
    """The PromQL of the alert rules, of their promtool tests' series and of the dashboard."""
    rules = [table(r) for g in items(documents(ALERTS)[0], "groups") for r in items(g, "rules")]
    cases = items(documents(ALERT_TESTS)[0], "tests")
    series = [table(s) for case in cases for s in items(case, "input_series")]
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [table(t) for p in items(dashboard, "panels") for t in items(p, "targets")]
    variables = [table(v) for v in items(dashboard, "templating", "list")]
    return {
        "alerts": [text(rule, "expr") for rule in rules],
        "alert tests": [text(one, "series") for one in series],
        "dashboard": [text(target, "expr") for target in panels]
        + [text(v, "definition") for v in variables if "definition" in v],
    }


def probe_urls() -> dict[str, tuple[int, str]]:
    """(port, path) of every probe or scrape aimed at webproxy's admin listener."""
    health = instructions("HEALTHCHECK")[0]
    compose_health = " ".join(map(str, items(compose_service("webproxy"), "healthcheck", "test")))
    container, pod = pod_container("webproxy"), k8s("Deployment")
    annotations = table(pod, "spec", "template", "metadata", "annotations")
    scrape = table(items(documents(SCRAPE)[0], "scrape_configs")[0])
    target = text(scrape, "static_configs", 0, "targets", 0)
    urls = {"Dockerfile HEALTHCHECK": health, "compose healthcheck": compose_health}
    found = {where: LOCAL_URL.search(url) for where, url in urls.items()}
    probes = {where: (int(m[1]), m[2]) for where, m in found.items() if m is not None}
    assert len(probes) == len(urls), f"no http://127.0.0.1 URL in {urls}"
    for probe in ("livenessProbe", "readinessProbe"):
        port = named_port(container, dig(container, probe, "httpGet", "port"))
        probes[f"k8s {probe}"] = (port, text(container, probe, "httpGet", "path"))
    probes["k8s prometheus.io"] = (int(text(annotations, "prometheus.io/port")), "/metrics")
    assert text(annotations, "prometheus.io/path") == "/metrics"
    probes["prometheus.yml"] = (int(target.rpartition(":")[2]), text(scrape, "metrics_path"))
    return probes


def named_port(container: dict[str, object], port: object) -> int:
    for entry in items(container, "ports"):
        if port in (dig(entry, "name"), dig(entry, "containerPort")):
            return int(str(dig(entry, "containerPort")))
    raise AssertionError(f"port {port!r} is not among the container's ports")


@pytest.mark.parametrize(
    "path", sorted(DEPLOY.rglob("*.y*ml")), ids=lambda p: str(p.relative_to(DEPLOY))
)
def test_every_yaml_file_parses(path: Path) -> None:
    assert documents(path), f"{path.name} holds no document"


def test_dashboard_parses_and_takes_its_datasource_from_a_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert 36 <= int(str(dig(dashboard, "schemaVersion"))) <= 41
    source = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    variables = {text(v, "name"): table(v) for v in items(dashboard, "templating", "list")}
    assert dig(variables, "DS_PROMETHEUS", "type") == "datasource"
    panels = [table(p) for p in items(dashboard, "panels")]
    assert len({dig(p, "id") for p in panels}) == len(panels)
    for panel in panels:
        targets = items(panel, "targets")
        assert targets and panel["datasource"] == source, panel["title"]
        assert all(dig(t, "datasource") == source for t in targets), panel["title"]


@pytest.mark.parametrize("source", ["alerts", "alert tests", "dashboard"])
def test_promql_uses_only_the_listed_metrics(source: str) -> None:
    used = {name for expr in expressions()[source] for name in METRIC_NAME.findall(expr)}
    assert used, f"no webproxy metric in the {source}"
    assert used <= DEPLOYED_METRICS, f"not in DEPLOYED_METRICS: {used - DEPLOYED_METRICS}"


def test_the_listed_metrics_are_all_used_and_the_dashboard_draws_both_quantiles() -> None:
    by_source = expressions()
    used = {name for exprs in by_source.values() for e in exprs for name in METRIC_NAME.findall(e)}
    assert used == DEPLOYED_METRICS
    quantiles = {re.sub(r"\s", "", e).partition(",")[0] for e in by_source["dashboard"]}
    assert {"histogram_quantile(0.5", "histogram_quantile(0.99"} <= quantiles


async def test_a_running_proxy_exposes_every_listed_metric(
    sim: Sim, start_proxy: ProxyFactory
) -> None:
    proxy = await start_proxy(settings_for(sim.url))
    await sign_in(proxy, "10001")
    for _ in range(2):  # a miss, then a hit
        response = await proxy.client.get(REASON_CODES, headers=AGENT)
        assert response.status == 200
    scrape = await proxy.admin.get("/metrics")
    assert scrape.status == 200
    families = list(text_string_to_metric_families(await scrape.text()))
    samples = [sample for family in families for sample in family.samples]
    hits = [s for s in samples if s.name == "webproxy_cache_lookups_total" and s.labels == HIT]
    assert [s.value for s in hits] == [1.0]
    exposed = {sample.name for sample in samples}
    for family in families:  # a labelled counter with no error yet exposes only its TYPE
        exposed.update(family.name + s for s in SAMPLE_SUFFIXES.get(family.type, ("",)))
    assert DEPLOYED_METRICS <= exposed, f"not exposed: {DEPLOYED_METRICS - exposed}"


async def test_every_probe_and_scrape_answers_on_the_admin_listener(
    sim: Sim, start_proxy: ProxyFactory
) -> None:
    settings = settings_for(sim.url)
    proxy = await start_proxy(settings)
    for where, (port, path) in probe_urls().items():
        assert port == settings.admin.listen.port, where
        response = await proxy.admin.get(path)
        assert response.status == 200, f"{where}: GET {path} gave {response.status}"


async def test_the_simulators_compose_healthcheck_answers_without_credentials(sim: Sim) -> None:
    command = items(compose_service("finesse-sim"), "command")
    assert build_parser().parse_args(list(map(str, command))).command == "sim"
    test = " ".join(map(str, items(compose_service("finesse-sim"), "healthcheck", "test")))
    match = LOCAL_URL.search(test)
    assert match is not None and f"0.0.0.0:{match[1]}" in command
    async with aiohttp.ClientSession() as session, session.get(sim.url + match[2]) as response:
        assert response.status == 200


def test_dockerfile_builds_wheels_then_runs_them_as_a_non_root_user() -> None:
    stages = instructions("FROM")
    assert stages == ["python:3.11-slim AS build", "python:3.11-slim AS runtime"]
    runs = instructions("RUN")
    assert any("pip wheel --no-deps" in run for run in runs)
    assert any("from=build" in run and "pip install --no-index" in run for run in runs)
    assert any("useradd" in run and "--uid 10001" in run for run in runs)
    assert instructions("USER")[-1] == "10001"
    defaults = load_settings(None, {})
    exposed = {int(port) for port in instructions("EXPOSE")[0].split()}
    assert exposed == {defaults.server.listen.port, defaults.admin.listen.port}


def test_dockerfile_command_serves_a_config_file_copied_from_the_repository() -> None:
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["webproxy"]
    command = json.loads(instructions("CMD")[0])
    args = build_parser().parse_args(command)
    assert args.command == "serve"
    copies = [shlex.split(c) for c in instructions("COPY")]
    sources = {c[-1]: c[-2] for c in copies if not any(a.startswith("--from") for a in c)}
    source = ROOT / sources[args.config]
    assert load_settings(source, {}) == load_settings(None, {})  # the documented defaults


@pytest.mark.parametrize("pattern", [".venv", ".git", "tests", "**/__pycache__", ".mypy_cache"])
def test_dockerignore_keeps_local_state_out_of_the_build(pattern: str) -> None:
    assert pattern in (ROOT / ".dockerignore").read_text().splitlines()


def test_dockerignore_keeps_every_copied_source() -> None:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p[:1] not in "#"]
    assert not any(p.startswith("!") for p in patterns)
    for copy in instructions("COPY"):
        for source in [a for a in shlex.split(copy) if not a.startswith("--")][:-1]:
            assert (ROOT / source).exists(), source
            parts = Path(source).parts
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            assert not any(fnmatch(pre, pat) for pre in prefixes for pat in patterns), source


def test_compose_environment_points_webproxy_at_the_simulator_and_redis() -> None:
    webproxy = compose_service("webproxy")
    environ = {k: interpolated(v) for k, v in table(webproxy, "environment").items()}
    settings = load_settings(ROOT / "config" / "webproxy.toml", environ)
    sim_listen = items(compose_service("finesse-sim"), "command")[-1]
    assert urlsplit(settings.upstream.url).netloc == f"finesse-sim:{str(sim_listen).split(':')[1]}"
    assert settings.store.backend == "redis"
    assert urlsplit(settings.store.redis_url.reveal()).hostname == "redis"
    assert settings.admin.token is not None and settings.admin.listen.host == "0.0.0.0"
    proxy, admin = settings.server.listen.port, settings.admin.listen.port
    assert items(webproxy, "ports") == [f"8080:{proxy}", f"127.0.0.1:{admin}:{admin}"]
    assert set(table(webproxy, "depends_on")) == {"finesse-sim", "redis"}
    assert "volatile-lru" in items(compose_service("redis"), "command")


def test_compose_prometheus_mounts_the_scrape_config_and_the_rules_it_loads() -> None:
    mounts = [str(v).split(":") for v in items(compose_service("prometheus"), "volumes")]
    targets = {Path(target).name: (DEPLOY / source).resolve() for source, target, *_ in mounts}
    assert targets == {"prometheus.yml": SCRAPE, "alerts.yml": ALERTS}
    rule_files = items(documents(SCRAPE)[0], "rule_files")
    assert all(str(name) in targets for name in rule_files) and rule_files
    assert items(documents(ALERT_TESTS)[0], "rule_files") == [ALERTS.name]


def test_alerts_cover_hit_ratio_upstream_errors_store_errors_and_down() -> None:
    rules = [table(r) for g in items(documents(ALERTS)[0], "groups") for r in items(g, "rules")]
    assert tuple(text(rule, "alert") for rule in rules) == ALERT_NAMES
    for rule in rules:
        assert re.fullmatch(r"\d+[smh]", text(rule, "for")), rule["alert"]
        assert text(rule, "labels", "severity") in ("warning", "critical")
        assert text(rule, "annotations", "summary")


def test_sidecar_configmap_and_environment_load(tmp_path: Path) -> None:
    config = tmp_path / "webproxy.toml"
    config.write_text(text(k8s("ConfigMap"), "data", "webproxy.toml"))
    assert load_settings(config, {}).upstream.url == "http://127.0.0.1:8082"
    container, secret = pod_container("webproxy"), k8s("Secret")
    environ = {}
    for variable in items(container, "env"):
        ref = table(variable).get("valueFrom")
        name = text(variable, "name")
        if ref is None:
            environ[name] = text(variable, "value")
        else:
            assert dig(ref, "secretKeyRef", "name") == dig(secret, "metadata", "name")
            environ[name] = text(secret, "stringData", text(ref, "secretKeyRef", "key"))
    settings = load_settings(config, environ)
    assert settings.admin.token is not None and settings.admin.listen.host == "0.0.0.0"
    assert named_port(container, "proxy") == settings.server.listen.port
    assert named_port(container, "admin") == settings.admin.listen.port
    upstream_port = urlsplit(settings.upstream.url).port
    assert named_port(pod_container("finesse"), upstream_port) == upstream_port


def test_sidecar_mounts_its_config_where_its_command_reads_it() -> None:
    container = pod_container("webproxy")
    args = build_parser().parse_args(list(map(str, items(container, "args"))))
    pod = table(k8s("Deployment"), "spec", "template", "spec")
    volumes = {text(v, "name"): table(v) for v in items(pod, "volumes")}
    mounts = {text(m, "mountPath"): text(m, "name") for m in items(container, "volumeMounts")}
    volume = volumes[mounts[str(Path(args.config).parent)]]
    assert dig(volume, "configMap", "name") == dig(k8s("ConfigMap"), "metadata", "name")
    assert Path(args.config).name in table(k8s("ConfigMap"), "data")


def test_sidecar_runs_locked_down_with_resources() -> None:
    container = pod_container("webproxy")
    security = table(container, "securityContext")
    assert security["runAsNonRoot"] is True and security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert dig(security, "capabilities", "drop") == ["ALL"]
    assert str(security["runAsUser"]) == instructions("USER")[-1]
    for bound in ("requests", "limits"):
        assert set(table(container, "resources", bound)) >= {"cpu", "memory"}
    # Service links would add WEBPROXY_SERVICE_HOST & co for a Service named webproxy,
    # which load_settings rejects as unknown WEBPROXY_* variables.
    assert dig(k8s("Deployment"), "spec", "template", "spec", "enableServiceLinks") is False


def test_sidecar_service_exposes_the_proxy_port_only() -> None:
    service, pod = k8s("Service"), k8s("Deployment")
    labels = table(pod, "spec", "template", "metadata", "labels")
    assert table(service, "spec", "selector").items() <= labels.items()
    assert table(pod, "spec", "selector", "matchLabels").items() <= labels.items()
    ports = [table(p) for p in items(service, "spec", "ports")]
    container = pod_container("webproxy")
    assert [named_port(container, p["targetPort"]) for p in ports] == [8445]
    assert [p["port"] for p in ports] == [8445]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in DEPLOY.rglob("*") if p.is_file() and p.name != "README.md"),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_deploy_readme_mentions_each_file(path: Path) -> None:
    assert str(path.relative_to(DEPLOY)) in (DEPLOY / "README.md").read_text()
