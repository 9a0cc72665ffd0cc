"""A device over SSH, through the system OpenSSH client, so users' ~/.ssh/config, keys and agents work.

Everything goes through `ssh` itself, files too (a tar stream on stdin, unpacked by the device's own
Python): one transport that honours `--ssh-command` exactly as given, the way git honours
GIT_SSH_COMMAND; `scp` and `rsync` would each need the user's options translated.
Safety: BatchMode (keys or an agent, never a password prompt); host-key checking is left as the
user's configuration has it; the destination follows `--` so a host cannot be read as an option;
every remote word is quoted with shlex, a leading `~/` is expanded by the device's shell as
"$HOME", so names with spaces or quotes cannot inject commands.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from typing import Any

from edge_runtime.text import printable

from ..errors import PipelineError, UnsafeTarget, UsageError

SSH_COMMAND_ENV = "EDGE_PIPELINE_SSH_COMMAND"
DEFAULT_TIMEOUT = 600.0  # seconds one remote command may take
CONNECT_TIMEOUT = 15  # seconds to establish the connection
ALIVE = ("-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3")  # a dead device is noticed in 15 s
_HOST = re.compile(r"^[A-Za-z0-9_.:%\[\]-]+$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")  # the last part of a device directory deploy may make


class RemoteError(PipelineError):
    """The device could not be reached, or a command on it failed (exit 1)."""


@dataclass(frozen=True)
class Target:
    """`[USER@]HOST[:DIR]` as written on the command line."""

    host: str
    user: str | None = None
    directory: str | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        spec, directory = text, None
        if ":" in text and not text.startswith("["):
            spec, directory = text.split(":", 1)
        user, _, host = spec.rpartition("@")
        if not host or host.startswith("-") or not _HOST.match(host):
            raise UsageError(f"--to/--on {text!r} is not [USER@]HOST[:DIR]")
        if user and (user.startswith("-") or any(c.isspace() for c in user)):
            raise UsageError(f"--to/--on {text!r}: {user!r} is not a user name")
        if directory:
            directory = _checked_directory(text, directory)
        return cls(host, user or None, directory or None)

    @property
    def destination(self) -> str:
        return f"{self.user}@{self.host}" if self.user else self.host

    def __str__(self) -> str:
        return self.destination + (f":{self.directory}" if self.directory else "")


def _checked_directory(text: str, directory: str) -> str:
    """DIR must end in a name of its own: deploy makes that directory, and replaces only one it made."""
    parts = directory.rstrip("/").split("/")
    last = parts[-1]
    if ".." in parts or last in (".", "..") or not SAFE_NAME.match(last):
        raise UnsafeTarget(
            f"--to/--on {printable(text)!r}: DIR must end in a directory name of its own (letters, digits, '.', '_', "
            f"'-'), not {printable(last)!r}: deploy makes that directory and only ever replaces one it made"
        )
    return directory.rstrip("/")


def remote_word(text: str) -> str:
    """One word of a remote shell command: quoted, with a leading `~` expanded by the device."""
    if text == "~":
        return '"$HOME"'
    if text.startswith("~/"):
        return '"$HOME"/' + shlex.quote(text[2:])
    return shlex.quote(text)


def remote_command(words: list[str], cwd: str | None = None) -> str:
    command = " ".join(remote_word(word) for word in words)
    return f"cd {remote_word(cwd)} && {command}" if cwd else command


def _diagnosis(target: Target, stderr: str, code: int, what: str) -> str:
    """ssh's failure as one line that says what to do."""
    text = " ".join(stderr.split())
    host = target.host
    patterns = [
        (r"Could not resolve hostname", f"unknown host {host!r}: ssh could not resolve it"),
        (r"Connection refused", f"{host}: connection refused (is sshd running there, on that port?)"),
        (r"timed out|Operation timed out", f"{host}: connection timed out"),
        (
            r"Host key verification failed",
            f"{host}: its host key is not in known_hosts or has changed; "
            f"connect once with `ssh {target.destination}` and check the fingerprint",
        ),
        (
            r"Permission denied",
            f"{host}: authentication failed (keys or an agent only, no passwords; "
            f"check `ssh {target.destination}` works without a prompt)",
        ),
        (r"No route to host|Network is unreachable", f"{host}: no route to host"),
        (
            r"Connection closed|closed by remote host|Broken pipe|Timeout, server .* not responding|Connection reset",
            f"{host}: the connection was lost during {what} (the device went away?)",
        ),
    ]
    for pattern, message in patterns:
        if re.search(pattern, text):
            return message
    last = stderr.strip().splitlines()[-1] if stderr.strip() else f"ssh exited with {code}"
    return f"{host}: {what} failed: {last}"


class Ssh:
    """Runs commands on one device; every failure is a one-line RemoteError."""

    def __init__(self, target: Target, ssh_command: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
        command = ssh_command or os.environ.get(SSH_COMMAND_ENV) or "ssh"
        try:
            self.base = shlex.split(command)
        except ValueError as error:
            raise UsageError(f"--ssh-command {command!r} cannot be split into words ({error})") from None
        if not self.base:
            raise UsageError("--ssh-command is empty")
        if timeout <= 0:
            raise UsageError(f"--timeout must be more than 0 seconds, got {timeout:g}")
        self.target, self.timeout = target, timeout

    def argv(self, remote: str) -> list[str]:
        options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}", *ALIVE]
        return [*self.base, *options, "--", self.target.destination, remote]

    def run(self, words: list[str], what: str, stdin: bytes | None = None, cwd: str | None = None) -> str:
        """Run `words` on the device; its stdout as text. A non-zero exit is a RemoteError naming `what`."""
        done = self.call(words, what, stdin, cwd)
        if done.returncode != 0:
            raise RemoteError(self.explain(done, what, words))
        return done.stdout.decode("utf-8", "replace")

    def call(self, words: list[str], what: str, stdin: bytes | None = None, cwd: str | None = None) -> Any:
        """Like run, but a command that ran and failed is returned (exit code, stderr) for the caller to read."""
        try:
            done = subprocess.run(
                self.argv(remote_command(words, cwd)),
                input=stdin if stdin is not None else b"",
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise RemoteError(f"{self.base[0]!r} not found: install the OpenSSH client or pass --ssh-command") from None
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{self.target.host}: {what} took longer than --timeout {self.timeout:g} s") from None
        if done.returncode == 255:  # ssh's own failure: connection, authentication, host key
            raise RemoteError(_diagnosis(self.target, done.stderr.decode("utf-8", "replace"), 255, what))
        return done

    def explain(self, done: Any, what: str, words: list[str]) -> str:
        """A failed remote command as one line: a missing program, a full disk, or its last error line."""
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if done.returncode == 127 or ("No such file or directory" in stderr and words and words[0] in stderr):
            return f"{self.target.host}: {words[0]!r} not found there (pass --python PATH, or --setup to create a venv)"
        if "No space left on device" in stderr:
            return f"{self.target.host}: the disk is full ({what})"
        lines = [line for line in stderr.splitlines() if line.strip()]
        last = lines[-1] if lines else f"exit code {done.returncode}"
        for prefix in ("edge-runtime: error: ", "error: "):
            last = last.removeprefix(prefix)
        return f"{self.target.host}: {what} failed: {last}"
