"""Running a piece of Ember as another user or on a small full disk, for tests/hostile.

- `as_nobody(command)`: the command as uid/gid 65534 when the tests run as root (root ignores file
  permissions, so a read-only folder means nothing to it), via `setpriv`; as it is otherwise.
- `on_small_disk(folder, size, command)`: the command with `folder` a fresh tmpfs of `size` bytes,
  mounted in a private mount namespace (`unshare`: as root, or as a user where user namespaces are
  allowed), so that a real ENOSPC comes from the kernel. Where no tmpfs can be mounted the command
  runs with RLIMIT_FSIZE instead (files cannot grow past `size`: EFBIG, not ENOSPC); the result
  says which (`method`).
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def can_switch_to_nobody() -> bool:
    return running_as_root() and shutil.which("setpriv") is not None


def as_nobody(command: list[str]) -> list[str]:
    if not running_as_root():
        return command
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]


def python_env(home: Path, **extra: str) -> dict:
    env = dict(os.environ, EMBER_HOME=str(home), QT_QPA_PLATFORM="offscreen", **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


@dataclass
class SmallDiskRun:
    method: str  # "tmpfs" or "RLIMIT_FSIZE"
    result: subprocess.CompletedProcess


def _unshare_prefix() -> list[str] | None:
    """The unshare command that can mount a tmpfs here, or None."""
    if shutil.which("unshare") is None:
        return None
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        if prefix == ["unshare", "--mount"] and not running_as_root():
            continue
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=65536 tmpfs /mnt 2>/dev/null || "
                                "mount -t tmpfs -o size=65536 tmpfs /tmp"], capture_output=True, timeout=30)
        if probe.returncode == 0:
            return prefix
    return None


def on_small_disk(folder: Path, size: int, command: list[str], env: dict, timeout: float = 180) -> SmallDiskRun:
    folder.mkdir(parents=True, exist_ok=True)
    prefix = _unshare_prefix()
    if prefix is not None:
        mount = f'mount -t tmpfs -o size={size} tmpfs "$0" && exec "$@"'
        result = subprocess.run([*prefix, "sh", "-c", mount, str(folder), *command], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=timeout)
        return SmallDiskRun("tmpfs", result)

    def limit_file_size() -> None:  # EFBIG instead of the SIGXFSZ that would kill the process
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
                            preexec_fn=limit_file_size)
    return SmallDiskRun("RLIMIT_FSIZE", result)


def python(*args: str) -> list[str]:
    return [sys.executable, *args]
