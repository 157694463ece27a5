"""Static checks of docker-compose.yml and the Dockerfile (no Docker engine, no network).

* The compose file validates against the Compose Specification schema (``check-jsonschema
  --builtin-schema vendor.compose-spec``, always) and, where Debian's ``docker-compose`` 1.29 is
  on PATH, ``docker-compose config -q`` accepts it too.
* Its contents match what Footprint needs: every ``FOOTPRINT_*`` variable is a Settings field, the
  server URLs point at services of the file and pass Settings validation, start-up order relies on
  health checks, the images and commands are the required ones, data lives in named volumes.
* Nothing is open by default: no secret has a default value (``${VAR:?message}``, from ``.env``,
  whose template is ``.env.example``), the app runs with ``FOOTPRINT_ENV=production``, and only the
  API is published beyond the host's loopback.

``${VAR:-default}`` in the file is read as its default (the variables of the shell running the
tests are ignored), which is what ``docker compose up`` uses without a ``.env`` file; a required
``${VAR:?message}`` is read as a fresh random secret, as an operator's ``.env`` would give it.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from footprint.settings import ENV_PREFIX, Settings, SettingsError
from footprint.settings_secrets import KNOWN_SECRETS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

# Settings field -> (service it must point at, allowed URL schemes, port)
SERVER_URLS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "kafka_url": ("kafka", ("kafka",), 9092),
    "postgres_url": ("postgres", ("postgresql", "postgres"), 5432),
    "clickhouse_url": ("clickhouse", ("clickhouse",), 9000),
    "redis_url": ("redis", ("redis", "rediss"), 6379),
}
APP_SERVICES = ("migrate", "worker", "api")
BACKING_SERVICES = ("kafka", "postgres", "clickhouse", "redis")
WORKER_COMMAND = ["faust", "-A", "streams.app", "worker", "-l", "info"]
API_COMMAND = ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
MIGRATE_COMMAND = ["footprint", "migrate"]
IMAGES: dict[str, tuple[str, str]] = {
    "kafka": (r"apache/kafka(:[\w.-]+)?", "the official apache/kafka image"),
    "postgres": (r"postgres:17([.-][\w.-]*)?", "postgres:17"),
    "clickhouse": (r"clickhouse/clickhouse-server:25\.\d+([.-][\w.-]*)?", "clickhouse 25.x"),
    "redis": (r"redis:7([.-][\w.-]*)?", "redis:7*"),
}
# Where each backing service keeps its data inside its container.
DATA_PATHS = {
    "kafka": "/var/lib/kafka/data",
    "postgres": "/var/lib/postgresql/data",
    "clickhouse": "/var/lib/clickhouse",
    "redis": "/data",
}

_VAR = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$(?P<bare>\w+)")
# Variables that hold secrets: never a default in the file, always required.
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|_KEY\b|CREDENTIAL")
# What an operator's .env gives each required variable (one value per name, for the whole file).
OPERATOR_ENV: dict[str, str] = {}
# Ports published on every interface: the API (ingest from browsers, stats with a token).
PUBLIC_PORTS = {("api", "8000")}


def interpolate(value: str) -> str:
    """Resolve compose interpolation the way a bare ``docker compose up`` would."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("name") or m.group("bare")
        op = m.group("op")
        if op in (":-", "-"):
            return m.group("arg")
        if op in (":?", "?"):
            return OPERATOR_ENV.setdefault(name, secrets.token_hex(32))
        raise AssertionError(
            f"docker-compose.yml: ${{{name}}} has neither a default (${{{name}:-...}}) nor "
            f"a message for when it is missing (${{{name}:?...}})"
        )

    return _VAR.sub(sub, value)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return interpolate("" if value is None else str(value))


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE.is_file(), f"{COMPOSE} is missing"
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict), "docker-compose.yml is not a YAML mapping"
    assert isinstance(data.get("services"), dict), "docker-compose.yml has no `services:` mapping"
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svcs = compose["services"]
    missing = [s for s in (*BACKING_SERVICES, *APP_SERVICES) if s not in svcs]
    assert not missing, f"docker-compose.yml lacks the service(s) {missing}"
    return svcs


