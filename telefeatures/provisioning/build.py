"""Plans and applies a build: render everything in memory, check everything,
and only then write, so a bad inventory or template writes nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .build_cache import BuildCache, code_digest
from .credentials import CredentialStore
from .devices import SIP_CNF_FORMAT
from .files import read_if_exists, write_many_atomic
from .inventory import Inventory, Phone, phone_title
from .render import PJSIP_PHONE_TEMPLATE, ConfigRenderer, RenderError
from .worker_processes import end_with_parent

XML_DEFAULT_NAME = "XMLDefault.cnf.xml"
SIP_DEFAULT_NAME = "SIPDefault.cnf"
# Per-phone files: SEP<MAC>.cnf.xml (79x1 and later), SIP<MAC>.cnf (7940/7960).
SEP_NAME = re.compile(r"SEP[0-9A-F]{12}\.cnf\.xml|SIP[0-9A-F]{12}\.cnf")
TFTP_FILE_MODE = 0o644  # the TFTP server must read them
PJSIP_FILE_MODE = 0o640  # holds passwords; give Asterisk's group read access
HINTS_FILE_MODE = 0o644


class BuildError(Exception):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__(f"{len(errors)} error(s), nothing written:\n" + "\n".join(f"  {e}" for e in errors))


@dataclass(frozen=True)
class PlannedFile:
    path: Path
    data: bytes
    mode: int
    phone: Phone | None = None
    inputs: str = ""  # digest of what a phone file is rendered from (build cache)
    reused: bool = False  # the file on disk is known current: not rendered (data empty), not rewritten


@dataclass
class BuildPlan:
    tftp_root: Path
    files: list[PlannedFile]
    credentials: CredentialStore
    pjsip_path: Path | None = None
    hints_path: Path | None = None
    cache: BuildCache = field(default_factory=lambda: BuildCache(None))
    # The PJSIP include's head length and per phone (input digest, length) of its sections.
    pjsip_sections: tuple[int, list[tuple[str, int]]] | None = None


@dataclass
class BuildReport:
    added: list[Path] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)
    changed_phones: list[Phone] = field(default_factory=list)
    pjsip_changed: bool = False
    hints_changed: bool = False
    secrets_written: bool = False


def resolve_passwords(inventory: Inventory, credentials: CredentialStore) -> dict[str, str]:
    """extension -> password: the inventory's, else the stored or a new generated one."""
    return {
        line.extension: line.password or credentials.password_for(line.extension,
                                                                   inventory.site.auth_password_max_length)
        for phone in inventory.phones
        for line in phone.lines
    }


def plan_build(
    inventory: Inventory,
    tftp_root: Path,
    renderer: ConfigRenderer,
    credentials: CredentialStore,
    pjsip_path: Path | None = None,
    hints_path: Path | None = None,
    codes_path: Path | None = None,
    progress: Callable[[Iterable[Phone]], Iterable[Phone]] = lambda phones: phones,
    cache: BuildCache | None = None,
) -> BuildPlan:
    """Render and check every file; raise BuildError listing every problem.
    With a ``cache``, a phone whose inputs and file are unchanged since the
    last build is not rendered again."""
    cache = cache or BuildCache(None)
    errors: list[str] = []
    passwords = resolve_passwords(inventory, credentials)
    files: list[PlannedFile] = []
    site = inventory.site
    try:
        dialplan = renderer.render_dialplan(site)
        files.append(PlannedFile(tftp_root / site.dial_template, dialplan, TFTP_FILE_MODE))
    except RenderError as exc:
        raise BuildError(exc.lines()) from None
    try:
        files.append(PlannedFile(tftp_root / XML_DEFAULT_NAME, renderer.render_xml_default(site), TFTP_FILE_MODE))
    except RenderError as exc:
        errors += exc.lines()
    if any(phone.config_format == SIP_CNF_FORMAT for phone in inventory.phones):
        try:
            files.append(PlannedFile(tftp_root / SIP_DEFAULT_NAME, renderer.render_sip_default(inventory),
                                     TFTP_FILE_MODE))
        except RenderError as exc:
            errors += exc.lines()
    shared = _shared_inputs(inventory, renderer, dialplan)
    planned: dict[int, PlannedFile] = {}
    to_render: list[tuple[int, Path, str]] = []
    phone_inputs: list[str] = []
    for i, phone in enumerate(inventory.phones):
        path = tftp_root / phone.config_name
        inputs = _phone_inputs(shared, phone, passwords)
        phone_inputs.append(inputs)
        if cache.reusable(path, inputs):
            planned[i] = PlannedFile(path, b"", TFTP_FILE_MODE, phone, inputs, reused=True)
        else:
            to_render.append((i, path, inputs))
    results: dict[int, bytes | RenderError] = {}
    pjsip_result: list[tuple[bytes, tuple[int, list[tuple[str, int]]] | None] | RenderError] = []

    def render_pjsip() -> None:
        assert pjsip_path is not None
        try:
            if renderer.pjsip_by_phone():
                pjsip_result.append(_pjsip_by_phone(inventory, renderer, passwords, pjsip_path, cache, phone_inputs))
            else:
                pjsip_result.append((renderer.render_pjsip(inventory, passwords), None))
        except RenderError as exc:
            pjsip_result.append(exc)

    def rendered() -> Iterator[Phone]:
        yield from (inventory.phones[i] for i in planned)
        for i, result in _render_phones(renderer, inventory, passwords, dialplan, [i for i, _, _ in to_render],
                                        meanwhile=render_pjsip if pjsip_path is not None else None):
            results[i] = result
            yield inventory.phones[i]

    for _phone in progress(rendered()):
        pass
    for i, path, inputs in to_render:
        result = results[i]
        if isinstance(result, RenderError):
            errors += result.lines(f"{phone_title(inventory.phones[i], i)}: ")
        else:
            planned[i] = PlannedFile(path, result, TFTP_FILE_MODE, inventory.phones[i], inputs)
    files += [planned[i] for i in sorted(planned)]
    pjsip_sections = None
    if pjsip_path is not None:
        [pjsip_done] = pjsip_result
        if isinstance(pjsip_done, RenderError):
            errors += pjsip_done.lines()
        else:
            pjsip, pjsip_sections = pjsip_done
            files.append(PlannedFile(pjsip_path, pjsip, PJSIP_FILE_MODE))
    if hints_path is not None:
        files.append(PlannedFile(hints_path, renderer.render_hints(inventory), HINTS_FILE_MODE))
    if codes_path is not None:  # [tf-features] with the codes the phones' dial plan has
        files.append(PlannedFile(codes_path, site.feature_codes.asterisk_context().encode(), HINTS_FILE_MODE))
    if errors:
        raise BuildError(errors)
    return BuildPlan(tftp_root, files, credentials, pjsip_path, hints_path, cache, pjsip_sections)


