"""Small Python programs run on the device with `python -c`, before edge_runtime is there to import.

Kept to the standard library and Python 3.7 syntax (Raspberry Pi OS and Debian releases ship
3.7 to 3.13). Each prints one JSON line on success; a failure leaves the device as it was.
"""

from __future__ import annotations

# Unpack a tar stream from stdin beside the target directory, check every file against the manifest
# inside it, then swap it into place; the old copy is removed only after. The target is replaced only
# when it is empty or carries the marker an earlier deploy left (or the older layout's deployed.json):
# anything else is refused, so a hostile or mistaken DIR can never delete what was there.
RECEIVE = r"""
import glob, hashlib, io, json, os, re, shutil, sys, tarfile, tempfile, time
MARKER, LEGACY = ".edge-pipeline-deploy", "deployed.json"
ALLOWED = re.compile(
    r"^(\.edge-pipeline-deploy|runtime/edge_runtime/([a-z][a-z0-9_]*/)?[a-z_][a-z0-9_]*\.py"
    r"|model/(model_[a-z0-9][a-z0-9.-]*\.tflite|labels\.txt|metadata\.json))$"
)
target = os.path.abspath(os.path.expanduser(sys.argv[1]))
parent, base = os.path.split(target)
def ours(path):
    if os.path.isfile(os.path.join(path, MARKER)):
        return True
    try:
        with open(os.path.join(path, LEGACY)) as stream:
            return isinstance(json.load(stream).get("files"), dict)
    except (OSError, ValueError, AttributeError):
        return False
if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
    sys.exit("refused: " + target + " exists and was not made by edge-pipeline deploy; choose another DIR or remove it")
if os.path.isdir(target) and os.listdir(target) and not ours(target):
    sys.exit("refused: " + target + " exists and was not made by edge-pipeline deploy; choose another DIR or remove it")
os.makedirs(parent, exist_ok=True)
for stale in glob.glob(os.path.join(glob.escape(parent), "." + glob.escape(base) + ".[to][ml][pd]-*")):
    if time.time() - os.path.getmtime(stale) > 3600 and not os.path.islink(stale):  # a deploy cut off long ago
        shutil.rmtree(stale, ignore_errors=True)
temp = tempfile.mkdtemp(prefix="." + base + ".tmp-", dir=parent)
os.chmod(temp, 0o755)
try:
    with tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode="r:") as tar:
        for member in tar.getmembers():
            if not member.isfile() or not ALLOWED.match(member.name):
                sys.exit("refusing unexpected archive member " + repr(member.name))
            path = os.path.join(temp, *member.name.split("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                shutil.copyfileobj(tar.extractfile(member), out)
    with open(os.path.join(temp, MARKER)) as stream:
        manifest = json.load(stream)
    for name, digest in manifest["files"].items():
        with open(os.path.join(temp, *name.split("/")), "rb") as stream:
            if hashlib.sha256(stream.read()).hexdigest() != digest:
                sys.exit("checksum mismatch on arrival: " + name)
    old = None
    if os.path.isdir(target):
        old = tempfile.mkdtemp(prefix="." + base + ".old-", dir=parent)
        os.rmdir(old)
        os.rename(target, old)
    try:
        os.rename(temp, target)
    except BaseException:
        if old:
            os.rename(old, target)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)
    print(json.dumps({"directory": target, "files": len(manifest["files"])}))
except BaseException:
    shutil.rmtree(temp, ignore_errors=True)
    raise
"""

# What is deployed there and still intact: {"files": {name: sha256}} of the marker's files that match.
STATUS = r"""
import hashlib, json, os, sys
target = os.path.expanduser(sys.argv[1])
found = {}
try:
    with open(os.path.join(target, ".edge-pipeline-deploy")) as stream:
        listed = json.load(stream)["files"]
except (OSError, ValueError, KeyError, TypeError):
    listed = {}
for name, digest in listed.items():
    try:
        with open(os.path.join(target, *name.split("/")), "rb") as stream:
            if hashlib.sha256(stream.read()).hexdigest() == digest:
                found[name] = digest
    except OSError:
        pass
print(json.dumps({"directory": os.path.abspath(target), "files": found}))
"""

# Run edge_runtime from the deployed runtime/ directory with the current directory (the model files)
# taken off sys.path before anything is imported (sys and os are loaded at start-up), so a model
# folder can never provide a module the device imports. Not `python -I`: that would also drop
# PYTHONPATH, which `pip install --target` set-ups (the emulated Pi's among them) rely on.
BOOT = (
    "import os, sys; here = os.getcwd(); "
    "sys.path[:] = [sys.argv.pop(1)] + [p for p in sys.path if p and os.path.abspath(p) != here]; "
    "import runpy; runpy.run_module('edge_runtime', run_name='__main__', alter_sys=True)"
)

# Write stdin to a file through a temporary name.
PUT = r"""
import json, os, sys
path = os.path.expanduser(sys.argv[1])
temp = path + ".tmp-" + str(os.getpid())
try:
    with open(temp, "wb") as out:
        out.write(sys.stdin.buffer.read())
    os.replace(temp, path)
except BaseException:
    if os.path.exists(temp):
        os.remove(temp)
    raise
print(json.dumps({"path": path, "bytes": os.path.getsize(path)}))
"""

REMOVE = r"""
import os, sys
path = os.path.expanduser(sys.argv[1])
if os.path.exists(path):
    os.remove(path)
"""

# Does the venv that --setup makes exist? (so later commands use it without --python)
PROBE = r"""
import json, os, sys
venv = os.path.expanduser(sys.argv[1])
print(json.dumps({"venv": os.path.exists(os.path.join(venv, "bin", "python"))}))
"""
