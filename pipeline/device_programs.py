"""Small Python programs run on the device with `python -c`, before edge_runtime is there to import.

Kept to the standard library and Python 3.7 syntax (Raspberry Pi OS and Debian releases ship
3.7 to 3.13). Each prints one JSON line on success; a failure leaves the device as it was.
"""

from __future__ import annotations

# Unpack a tar stream from stdin beside the target directory, check every file against the
# manifest inside it (deployed.json), then swap it into place; the old copy is removed only after.
RECEIVE = r"""
import glob, hashlib, io, json, os, shutil, sys, tarfile, tempfile, time
target = os.path.abspath(os.path.expanduser(sys.argv[1]))
parent, base = os.path.split(target)
os.makedirs(parent, exist_ok=True)
for stale in glob.glob(os.path.join(glob.escape(parent), "." + glob.escape(base) + ".[to][ml][pd]-*")):
    if time.time() - os.path.getmtime(stale) > 3600:  # left by a deploy that was cut off an hour ago or more
        shutil.rmtree(stale, ignore_errors=True)
temp = tempfile.mkdtemp(prefix="." + base + ".tmp-", dir=parent)
os.chmod(temp, 0o755)
try:
    with tarfile.open(fileobj=io.BytesIO(sys.stdin.buffer.read()), mode="r:") as tar:
        for member in tar.getmembers():
            parts = member.name.split("/")
            if not member.isfile() or member.name.startswith("/") or ".." in parts:
                sys.exit("refusing unsafe archive member " + repr(member.name))
            source = tar.extractfile(member)
            path = os.path.join(temp, *parts)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as out:
                shutil.copyfileobj(source, out)
    with open(os.path.join(temp, "deployed.json")) as stream:
        manifest = json.load(stream)
    for name, digest in manifest["files"].items():
        with open(os.path.join(temp, name), "rb") as stream:
            if hashlib.sha256(stream.read()).hexdigest() != digest:
                sys.exit("checksum mismatch on arrival: " + name)
    old = None
    if os.path.exists(target):
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

# What is deployed there and still intact: {"files": {name: sha256}} of deployed.json's files that match.
STATUS = r"""
import hashlib, json, os, sys
target = os.path.expanduser(sys.argv[1])
found = {}
try:
    with open(os.path.join(target, "deployed.json")) as stream:
        listed = json.load(stream)["files"]
except (OSError, ValueError, KeyError):
    listed = {}
for name, digest in listed.items():
    try:
        with open(os.path.join(target, name), "rb") as stream:
            if hashlib.sha256(stream.read()).hexdigest() == digest:
                found[name] = digest
    except OSError:
        pass
print(json.dumps({"directory": os.path.abspath(target), "files": found}))
"""

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
