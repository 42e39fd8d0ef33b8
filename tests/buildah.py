"""Build and run OCI images without a Docker engine: debootstrap + buildah (chroot isolation).

No Docker engine runs on the CI machines and base images cannot be pulled, so the image
test makes its own Debian base: `debootstrap` a minimal bookworm (about 70 s, cached
across runs outside the project, keyed by the debootstrap arguments), import it as a
`FROM scratch` image, then build the project's Dockerfile on it with `buildah bud`.

Everything buildah stores goes to a storage folder of the caller's (vfs driver: plain
directories, no kernel overlay needed), so a test leaves nothing in the machine's image
store and removes all of it at the end. Needs root (debootstrap, chroot).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DEBIAN_SUITE = "bookworm"  # Python 3.11, as the project requires
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBOOTSTRAP_ARGS = (
    "--variant=minbase",
    "--include=python3,python3-venv,ca-certificates",
    DEBIAN_SUITE,
)
DEBOOTSTRAP_TIMEOUT_SECONDS = 900
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# The official python images have `python` and `pip` on PATH; Debian's python3 has
# neither (and refuses pip installs into the system, PEP 668). A venv on PATH gives the
# Dockerfile the same `python -m pip ...` it gets from prefecthq/prefect:3-python3.11.
# SSL_CERT_FILE: uv trusts only its bundled roots unless told otherwise, so behind the
# TLS interception of these machines `uv sync` fails ("invalid peer certificate:
# UnknownIssuer") even with the host's bundle mounted over the system one; pip reads the
# system bundle anyway. This stands in for what a site's own base image would set.
BASE_CONTAINERFILE = """\
FROM scratch
ADD rootfs.tar /
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
RUN python3 -m venv /opt/python && python --version && python -m pip --version
CMD ["python"]
"""


class BuildahError(RuntimeError):
    """A buildah or debootstrap command failed; the message ends with its output."""


def missing_requirements() -> str | None:
    """Why images cannot be built here, or None when they can."""
    for tool in ("buildah", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} not installed: apt-get install buildah debootstrap (see .ci/run)"
    if os.geteuid() != 0:
        return "not running as root: debootstrap and buildah's chroot isolation need root"
    if not HOST_CA_BUNDLE.is_file():
        return f"no host CA bundle at {HOST_CA_BUNDLE} to lend the image build"
    return None


def cache_root() -> Path:
    """Where the Debian base is kept between runs: outside the project, per user."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "churn-pipeline"