def _pjsip_by_phone(inventory: Inventory, renderer: ConfigRenderer, passwords: dict[str, str], path: Path,
                    cache: BuildCache, phone_inputs: list[str]) -> tuple[bytes, tuple[int, list[tuple[str, int]]]]:
    """The PJSIP include from the sections of each phone: an unchanged phone's
    taken from the include on disk, the others rendered (the first error
    raised, as the whole include's render raises it)."""
    head, tail = renderer.render_pjsip_frame(inventory)
    template = renderer.template_source(PJSIP_PHONE_TEMPLATE).encode()
    sources_of: dict[tuple[str, ...], bytes] = {}
    keys = []
    for phone, inputs in zip(inventory.phones, phone_inputs):
        sources = tuple(inventory.sip_sources(phone))
        if sources not in sources_of:
            sources_of[sources] = json.dumps(sources).encode()
        # The phone's file inputs (code, site, phone, passwords) plus what only its sections use.
        keys.append(hashlib.sha256(inputs.encode() + b"\0" + sources_of[sources] + b"\0" + template).hexdigest())
    reusable = cache.reusable_sections(path, head, tail)
    sections = [reusable.get(key) for key in keys]
    fresh = [i for i, section in enumerate(sections) if section is None]
    for i, section in zip(fresh, renderer.render_pjsip_phones(inventory, [inventory.phones[i] for i in fresh],
                                                              passwords)):
        sections[i] = section
    return (b"".join([head, *sections, tail]),  # type: ignore[list-item]
            (len(head), [(key, len(section)) for key, section in zip(keys, sections)]))  # type: ignore[arg-type]


# Rendering is CPU-bound: a large build spreads the phones over processes.
PARALLEL_FROM = 500
CHUNK = 250
_JOB: tuple[ConfigRenderer, Inventory, dict[str, str], bytes] | None = None


def _render_phone(renderer: ConfigRenderer, inventory: Inventory, passwords: dict[str, str], dialplan: bytes,
                  index: int) -> bytes | RenderError:
    phone = inventory.phones[index]
    try:
        if phone.config_format == SIP_CNF_FORMAT:
            return renderer.render_sip_cnf(inventory, phone, passwords)
        return renderer.render_sep_config(inventory, phone, passwords, dialplan)
    except RenderError as exc:
        return exc


def _render_chunk(indices: list[int]) -> list[tuple[int, bytes | tuple[str, list[str]]]]:
    """In a worker process (forked with _JOB set): render these phones."""
    assert _JOB is not None
    out: list[tuple[int, bytes | tuple[str, list[str]]]] = []
    for index in indices:
        result = _render_phone(*_JOB, index)
        # RenderError does not pickle (two arguments); send its parts.
        out.append((index, (result.what, result.problems) if isinstance(result, RenderError) else result))
    return out


