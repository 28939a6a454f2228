"""Images → programs: what process runs a function whose Function resource names an image.

On a cluster an image is pulled; here it is a folder of functions/ named by functions/stack.yml (the same file
faas-cli builds the images from), run under that folder's own virtualenv.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import yaml


class UnknownImage(LookupError):
    """No function folder provides this image."""


@dataclass(frozen=True)
class Program:
    """A function's entry point: `python argv...` run in `cwd`.

    `argv` is a script path (and its arguments) or ["-m", module, ...]; `env` is what the image sets (the
    Function's environment overrides it); `preload` names the distributions a pre-warmed process of this
    interpreter imports ahead of time.
    """

    python: str
    argv: tuple[str, ...]
    cwd: Path
    preload: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def command(self) -> list[str]:
        return [self.python, *self.argv]


class ProgramResolver(Protocol):
    def resolve(self, image: str) -> Program: ...


_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def requirement_names(path: Path) -> tuple[str, ...]:
    """Distribution names listed in a pip requirements file (options, comments and nested files skipped)."""
    if not path.is_file():
        return ()
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _REQUIREMENT_NAME.match(line)
        if match:
            names.append(match.group(1))
    return tuple(names)


def stack_images(stack_file: Path) -> dict[str, Path]:
    """image → function folder, from an OpenFaaS stack.yml (handler paths are relative to the file)."""
    document = yaml.safe_load(stack_file.read_text()) or {}
    images = {}
    for name, function in (document.get("functions") or {}).items():
        image, handler = function.get("image"), function.get("handler")
        if not image or not handler:
            raise ValueError(f"{stack_file}: function {name} needs both image and handler")
        images[image] = (stack_file.parent / handler).resolve()
    return images


class StackPrograms:
    """Resolves images through functions/stack.yml and runs each folder the way local_openfaas.funcenv does
    (its own cached virtualenv, the template's entry point)."""

    def __init__(self, stack_file: Path):
        self.stack_file = stack_file
        self._images = stack_images(stack_file)
        self._cache: dict[str, Program] = {}

    def resolve(self, image: str) -> Program:
        if image in self._cache:
            return self._cache[image]
        folder = self._images.get(image)
        if folder is None:
            known = ", ".join(sorted(self._images)) or "none"
            raise UnknownImage(f"image {image!r} is not built from {self.stack_file} (known images: {known})")
        from local_openfaas import funcenv  # builds the folder's virtualenv on first use (the "image pull")

        command = [str(part) for part in funcenv.function_command(folder)]
        python, argv = command[0], tuple(command[1:])
        template = funcenv.function_spec(folder).template_dir
        requirements = [template / "requirements.txt", folder / "requirements.txt"]
        # What a pool process imports before it knows its function: the requirements, and the model store's
        # client (iris-client, funcenv.IRIS_CLIENT_DIR) that funcenv installs into every function's virtualenv:
        # with requests, ~50 ms of a start that a pool process would otherwise only learn after a first replica.
        names = [name for path in requirements for name in requirement_names(path)] + ["iris-client"]
        preload = tuple(dict.fromkeys(names))
        # What the image sets; PORT is the runtime's to choose per replica.
        image_env = {k: v for k, v in funcenv.function_environment(folder, port=0).items() if k != "PORT"}
        program = Program(python=python, argv=argv, cwd=folder, preload=preload, env=tuple(sorted(image_env.items())))
        self._cache[image] = program
        return program


class StaticPrograms:
    """Images mapped straight to programs by a YAML/JSON file — for functions that are not in stack.yml (a
    scratch function, a benchmark's stand-in):  {image: {python: ..., argv: [...], cwd: ..., preload: [...]}}"""

    def __init__(self, path: Path):
        self.path = path
        document = yaml.safe_load(path.read_text()) or {}
        self._programs = {
            image: Program(python=entry["python"], argv=tuple(entry["argv"]),
                           cwd=Path(entry.get("cwd") or path.parent), preload=tuple(entry.get("preload") or ()),
                           env=tuple(sorted((k, str(v)) for k, v in (entry.get("env") or {}).items())))
            for image, entry in document.items()
        }

    def resolve(self, image: str) -> Program:
        try:
            return self._programs[image]
        except KeyError:
            raise UnknownImage(f"image {image!r} is not listed in {self.path}") from None


class ChainedPrograms:
    """The first resolver that knows the image wins."""

    def __init__(self, *resolvers: ProgramResolver):
        self.resolvers = resolvers

    def resolve(self, image: str) -> Program:
        errors = []
        for resolver in self.resolvers:
            try:
                return resolver.resolve(image)
            except UnknownImage as error:
                errors.append(str(error))
        raise UnknownImage("; ".join(errors) or f"no program source for image {image!r}")