def env_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, interpolated, whichever syntax it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        return {k: _scalar(v) for k, v in pairs}
    return {str(k): _scalar(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command")
    if cmd is None:
        return []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


# --- (a) validators ---------------------------------------------------------------------------


def test_compose_file_matches_compose_spec_schema() -> None:
    assert find_spec("check_jsonschema") is not None, (
        "check-jsonschema is not installed in this interpreter "
        f"({sys.executable}): install the dev extras, `pip install -e '.[dev]'`"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, (
        "docker-compose.yml does not match the Compose Specification schema:\n"
        f"{proc.stdout}\n{proc.stderr}"
    )


def _docker_compose_config(env_file: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose not on PATH; the compose-spec schema check still ran")
    # Only the file's own defaults: no FOOTPRINT_/password variables from this shell.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FOOTPRINT_", "POSTGRES_", "CLICKHOUSE_", "KAFKA_"))
    }
    # --env-file: never an operator's own .env next to the file.
    env_args = ["--env-file", str(env_file)]
    return subprocess.run(
        [exe, "-f", str(COMPOSE), *env_args, "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )


def test_docker_compose_config_accepts_file_with_the_env_example() -> None:
    proc = _docker_compose_config(ENV_EXAMPLE)
    assert proc.returncode == 0, (
        f"`docker-compose -f docker-compose.yml --env-file .env.example config -q` rejects the "
        f"file:\n{proc.stdout}\n{proc.stderr}"
    )


def test_docker_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    empty = tmp_path / ".env"
    empty.write_text("")
    proc = _docker_compose_config(empty)
    assert proc.returncode != 0, "docker-compose accepted the file without any secret set"
    # It stops at the first missing one and shows its message.
    assert "in .env (see .env.example)" in proc.stderr, proc.stderr


# --- (b) contents -----------------------------------------------------------------------------


def test_footprint_variables_are_settings_fields(compose: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    unknown = []
    blocks = {f"services.{n}": env_of(s) for n, s in compose["services"].items()}
    for key, value in compose.items():  # x-* extension blocks holding environments
        if key.startswith("x-") and isinstance(value, dict):
            blocks[key] = {str(k): _scalar(v) for k, v in value.items()}
    for where, env in blocks.items():
        for name in env:
            if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() not in fields:
                unknown.append(f"{where}: {name}")
    assert not unknown, (
        "these FOOTPRINT_* variables are not fields of footprint.settings.Settings "
        f"(FOOTPRINT_X must match field `x`): {unknown}"
    )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_have_all_server_urls(services: dict[str, Any], name: str) -> None:
    env = env_of(services[name])
    missing = [
        f"{ENV_PREFIX}{field.upper()}"
        for field in SERVER_URLS
        if not env.get(f"{ENV_PREFIX}{field.upper()}")
    ]
    assert not missing, f"service `{name}` does not set {missing}"


def test_app_services_share_one_environment(services: dict[str, Any]) -> None:
    envs = {name: env_of(services[name]) for name in APP_SERVICES}
    urls = {
        name: {k: v for k, v in env.items() if k.endswith("_URL")} for name, env in envs.items()
    }
    assert urls["worker"] == urls["api"] == urls["migrate"], (
        f"migrate, worker and api must point at the same servers: {urls}"
    )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_server_urls_point_at_services_and_validate(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_of(services[name])
    for field, (target, schemes, port) in SERVER_URLS.items():
        var = f"{ENV_PREFIX}{field.upper()}"
        url = env[var]
        parts = urlsplit(url)
        assert parts.scheme in schemes, f"{name}: {var}={url!r}: scheme must be one of {schemes}"
        hosts = parts.netloc.split(",") if field == "kafka_url" else [parts.netloc]
        for hostport in hosts:
            host = urlsplit(f"x://{hostport}")
            assert host.hostname in services, (
                f"{name}: {var}={url!r}: host {host.hostname!r} is not a service of "
                f"docker-compose.yml ({sorted(services)})"
            )
            assert host.hostname == target, f"{name}: {var} must point at `{target}`, not {url!r}"
            assert host.port == port, f"{name}: {var}={url!r}: `{target}` listens on {port}"

    # Exactly what the container gets: the service's whole environment through pydantic-settings.
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
    except Exception as e:  # pydantic ValidationError: show which variable
        pytest.fail(f"service `{name}`: its environment fails Settings validation:\n{e}")
    for field in SERVER_URLS:
        assert getattr(settings, field) == env[f"{ENV_PREFIX}{field.upper()}"], field


def test_database_urls_match_server_credentials(services: dict[str, Any]) -> None:
    env = env_of(services["api"])
    for field, service, prefix in (
        ("postgres_url", "postgres", "POSTGRES"),
        ("clickhouse_url", "clickhouse", "CLICKHOUSE"),
    ):
        url = urlsplit(env[f"{ENV_PREFIX}{field.upper()}"])
        server = env_of(services[service])
        expected = (
            server.get(f"{prefix}_USER"),
            server.get(f"{prefix}_PASSWORD"),
            server.get(f"{prefix}_DB"),
        )
        got = (url.username, url.password, url.path.lstrip("/"))
        assert got == expected, (
            f"{ENV_PREFIX}{field.upper()} (user, password, db) {got} does not match the "
            f"`{service}` service's {prefix}_USER/_PASSWORD/_DB {expected}"
        )


def test_depends_on_waits_for_health_or_completion(services: dict[str, Any]) -> None:
    problems = []
    for name, svc in services.items():
        deps = svc.get("depends_on")
        if deps is None:
            continue
        if not isinstance(deps, dict):
            problems.append(f"{name}: depends_on must be the long form with a `condition`")
            continue
        for dep, spec in deps.items():
            cond = (spec or {}).get("condition")
            target = services.get(dep)
            if target is None:
                problems.append(f"{name} -> {dep}: no such service")
            elif cond == "service_healthy":
                hc = target.get("healthcheck") or {}
                if not hc.get("test") or hc.get("disable"):
                    problems.append(
                        f"{name} -> {dep}: service_healthy but {dep} has no healthcheck"
                    )
            elif cond == "service_completed_successfully":
                if str(target.get("restart", "no")) != "no":
                    problems.append(
                        f"{name} -> {dep}: service_completed_successfully needs a one-shot "
                        f'(restart: "no"), {dep} has restart: {target.get("restart")}'
                    )
            else:
                problems.append(
                    f"{name} -> {dep}: condition must be service_healthy or "
                    f"service_completed_successfully (got {cond!r})"
                )
    assert not problems, "depends_on problems:\n  " + "\n  ".join(problems)


def test_start_up_order(services: dict[str, Any]) -> None:
    for name in ("worker", "api"):
        deps = services[name].get("depends_on") or {}
        assert deps.get("migrate", {}).get("condition") == "service_completed_successfully", (
            f"{name} must wait for migrate (condition: service_completed_successfully)"
        )
        missing = [s for s in BACKING_SERVICES if s not in deps]
        assert not missing, f"{name} must depend on {missing}"
    missing = [
        s
        for s in ("kafka", "postgres", "clickhouse")
        if s not in (services["migrate"].get("depends_on") or {})
    ]
    assert not missing, f"migrate must wait for {missing}"


@pytest.mark.parametrize("name", (*BACKING_SERVICES, "api"))
def test_healthchecks_present(services: dict[str, Any], name: str) -> None:
    hc = services[name].get("healthcheck") or {}
    assert hc.get("test") and not hc.get("disable"), f"service `{name}` needs a healthcheck"
    if name == "api":
        assert "/health" in " ".join(map(str, hc["test"])), "the api healthcheck must hit /health"


@pytest.mark.parametrize(
    ("name", "expected"),
    [("worker", WORKER_COMMAND), ("api", API_COMMAND), ("migrate", MIGRATE_COMMAND)],
)
def test_app_commands(services: dict[str, Any], name: str, expected: list[str]) -> None:
    got = command_of(services[name])
    assert got == expected, (
        f"service `{name}` command must be exactly `{' '.join(expected)}`, got `{' '.join(got)}`"
    )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_build_from_dockerfile(services: dict[str, Any], name: str) -> None:
    build = services[name].get("build")
    assert build is not None, f"service `{name}` must be built from the repository's Dockerfile"
    context = build if isinstance(build, str) else build.get("context", ".")
    dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
    assert (ROOT / context).resolve() == ROOT, f"service `{name}`: build context must be `.`"
    assert (ROOT / context / dockerfile).resolve() == DOCKERFILE, (
        f"service `{name}`: build must use {DOCKERFILE.name}"
    )


@pytest.mark.parametrize("name", BACKING_SERVICES)
def test_images(services: dict[str, Any], name: str) -> None:
    pattern, wanted = IMAGES[name]
    image = str(services[name].get("image", ""))
    assert re.fullmatch(pattern, image), f"service `{name}` must use {wanted}, got {image!r}"


def test_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set((compose.get("volumes") or {}).keys())
    problems = []
    for name, svc in services.items():
        for vol in svc.get("volumes") or []:
            if isinstance(vol, dict):
                source, kind = vol.get("source"), vol.get("type", "volume")
            else:
                source = str(vol).split(":", 1)[0]
                kind = "bind" if source.startswith(("/", ".", "~", "$")) else "volume"
            if kind == "volume" and source not in declared:
                problems.append(
                    f"{name}: volume {source!r} is not declared under top-level volumes"
                )
    for name, path in DATA_PATHS.items():
        mounts = {}
        for vol in services[name].get("volumes") or []:
            if isinstance(vol, str) and ":" in vol:
                source, target = vol.split(":")[:2]
                mounts[target] = source
            elif isinstance(vol, dict):
                mounts[vol.get("target")] = vol.get("source")
        if mounts.get(path) not in declared:
            problems.append(f"{name}: {path} must be a named volume declared at the top level")
    assert not problems, "volume problems:\n  " + "\n  ".join(problems)


def test_kafka_is_single_node_kraft(services: dict[str, Any]) -> None:
    env = env_of(services["kafka"])
    node = env.get("KAFKA_NODE_ID")
    assert node, "kafka: KAFKA_NODE_ID is not set"
    roles = set((env.get("KAFKA_PROCESS_ROLES") or "").split(","))
    assert roles == {"broker", "controller"}, "kafka: KAFKA_PROCESS_ROLES must be broker,controller"
    controller = env.get("KAFKA_CONTROLLER_LISTENER_NAMES", "")
    assert controller, "kafka: KAFKA_CONTROLLER_LISTENER_NAMES is not set"
    assert f"{controller}://" in env.get("KAFKA_LISTENERS", ""), (
        f"kafka: KAFKA_LISTENERS must include the {controller} listener"
    )
    assert "://kafka:9092" in env.get("KAFKA_ADVERTISED_LISTENERS", ""), (
        "kafka: KAFKA_ADVERTISED_LISTENERS must advertise kafka:9092 to other containers"
    )
    voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")
    assert re.fullmatch(rf"{re.escape(node)}@kafka:\d+", voters), (
        f"kafka: KAFKA_CONTROLLER_QUORUM_VOTERS must be {node}@kafka:PORT, got {voters!r}"
    )
    for key, value in {
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
    }.items():
        assert env.get(key) == value, f"kafka: {key} must be {value}, got {env.get(key)!r}"
    assert env.get("KAFKA_LOG_DIRS") == DATA_PATHS["kafka"], (
        f"kafka: KAFKA_LOG_DIRS must be the data volume's path {DATA_PATHS['kafka']}"
    )


def test_clickhouse_server_settings(services: dict[str, Any]) -> None:
    svc = services["clickhouse"]
    env = env_of(svc)
    for key in ("CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_DB"):
        assert env.get(key), f"clickhouse: {key} is not set"
    assert env.get("CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT") == "1", (
        "clickhouse: CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT must be 1"
    )
    nofile = (svc.get("ulimits") or {}).get("nofile")
    assert nofile, "clickhouse: set ulimits.nofile (ClickHouse wants 262144)"


def test_api_port_published(services: dict[str, Any]) -> None:
    ports = [
        str(p.get("target")) if isinstance(p, dict) else str(p)
        for p in services["api"].get("ports") or []
    ]
    assert any(p == "8000" or p.endswith(":8000") for p in ports), (
        f"api must publish container port 8000, has {ports}"
    )


def published(service: dict[str, Any]) -> list[str]:
    """Container ports a service publishes."""
    return [
        str(p.get("target")) if isinstance(p, dict) else str(p).rsplit(":", 1)[-1]
        for p in service.get("ports") or []
    ]


def test_kafka_ui_watches_the_broker(services: dict[str, Any]) -> None:
    ui = services.get("kafka-ui")
    assert ui is not None, "docker-compose.yml needs a `kafka-ui` service (topics, lag, messages)"
    image = str(ui.get("image", ""))
    assert re.fullmatch(r"(kafbat|provectuslabs)/kafka-ui:[\w.-]+", image), (
        f"kafka-ui must use kafbat/kafka-ui or provectuslabs/kafka-ui with a tag, got {image!r}"
    )
    assert image.split(":")[1] != "latest", "pin the kafka-ui image to a version"
    env = env_of(ui)
    assert env.get("KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS") == "kafka:9092", (
        "kafka-ui must reach the broker as kafka:9092 (the listener advertised to containers)"
    )
    deps = ui.get("depends_on") or {}
    assert (deps.get("kafka") or {}).get("condition") == "service_healthy", (
        "kafka-ui must wait for kafka (condition: service_healthy)"
    )
    assert "8080" in published(ui), f"kafka-ui must publish port 8080, has {published(ui)}"


def test_worker_serves_metrics(services: dict[str, Any]) -> None:
    worker = services["worker"]
    port = env_of(worker).get(f"{ENV_PREFIX}WORKER_METRICS_PORT", "0")
    assert port.isdigit() and int(port) > 0, "the worker must serve /metrics (a port, not 0)"
    assert port in published(worker) or port in map(str, worker.get("expose") or []), (
        f"the worker's metrics port {port} must be published or exposed"
    )


# --- nothing open by default --------------------------------------------------------------


def test_no_secret_has_a_default() -> None:
    text = COMPOSE.read_text()
    problems = []
    for m in _VAR.finditer(text):
        name = m.group("name") or m.group("bare")
        if not name or not SECRET_NAME.search(name):
            continue
        if m.group("op") not in (":?",):
            problems.append(f"{m.group(0)}: a secret must be required, ${{{name}:?message}}")
    assert not problems, "secrets with a default or without a message:\n  " + "\n  ".join(problems)
    required = {m.group("name") for m in _VAR.finditer(text) if m.group("op") == ":?"}
    for name in KNOWN_SECRETS:
        assert f"{ENV_PREFIX}{name.upper()}" in required, (
            f"{ENV_PREFIX}{name.upper()} must come from .env: ${{{ENV_PREFIX}{name.upper()}:?...}}"
        )


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_run_in_production(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_of(services[name])
    assert env.get(f"{ENV_PREFIX}ENV") == "production", (
        f"service `{name}` must set FOOTPRINT_ENV=production: published secrets are then refused"
    )
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # With the operator's fresh secrets the API starts (the check passes, bound to 0.0.0.0) ...
    Settings(_env_file=None).enforce_secrets("0.0.0.0")  # type: ignore[call-arg]
    # ... and with the template's placeholders left in place it refuses, naming each variable.
    example = env_example()
    for key in env:
        if key in example:
            monkeypatch.setenv(key, example[key])
    with pytest.raises(SettingsError) as refused:
        Settings(_env_file=None).enforce_secrets("0.0.0.0")  # type: ignore[call-arg]
    for field in KNOWN_SECRETS:
        assert f"{ENV_PREFIX}{field.upper()}" in str(refused.value)


def host_bindings(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(host address, container port) of each published port; "" is every interface."""
    found = []
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            found.append((str(port.get("host_ip", "")), str(port.get("target"))))
            continue
        parts = str(port).split(":")
        host = parts[0] if len(parts) == 3 else ""
        found.append((host, parts[-1].split("/")[0]))
    return found


def test_only_the_api_is_published_beyond_loopback(services: dict[str, Any]) -> None:
    exposed = [
        f"{name}: {host or '0.0.0.0'}:{port}"
        for name, svc in services.items()
        for host, port in host_bindings(svc)
        if host not in ("127.0.0.1", "::1", "[::1]") and (name, port) not in PUBLIC_PORTS
    ]
    assert not exposed, (
        f"published on every interface (use 127.0.0.1:HOST:CONTAINER, or do not publish): {exposed}"
    )
    for name in BACKING_SERVICES:
        if name != "kafka":  # its host listener is published on loopback for local tools
            assert not services[name].get("ports"), f"{name} must not be published"


def env_example() -> dict[str, str]:
    """The variables of .env.example."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def test_env_example_lists_every_required_variable_and_how_to_make_one() -> None:
    assert ENV_EXAMPLE.is_file(), ".env.example is missing"
    required = {
        m.group("name") for m in _VAR.finditer(COMPOSE.read_text()) if m.group("op") == ":?"
    }
    example = env_example()
    assert required <= set(example), f".env.example lacks {sorted(required - set(example))}"
    text = ENV_EXAMPLE.read_text()
    assert "openssl rand -hex 32" in text and "secrets.token_hex(32)" in text
    for key in KNOWN_SECRETS:
        value = example[f"{ENV_PREFIX}{key.upper()}"]
        assert value in KNOWN_SECRETS[key], f"{key}: the placeholder {value!r} must be refused"
    assert ".env" in (ROOT / ".gitignore").read_text().split(), ".env must be ignored by git"


# --- the image ---------------------------------------------------------------------------------


def test_dockerfile_basics() -> None:
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    lines = [
        ln.strip()
        for ln in DOCKERFILE.read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    froms = [ln.split()[1] for ln in lines if ln.upper().startswith("FROM ")]
    assert froms and froms[-1] == "python:3.11-slim", (
        f"final stage must be python:3.11-slim: {froms}"
    )
    users = [ln.split()[1] for ln in lines if ln.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root USER"
    assert any(re.match(r"COPY\s+sql\s", ln) for ln in lines), "the image must COPY sql/"
    assert any("pip install" in ln and re.search(r"\s\.(\s|$)", ln) for ln in lines), (
        "the image must `pip install .`"
    )
    cmd = [ln for ln in lines if ln.upper().startswith("CMD ")]
    assert cmd and "uvicorn" in cmd[-1] and "api.main:app" in cmd[-1], "CMD must start uvicorn"


def test_dockerignore_keeps_what_the_image_needs() -> None:
    assert DOCKERIGNORE.is_file(), ".dockerignore is missing"
    patterns = {
        ln.strip().rstrip("/")
        for ln in DOCKERIGNORE.read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    }
    needed = {"pyproject.toml", "sql", "footprint", "streams", "api", "schemas"}
    assert not (patterns & needed), f".dockerignore excludes {patterns & needed}"
    assert ".git" in patterns, ".dockerignore should exclude .git"
