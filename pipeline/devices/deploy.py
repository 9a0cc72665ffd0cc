"""The device in the loop: deploy a model folder to a device over SSH, benchmark and evaluate it there.

`edge-pipeline deploy MODEL --to [USER@]HOST[:DIR]` copies edge_runtime/ and the folder's variants,
labels and metadata.json (never model.keras) into a temporary directory on the device, checks every
file's sha256 there and renames it into place. `benchmark --on HOST` and `evaluate --on HOST` run
`python -m edge_runtime` on the device and store what it measured under the device's name in
benchmark.json and drift.json. The transport is pipeline.devices.ssh (the system ssh).
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import edge_runtime
from edge_runtime import safe_files
from edge_runtime.errors import EdgeRuntimeError, MetadataError
from edge_runtime.folder import reader as layout
from edge_runtime.folder.reader import LABELS_FILE, METADATA_FILE
from edge_runtime.text import printable

from ..choices import BackendName
from ..errors import FolderError, UnsafeTarget, UsageError
from ..folder import FolderStore, Metadata
from ..output.tables import Shown, Table
from ..progress import Reporter, SilentReporter
from . import picks, programs
from .facts import describe
from .ssh import DEFAULT_TIMEOUT, SAFE_NAME, RemoteError, Ssh, Target

REMOTE_ROOT = "~/edge-pipeline"  # default parent of deployed folders, and of the venv --setup makes
VENV = f"{REMOTE_ROOT}/venv"
# A deployed directory: the marker (the manifest of every file, sha256 each), the runtime, the model files.
MARKER = ".edge-pipeline-deploy"
RUNTIME_DIR = "runtime"
MODEL_DIR = "model"

# What --setup installs from the device's own package index, per interpreter.
SETUP_PACKAGES = {
    BackendName.LITERT: ["numpy", "pillow", "ai-edge-litert"],
    BackendName.TFLITE_RUNTIME: ["numpy<2", "pillow", "tflite-runtime"],
}


@dataclass(frozen=True)
class DeviceConfig:
    """Which device, how to reach it, and which Python there runs edge_runtime."""

    folder: Path
    target: str  # [USER@]HOST[:DIR]
    name: str | None = None  # what results are stored under; default: HOST as written
    ssh_command: str | None = None  # default: $EDGE_PIPELINE_SSH_COMMAND, else ssh
    python: str | None = None  # default: the venv --setup made, else python3
    setup: bool = False
    interpreter: BackendName = BackendName.LITERT  # what --setup installs
    timeout: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if self.interpreter not in SETUP_PACKAGES:
            raise UsageError(f"--interpreter {self.interpreter} is not one of {', '.join(SETUP_PACKAGES)}")
        if self.name is not None and not self.name.strip():
            raise UsageError("--device-name must not be empty")

    @property
    def parsed(self) -> Target:
        return Target.parse(self.target)

    @property
    def device_name(self) -> str:
        return self.name or self.parsed.host


@dataclass
class Device:
    """A connected device: its ssh, the Python that runs edge_runtime there, and where the folder goes."""

    ssh: Ssh
    python: str
    directory: str
    name: str
    facts: dict[str, Any] = field(default_factory=dict)
    board: str | None = None  # what the device says it is (/proc/device-tree/model), read before deploying
    pick: str | None = None  # the variant it runs given the folder, and why
    pick_reason: str = ""

    def program(self, source: str, argument: str, what: str, stdin: bytes | None = None) -> dict[str, Any]:
        return json.loads(self.ssh.run([self.python, "-c", source, argument], what, stdin).strip().splitlines()[-1])

    def edge_runtime(self, words: list[str], what: str) -> Any:
        """`edge_runtime WORDS` there: the deployed runtime/, run in the deployed model/ without it on sys.path.

        The completed process is returned; the caller reads failures.
        """
        boot = [self.python, "-c", programs.BOOT, f"{self.directory}/{RUNTIME_DIR}"]
        return self.ssh.call([*boot, *words], what, cwd=f"{self.directory}/{MODEL_DIR}")


def _python(config: DeviceConfig, ssh: Ssh, reporter: Reporter) -> str:
    """--python as given; else the venv --setup makes (created now with --setup), else python3."""
    if config.python and not config.setup:
        return config.python
    system = config.python or "python3"
    probe = json.loads(ssh.run([system, "-c", programs.PROBE, VENV], "looking for python").strip())
    venv_python = f"{VENV}/bin/python"
    if config.setup:
        packages = SETUP_PACKAGES[config.interpreter]
        reporter.status(f"{ssh.target.host}: setting up {VENV} with {', '.join(packages)} from its package index")
        if not probe["venv"]:
            ssh.run([system, "-m", "venv", VENV], "creating a venv")
        ssh.run([venv_python, "-m", "pip", "install", "--quiet", *packages], "installing packages with pip")
        return venv_python
    return venv_python if probe["venv"] else system


def connect(config: DeviceConfig, metadata: Metadata, reporter: Reporter | None = None) -> Device:
    reporter = reporter or SilentReporter()
    target = config.parsed
    ssh = Ssh(target, config.ssh_command, config.timeout)
    python = _python(config, ssh, reporter)
    directory = target.directory or f"{REMOTE_ROOT}/{checked_name(metadata.name)}"
    device = Device(ssh, python, directory, config.device_name)
    device.board = device.program(picks.BOARD, "", "reading the device's board").get("board") or None
    return device


def checked_name(name: str) -> str:
    """The model's name as the last part of the device's directory: only letters, digits, '.', '_', '-'."""
    if not SAFE_NAME.match(name) or name in (".", ".."):
        raise UnsafeTarget(
            f"the model's name {printable(name)!r} is not a safe directory name on a device (letters, digits, '.', '_' "
            "and '-' only); pass --to HOST:DIR"
        )
    return name


def _model_files(view: layout.FolderView, device: Device) -> dict[str, bytes]:
    """The files the folder's contract names, as its last commit wrote them, each checked against metadata.json.

    Only regular files inside the folder (a symlink that leaves it is refused), only `model_<variant>.tflite`,
    labels.txt and metadata.json: never model.keras, never anything else a folder may hold. The device's copy of
    metadata.json names the variant picked for it (pipeline.devices.picks).
    """
    raw = layout.metadata_bytes(view)
    metadata = layout.parse_metadata(raw, view.folder / METADATA_FILE)
    pick, device.pick_reason = picks.pick_for(metadata, device.name, device.board)
    device.pick = pick or metadata.recommended
    if pick is not None and pick in metadata.variants and pick != metadata.recommended:
        raw = picks.with_pick(raw, pick)
    files = {f"{MODEL_DIR}/{METADATA_FILE}": raw}
    for variant in metadata.variants.values():
        content = view.read(variant.file, safe_files.MODEL_FILE_BYTES, "model file", MetadataError)
        layout.verify_content(content, view.folder / variant.file, variant)
        files[f"{MODEL_DIR}/{variant.file}"] = content
    if view.exists(LABELS_FILE):
        labels = view.read(LABELS_FILE, safe_files.LABELS_BYTES, "labels file", MetadataError)
        recorded = metadata.files.get(LABELS_FILE)
        if recorded is None or hashlib.sha256(labels).hexdigest() != recorded["sha256"]:
            raise MetadataError(f"{view.folder / LABELS_FILE}: does not match its sha256 in metadata.json")
        files[f"{MODEL_DIR}/{LABELS_FILE}"] = labels
    return files


def _payload(folder: FolderStore, device: Device) -> dict[str, bytes]:
    """What goes to the device: edge_runtime's sources and the folder's variants, labels and metadata."""
    package = Path(edge_runtime.__file__).parent
    files = {
        f"{RUNTIME_DIR}/edge_runtime/{p.relative_to(package).as_posix()}": p.read_bytes()
        for p in sorted(package.rglob("*.py"))
        if "__pycache__" not in p.parts
    }
    try:
        files.update(layout.read_consistent(folder.path, lambda view: _model_files(view, device)))
    except EdgeRuntimeError as error:
        raise FolderError(str(error)) from None
    return files


def _archive(files: dict[str, bytes]) -> tuple[bytes, dict[str, str]]:
    manifest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    listing = json.dumps({"files": manifest, "deployed_at": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode()
    stream = io.BytesIO()
    with tarfile.open(fileobj=stream, mode="w") as tar:
        for name, data in {**files, MARKER: listing}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return stream.getvalue(), manifest


@dataclass(repr=False)
class DeployResult(Shown):
    """What deploy copied where, and the device's facts."""

    device: str
    directory: str
    files: int
    bytes: int
    copied: bool  # False when the device already had every file
    facts: dict[str, Any]
    pick: str | None = None  # the variant the device runs given the folder
    pick_reason: str = ""

    def summary(self) -> str:
        state = "copied and verified" if self.copied else "already there"
        return f"{self.device}: {self.files} files ({self.bytes / 1024:,.0f} KB) {state} in {self.directory}"

    def table(self) -> Table:
        rows = [["files", self.summary()], ["device", describe(self.facts)]]
        rows.append(["runs", f"{self.pick or 'the preferred variant'} given the folder: {self.pick_reason}"])
        return Table(f"deployed to {self.device}", ["", ""], rows, header=False)


