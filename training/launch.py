"""Guards for distributed launches: every rank sees the run, one run per folder, no orphan ranks.

The supported launch is plain DDP (``accelerate launch --multi_gpu``, one or several machines):
only the projection trains, so every rank holds a full replica of the frozen model and nothing
needs sharding (memory figures in training/README.md). Checked before the first step:

* ``accelerate launch --num_processes N`` without ``--multi_gpu`` on a machine without a GPU
  starts the script once (accelerate's simple launcher): refused, instead of one silent rank;
* ``output_dir`` must be one folder that every rank sees (a shared filesystem): the main rank
  writes a random token there and every rank must read it back; node-local folders are refused
  at start (rank 1 would otherwise crash at the first checkpoint);
* a lock (``output_dir/.lock``, held by the main rank for the whole run) refuses a second run
  writing into the same folder;
* each launched rank watches its launcher and exits when it is gone (torchrun starts ranks in
  sessions of their own, so killing the launcher's process group does not reach them).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from pathlib import Path

from training.config import ConfigError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
TOKEN_FILE = ".run_token"


def launcher_processes(ppid: int | None = None) -> int | None:
    """``--num_processes`` of the ``accelerate launch`` that started this process, if it was one."""
    try:
        args = Path(f"/proc/{ppid or os.getppid()}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return None
    if not any("accelerate" in a for a in args[:3]):
        return None
    for i, arg in enumerate(args):
        m = re.fullmatch(r"--num_processes(?:=(\d+))?", arg)
        if m:
            value = m.group(1) or (args[i + 1] if i + 1 < len(args) else "")
            return int(value) if value.isdigit() else None
    return None


def check_world(world: int) -> None:
    asked = launcher_processes()
    if asked is not None and asked != world:
        raise ConfigError(
            f"accelerate launch asked for {asked} processes but started {world}: without --multi_gpu it runs "
            "the script once. Add --multi_gpu (with --cpu=true for the trainer on a machine without GPUs).")


def check_resume_world(saved_world: int, world: int, batch_size: int, grad_accum: int) -> None:
    if saved_world != world:
        raise ConfigError(
            f"the checkpoint was trained by {saved_world} process(es) (global batch "
            f"{saved_world * batch_size * grad_accum}); this run has {world}, which would change the global batch "
            f"and the data each rank sees. Resume with {saved_world} processes.")


class RunLock:
    """An exclusive ``flock`` on ``output_dir/.lock``, held until ``release()`` (or process exit)."""

    def __init__(self, output_dir: str | Path):
        import fcntl

        self.path = Path(output_dir) / LOCK_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "a+")
        try:
            fcntl.flock(self._fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._fh.seek(0)
            holder = self._fh.read().strip() or "another process"
            self._fh.close()
            raise ConfigError(f"{output_dir} is in use by another training run ({holder}); "
                              "choose another --output_dir or stop that run") from None
        self._fh.seek(0)
        self._fh.truncate()
        self._fh.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        self._fh.flush()

    def release(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def claim_output_dir(accelerator, output_dir: str) -> RunLock | None:
    """Lock the folder (main rank) and prove every rank sees it; raises ``ConfigError`` on every rank."""
    from accelerate.utils import broadcast_object_list, gather_object

    lock, token, problem = None, secrets.token_hex(8), ""
    if accelerator.is_main_process:
        try:
            lock = RunLock(output_dir)
            (Path(output_dir) / TOKEN_FILE).write_text(token)
        except (ConfigError, OSError) as exc:
            problem = str(exc)
    token, problem = broadcast_object_list([token, problem]) if accelerator.num_processes > 1 else (token, problem)
    if problem:
        raise ConfigError(problem)
    try:
        seen = (Path(output_dir) / TOKEN_FILE).read_text() == token
    except OSError:
        seen = False
    blind = [r for r, ok in enumerate(gather_object([seen]) if accelerator.num_processes > 1 else [seen]) if not ok]
    if blind:
        if lock is not None:
            lock.release()
        raise ConfigError(
            f"rank(s) {blind} do not see the main rank's output_dir {output_dir}: checkpoints are written by all "
            "ranks into one folder, so every node needs the same --output_dir on a shared filesystem")
    return lock


def exit_with_launcher(poll_s: float = 1.0) -> None:
    """Under a launcher (``LOCAL_RANK`` set): a daemon thread ends this rank when its parent is gone."""
    if "LOCAL_RANK" not in os.environ:
        return
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent:
                log.error("the launcher (pid %d) is gone: rank %s stops", parent, os.environ.get("RANK", "?"))
                logging.shutdown()
                os._exit(3)

    threading.Thread(target=watch, name="exit-with-launcher", daemon=True).start()
