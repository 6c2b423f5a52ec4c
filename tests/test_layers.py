"""The stages import downward only: core <- runtime <- {web, export, training}, web <- bridge, training <- export.

Every import statement of every module is read (module level and inside functions alike), so a
lazy import that crosses a layer fails here too. The one exception is the CLI's dispatch:
deepbeat.cli names each stage's command module as a string and imports it at run time.
"""
import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# folder -> the package it installs as (setup.cfg's package_dir)
STAGES = {"core": "deepbeat", "runtime": "deepbeat.runtime", "bridge": "deepbeat.bridge",
          "export": "deepbeat.export", "training": "deepbeat.training", "web": "deepbeat.web"}
# The contract: the stages each stage may import. Nothing imports the bridge.
ALLOWED = {
    "core": set(),
    "runtime": {"core"},
    "web": {"core", "runtime"},
    "bridge": {"core", "runtime", "web"},
    "training": {"core", "runtime"},
    "export": {"core", "runtime", "training"},
}
# Third-party packages only the training stack may use ([train] extra).
TRAINING_ONLY = {"tensorflow", "keras", "tf2onnx", "onnx", "tensorboard"}
MAY_USE_TRAINING_STACK = {"training", "export"}


def stage_of(module):
    """The stage of a deepbeat module name, or None for a third-party module."""
    if module != "deepbeat" and not module.startswith("deepbeat."):
        return None
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES and parts[1] != "core" else "core"


def imports(path, package):
    """Absolute names of every module `path` imports (relative imports resolved against `package`)."""
    tree = ast.parse(path.read_text(), str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


def edges():
    """(importing stage, module file, imported module) for every import in the product code."""
    for folder, package in STAGES.items():
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            for name in imports(path, package):
                yield folder, path.relative_to(REPO_ROOT), name


EDGES = list(edges())


def test_the_import_graph_was_read():
    stages = {(stage, stage_of(name)) for stage, _, name in EDGES if stage_of(name) not in (None, stage)}
    assert ("bridge", "runtime") in stages and ("export", "training") in stages and ("runtime", "core") in stages


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_imports_only_the_stages_below_it(stage):
    crossing = [f"{path}: imports {name}" for importer, path, name in EDGES
                if importer == stage and stage_of(name) not in (None, stage) and stage_of(name) not in ALLOWED[stage]]
    assert crossing == []


@pytest.mark.parametrize("stage", sorted(set(STAGES) - MAY_USE_TRAINING_STACK))
def test_the_runtime_install_needs_no_training_stack(stage):
    heavy = [f"{path}: imports {name}" for importer, path, name in EDGES
             if importer == stage and name.split(".")[0] in TRAINING_ONLY]
    assert heavy == []


def test_the_cli_finds_stage_commands_by_name_only():
    from deepbeat.cli import COMMAND_MODULES

    assert {stage_of(name) for name in COMMAND_MODULES} == {"core", "runtime", "bridge", "export", "training", "web"}


def test_a_crossing_import_is_caught(tmp_path):
    """The checker itself: an import of the bridge from the runtime, at function level, is seen."""
    module = tmp_path / "probe.py"
    module.write_text("def f():\n    from ..bridge import scheduler\n    import deepbeat.bridge.clock\n")
    found = imports(module, "deepbeat.runtime")
    assert found == ["deepbeat.bridge", "deepbeat.bridge.clock"]
    assert {stage_of(name) for name in found} == {"bridge"} and "bridge" not in ALLOWED["runtime"]