def ensure_deployed(device: Device, folder: FolderStore, metadata: Metadata, force: bool = False) -> DeployResult:
    """Copy the folder unless the device already holds exactly these files; then read the device's facts."""
    files = _payload(folder, device)
    archive, manifest = _archive(files)
    there = device.program(programs.STATUS, device.directory, "checking what is deployed")
    copied = force or there["files"] != manifest
    if copied:
        device.program(programs.RECEIVE, device.directory, "copying the model folder", stdin=archive)
    device.facts = read_facts(device)
    size = sum(map(len, files.values()))
    return DeployResult(
        device.name, device.directory, len(files), size, copied, device.facts, device.pick, device.pick_reason
    )


def read_facts(device: Device) -> dict[str, Any]:
    done = device.edge_runtime(["device-facts"], "reading the device's facts")
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace")
        if "No module named 'numpy'" in stderr or "No module named numpy" in stderr:
            raise RemoteError(f"{device.ssh.target.host}: {device.python} has no numpy; run with --setup")
        raise RemoteError(device.ssh.explain(done, "reading the device's facts", [device.python]))
    facts = json.loads(done.stdout)
    if facts.get("interpreter") is None:
        raise RemoteError(
            f"{device.ssh.target.host}: no TFLite interpreter for {device.python} "
            "(run with --setup, or install ai-edge-litert or tflite-runtime there)"
        )
    return facts


def deploy(config: DeviceConfig, reporter: Reporter | None = None) -> DeployResult:
    """`edge-pipeline deploy`: copy (always) and verify the folder on the device."""
    reporter = reporter or SilentReporter()
    folder = FolderStore(config.folder)
    metadata = folder.load()
    device = connect(config, metadata, reporter)
    reporter.status(f"{device.ssh.target.host}: deploying to {device.directory} with {device.python}")
    return ensure_deployed(device, folder, metadata, force=True)
