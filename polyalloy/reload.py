"""Hot reload of the kernel modules (``polyalloy.kernels``) while a simulation keeps its fields.

Taichi fields live in SNode trees that belong to the runtime, not to the module that defined
the kernels, so ``importlib.reload`` of a kernel module gives new kernel objects (compiled on
their first call) while every field and every particle stays as it was. Three things make
that safe here:

- order: kernel modules import each other (``mpm`` binds functions of ``constitutive``,
  ``heat``, ``control``, ``sdf`` ...), so a changed module is reloaded with every module that
  imports it, dependencies first (the import graph is read from the files with ``ast``);
- rebinding: host modules that bound a kernel object by name (``from polyalloy.kernels.sdf
  import evaluate_sdf``) are pointed at the new one; module references (``from
  polyalloy.kernels import mpm``) are updated in place by ``reload`` itself. An *old* kernel
  must never be asked for a new instantiation after its file changed: Taichi reads a function's
  source from disk when it first compiles it (``polyalloy.frontend`` keeps what it read per
  function object, so a function compiled before the edit keeps its own lines, but one first
  compiled after it would read the new file);
- rollback: each module's namespace is saved before the reload; a module that fails to
  import (syntax error, exception at import), or new kernels that fail on their first frame
  (a Taichi compile error, an exception), are undone, so the previous kernels keep running.

``export_kernels(dest)`` writes a copy of the kernels for a user who installed a wheel;
``use_kernels(path)`` runs on such a copy (``polyalloy live --kernels DIR``).
"""
from __future__ import annotations

import ast
import importlib
import re
import shutil
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from polyalloy.errors import ConfigError

PACKAGE = "polyalloy.kernels"


def kernel_dir() -> Path:
    """The folder the kernel modules are loaded from now."""
    import polyalloy.kernels as pkg

    return Path(list(pkg.__path__)[0]).resolve()


def _module_files(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.glob("*.py")) if p.stem != "__init__"}


def export_kernels(dest) -> Path:
    """Copy the kernel modules in use into the new or empty folder ``dest`` (for ``--kernels``)."""
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigError(f"{dest} exists and is not an empty folder; export the kernels into a new one")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name, path in _module_files(kernel_dir()).items():
            shutil.copy2(path, dest / path.name)
        shutil.copy2(kernel_dir() / "__init__.py", dest / "__init__.py")
    except OSError as exc:
        raise ConfigError(f"cannot write the kernels to {dest}: {exc.strerror or exc}") from None
    return dest.resolve()