def _render_phones(renderer: ConfigRenderer, inventory: Inventory, passwords: dict[str, str], dialplan: bytes,
                   indices: list[int], meanwhile: Callable[[], None] | None = None
                   ) -> Iterator[tuple[int, bytes | RenderError]]:
    """Each phone's file (or why it cannot be rendered), in order. ``meanwhile``
    is called once, while the worker processes render (the parent would only
    wait for them), or after the phones when they are rendered here."""
    global _JOB
    workers = min(os.cpu_count() or 1, 8)
    if len(indices) < PARALLEL_FROM or workers < 2:
        for index in indices:
            yield index, _render_phone(renderer, inventory, passwords, dialplan, index)
        if meanwhile is not None:
            meanwhile()
        return
    _JOB = (renderer, inventory, passwords, dialplan)
    try:
        chunks = [indices[start:start + CHUNK] for start in range(0, len(indices), CHUNK)]
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                 initializer=end_with_parent, initargs=(os.getpid(),)) as pool:
            rendering = pool.map(_render_chunk, chunks)  # every chunk handed to the workers now
            if meanwhile is not None:
                meanwhile()
            for chunk in rendering:
                for index, result in chunk:
                    yield index, RenderError(*result) if isinstance(result, tuple) else result
    finally:
        _JOB = None


def _shared_inputs(inventory: Inventory, renderer: ConfigRenderer, dialplan: bytes) -> bytes:
    """What every phone file is made from besides the phone itself."""
    digest = hashlib.sha256(code_digest().encode())
    for name in renderer.phone_templates():
        digest.update(renderer.template_source(name).encode() + b"\0")
    digest.update(inventory.site.model_dump_json().encode() + b"\0" + dialplan)
    return digest.digest()


def _phone_inputs(shared: bytes, phone: Phone, passwords: dict[str, str]) -> str:
    digest = hashlib.sha256(shared)
    digest.update(phone.model_dump_json(exclude_unset=True).encode())
    for line in phone.lines:
        digest.update(b"\0" + passwords[line.extension].encode())
    return digest.hexdigest()


def output_path_errors(tftp_root: Path, secrets_path: Path, pjsip_path: Path | None = None,
                       hints_path: Path | None = None) -> list[str]:
    """Where a build would write, judged before anything is: the secrets file
    and the PJSIP include (it holds the passwords) never inside the TFTP root,
    where anyone could fetch them, and every directory there already."""
    errors = []
    root = tftp_root.resolve()
    if secrets_path.resolve().is_relative_to(root):
        errors.append(f"secrets file {secrets_path} is inside the TFTP root, where anyone could fetch it; "
                      "choose another --secrets path")
    elif not secrets_path.parent.is_dir():
        errors.append(f"directory of the secrets file {secrets_path} does not exist")
    if pjsip_path is not None:
        if not pjsip_path.parent.is_dir():
            errors.append(f"directory of --pjsip {pjsip_path} does not exist")
        elif pjsip_path.parent.resolve().is_relative_to(root):
            errors.append(f"--pjsip {pjsip_path} is inside the TFTP root, where anyone could fetch its "
                          "passwords; write it into Asterisk's configuration instead")
    if hints_path is not None and not hints_path.parent.is_dir():
        errors.append(f"directory of --hints {hints_path} does not exist")
    return errors


def apply_plan(plan: BuildPlan) -> BuildReport:
    """Write what changed. Generated passwords are saved first, so no file ever
    holds a password that is not also recorded.

    Raises BuildError, writing nothing, when :func:`output_path_errors` finds
    a problem with where the plan would write: every caller gets the check."""
    errors = output_path_errors(plan.tftp_root, plan.credentials.path, plan.pjsip_path, plan.hints_path)
    if errors:
        raise BuildError(errors)
    report = BuildReport()
    report.secrets_written = plan.credentials.save()
    writes: list[PlannedFile] = []
    for planned in plan.files:
        if planned.reused:
            report.unchanged.append(planned.path)
            continue
        old = read_if_exists(planned.path)
        if old == planned.data:
            report.unchanged.append(planned.path)
            continue
        writes.append(planned)
        (report.added if old is None else report.changed).append(planned.path)
        if planned.phone is not None and old is not None:
            report.changed_phones.append(planned.phone)
        if planned.path == plan.pjsip_path:
            report.pjsip_changed = True
        if planned.path == plan.hints_path:
            report.hints_changed = True
    write_many_atomic([(planned.path, planned.data, planned.mode) for planned in writes])
    for planned in plan.files:
        if planned.inputs and not planned.reused:
            plan.cache.record(planned.path, planned.inputs)
    if plan.pjsip_path is not None and plan.pjsip_sections is not None:
        plan.cache.record_sections(plan.pjsip_path, *plan.pjsip_sections)
    plan.cache.save({planned.path.name for planned in plan.files
                     if planned.inputs or planned.path == plan.pjsip_path and plan.pjsip_sections})
    wanted = {planned.path.name for planned in plan.files if planned.path.parent == plan.tftp_root}
    report.stale = sorted(
        path for path in plan.tftp_root.iterdir() if SEP_NAME.fullmatch(path.name) and path.name not in wanted
    )
    return report