def run_bounded(
    args: Sequence[str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command to its end, whatever its exit code, within `timeout` seconds.

    The command gets a session of its own, so a timeout kills everything it started
    (buildah's build steps, the process running in a container), not just buildah.
    """
    process = subprocess.Popen(
        list(args),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as error:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise BuildahError(f"{' '.join(args[:6])} timed out after {timeout:.0f} s") from error
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _run(
    args: Sequence[str], *, timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """run_bounded, raising BuildahError with the end of the output if the command fails."""
    completed = run_bounded(args, timeout=timeout, cwd=cwd)
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr)[-6000:]
        raise BuildahError(f"{' '.join(args[:6])} exited {completed.returncode}:\n{output}")
    return completed


def _unmount_below(path: Path) -> None:
    """Lazily unmount anything mounted under `path` (a chroot run killed mid-way leaves
    /proc, /dev, ... bind-mounted there), deepest first, so deleting it stays inside."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_tree(path: Path) -> None:
    """rm -rf that never leaves the file system it starts on, after unmounting below it."""
    if not path.exists():
        return
    _unmount_below(path)
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False, timeout=600)


def debian_rootfs(cache: Path | None = None) -> Path:
    """A tar of a minimal Debian with Python 3.11, made once and cached.

    The cache key is the debootstrap arguments: changing them makes a new base. The tar
    is written under a temporary name and renamed, so an interrupted run never leaves a
    half-made base behind for the next one.
    """
    key = hashlib.sha256(" ".join((*DEBOOTSTRAP_ARGS, DEBIAN_MIRROR)).encode()).hexdigest()[:12]
    folder = (cache or cache_root()) / f"debian-{DEBIAN_SUITE}-python3-{key}"
    tarball = folder / "rootfs.tar"
    if tarball.is_file():
        return tarball
    folder.mkdir(parents=True, exist_ok=True)
    staging = folder / f"rootfs-{uuid.uuid4().hex[:8]}"
    partial = folder / f"{staging.name}.tar.partial"
    try:
        _run(
            ["debootstrap", *DEBOOTSTRAP_ARGS, str(staging), DEBIAN_MIRROR],
            timeout=DEBOOTSTRAP_TIMEOUT_SECONDS,
        )
        # apt's package cache is only weight in an image.
        remove_tree(staging / "var" / "cache" / "apt" / "archives")
        (staging / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True)
        _run(["tar", "-C", str(staging), "--numeric-owner", "-cf", str(partial), "."], timeout=300)
        partial.rename(tarball)
    finally:
        remove_tree(staging)
        partial.unlink(missing_ok=True)
    return tarball


@dataclass(frozen=True)
class Buildah:
    """buildah with all its state (images, containers) under `storage`."""

    storage: Path

    def command(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root", str(self.storage / "root"),
            "--runroot", str(self.storage / "run"),
            "--storage-driver", "vfs",
            *args,
        ]  # fmt: skip

    def run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return _run(self.command(*args), timeout=timeout)

    def build(
        self,
        context: Path,
        tag: str,
        *,
        containerfile: Path | None = None,
        build_args: Mapping[str, str] | None = None,
        volumes: Iterable[str] = (),
        timeout: float = 1800,
    ) -> subprocess.CompletedProcess[str]:
        """`buildah bud` with chroot isolation (no daemon, no user namespaces needed)."""
        args = ["bud", "--isolation", "chroot", "--tag", tag]
        if containerfile is not None:
            args += ["--file", str(containerfile)]
        for name, value in (build_args or {}).items():
            args += ["--build-arg", f"{name}={value}"]
        for volume in volumes:
            args += ["--volume", volume]
        return self.run(*args, str(context), timeout=timeout)

    def build_base_image(self, rootfs_tar: Path, tag: str, workdir: Path) -> None:
        """Import the Debian tar as an image (`FROM scratch` + `ADD rootfs.tar /`)."""
        context = workdir / "base-context"
        context.mkdir(parents=True, exist_ok=True)
        target = context / "rootfs.tar"
        try:
            os.link(rootfs_tar, target)  # same file system: no copy of ~150 MB
        except OSError:
            shutil.copyfile(rootfs_tar, target)
        (context / "Containerfile").write_text(BASE_CONTAINERFILE)
        self.build(context, tag, containerfile=context / "Containerfile", timeout=600)

    def from_image(self, image: str) -> str:
        """A working container of `image`; returns its name (remove it with `rm`)."""
        name = f"churn-test-{uuid.uuid4().hex[:8]}"
        self.run("from", "--name", name, "--pull=never", image, timeout=600)
        return name

    def run_in(
        self,
        container: str,
        command: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the container, on the host's network (chroot isolation
        creates no network namespace), as the image's USER, in its WORKDIR. Returns the
        finished process whatever its exit code."""
        args = self.command("run", "--isolation", "chroot")
        for name, value in (env or {}).items():
            args += ["--env", f"{name}={value}"]
        args += [container, "--", *command]
        return run_bounded(args, timeout=timeout)

    def rm(self, container: str) -> None:
        with contextlib.suppress(BuildahError):
            self.run("rm", container, timeout=300)

    def destroy(self) -> None:
        """Remove every container and image, then the storage folder itself."""
        for args in (("rm", "--all"), ("rmi", "--all", "--force")):
            with contextlib.suppress(BuildahError):
                self.run(*args, timeout=600)
        remove_tree(self.storage)