def _imports(path: Path) -> set[str]:
    """Kernel modules that the file at ``path`` imports (``from polyalloy.kernels[.x] import ...``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith(PACKAGE + "."):
                out.add(node.module[len(PACKAGE) + 1:].split(".")[0])
            elif node.module == PACKAGE:
                out.update(a.name for a in node.names)
    return out


def describe_error(exc: BaseException, folder: Path | None = None) -> str:
    """One line for a failed reload: ``file:line: Type: message``, the place being the deepest one
    inside the kernel folder (a syntax error's own place; Taichi's compile errors name it in their
    text)."""
    folder = str(folder or kernel_dir())
    place = None
    if isinstance(exc, SyntaxError) and exc.filename:
        place = (exc.filename, exc.lineno)
    else:
        for fr in traceback.extract_tb(exc.__traceback__):
            if fr.filename.startswith(folder):
                place = (fr.filename, fr.lineno)
        for m in re.finditer(r'File "([^"]+)", line (\d+)', str(exc)):
            if m.group(1).startswith(folder):
                place = (m.group(1), int(m.group(2)))
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    msg = exc.msg if isinstance(exc, SyntaxError) else (lines[-1] if lines else "")
    where = f"{place[0]}:{place[1]}: " if place else ""
    return f"{where}{type(exc).__name__}: {msg}"


@dataclass
class Reload:
    """One reload: the ``modules`` reloaded (in order), ``saved_at`` (the newest mtime of the
    changed files, s since the epoch), ``error`` (one line, None when it worked) and
    ``seconds`` (from the save to the first frame that ran the new kernels; None until then)."""

    modules: list
    saved_at: float
    error: str | None = None
    seconds: float | None = None
    _saved: dict = field(default_factory=dict, repr=False)  # module name -> namespace before
    _rebound: list = field(default_factory=list, repr=False)  # (host module, name, old object)


class KernelReloader:
    """Watches the kernel folder's files and reloads what changed (``poll``), with rollback."""

    def __init__(self):
        self.folder = kernel_dir()
        self._stamps = self._stat()
        self._deps = {name: self._safe_imports(path, set()) for name, path in _module_files(self.folder).items()}
        self.pending: Reload | None = None  # reloaded, its new kernels not yet run

    def _stat(self) -> dict:
        out = {}
        for name, path in _module_files(self.folder).items():
            try:
                st = path.stat()
                out[name] = (st.st_mtime, st.st_size)
            except OSError:
                pass
        return out

    @staticmethod
    def _safe_imports(path: Path, fallback: set) -> set:
        try:
            return _imports(path)
        except (SyntaxError, OSError, ValueError):
            return fallback

    def changed(self) -> list[str]:
        """Names of the kernel modules whose file changed since the last call (or the start)."""
        stamps = self._stat()
        out = [n for n, s in stamps.items() if self._stamps.get(n) != s]
        self._stamps = stamps
        return out

    def order(self, names) -> list[str]:
        """``names`` and every loaded kernel module that imports one of them, dependencies first."""
        loaded = {n for n in self._deps if f"{PACKAGE}.{n}" in sys.modules}
        hit = set(names) & loaded
        grew = True
        while grew:
            more = {n for n in loaded if self._deps[n] & hit} - hit
            hit |= more
            grew = bool(more)
        out, seen = [], set()

        def visit(n):
            if n in seen:
                return
            seen.add(n)
            for d in sorted(self._deps.get(n, ())):
                if d in hit:
                    visit(d)
            out.append(n)

        for n in sorted(hit):
            visit(n)
        return out

    def reload(self, names=None) -> Reload:
        """Reload the modules ``names`` (default: the changed ones) and their importers. A module
        that fails to import is rolled back at once (``error`` set); otherwise the reload is
        ``pending`` until ``commit`` (its kernels ran) or ``rollback`` (they failed)."""
        names = list(self.changed() if names is None else names)
        if self.pending is not None:  # a newer save before the last reload ran: redo both at once
            names = sorted(set(names) | set(self.pending.modules))
            self.rollback()
        if not names:
            return Reload([], time.time())
        stamps = [self._stamps.get(n, (time.time(), 0))[0] for n in names]
        for n in names:
            path = self.folder / f"{n}.py"
            self._deps[n] = self._safe_imports(path, self._deps.get(n, set()))
        rec = Reload(self.order(names), max(stamps))
        importlib.invalidate_caches()
        try:
            for n in rec.modules:
                mod = sys.modules[f"{PACKAGE}.{n}"]
                rec._saved[n] = dict(mod.__dict__)
                importlib.reload(mod)
        except Exception as exc:  # noqa: BLE001 - any import-time failure leaves the old kernels
            rec.error = describe_error(exc, self.folder)
            self._restore(rec)
            return rec
        self._rebind(rec)
        self.pending = rec
        return rec

    def _rebind(self, rec: Reload) -> None:
        """Point host modules' names that held an object of a reloaded module at its new one."""
        old = {}
        for n, saved in rec._saved.items():
            new = sys.modules[f"{PACKAGE}.{n}"].__dict__
            for key, obj in saved.items():
                if not key.startswith("__") and key in new and new[key] is not obj:
                    old.setdefault(key, []).append((obj, new[key]))
        for mname, mod in list(sys.modules.items()):
            if mod is None or mname.startswith(PACKAGE) or not (
                    mname.startswith("polyalloy") or mname.startswith("__main__")):
                continue
            for key, pairs in old.items():
                cur = mod.__dict__.get(key)
                for obj, new_obj in pairs:
                    if cur is obj and not isinstance(obj, type(sys)):
                        setattr(mod, key, new_obj)
                        rec._rebound.append((mod, key, obj))
                        break

    def _restore(self, rec: Reload) -> None:
        for mod, key, obj in rec._rebound:
            setattr(mod, key, obj)
        rec._rebound = []
        for n, saved in rec._saved.items():
            ns = sys.modules[f"{PACKAGE}.{n}"].__dict__
            ns.clear()
            ns.update(saved)

    def commit(self, when: float | None = None) -> Reload | None:
        """The pending reload's kernels ran: keep them, and time it (save -> ``when``)."""
        rec, self.pending = self.pending, None
        if rec is not None:
            rec.seconds = (time.time() if when is None else when) - rec.saved_at
        return rec

    def rollback(self, exc: BaseException | None = None) -> Reload | None:
        """The pending reload's kernels failed (``exc``): put the previous ones back."""
        rec, self.pending = self.pending, None
        if rec is not None:
            self._restore(rec)
            if exc is not None:
                rec.error = describe_error(exc, self.folder)
        return rec


def use_kernels(path) -> Path:
    """Load the kernel modules from the folder ``path`` (a copy written by ``export_kernels``)
    instead of the installed ones; call before building a simulation."""
    folder = Path(path).resolve()
    missing = sorted(set(_module_files(kernel_dir())) - set(_module_files(folder))) if folder.is_dir() else ["*"]
    if missing:
        raise ConfigError(f"--kernels {path}: not a folder of polyalloy kernels (missing "
                          f"{', '.join(m + '.py' for m in missing)}); write one with `polyalloy live --export-kernels DIR`")
    import polyalloy.kernels as pkg

    if kernel_dir() == folder:
        return folder
    pkg.__path__[:] = [str(folder)]
    reloader = KernelReloader()
    rec = reloader.reload(list(_module_files(folder)))
    if rec.error:
        raise ConfigError(f"--kernels {path}: {rec.error}")
    reloader.commit()
    return folder

