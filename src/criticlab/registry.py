"""Names -> critics and model engines: the one registry behind ``--critic``, ``--model``,
config files and plugins.

Two tables, filled the same way: :data:`CRITIC_KINDS` (critic names, ``--critic``) and
:data:`MODEL_KINDS` (model spec kinds, ``--model``). An entry is added by a decorator,
:func:`register_critic` on a factory ``(arg, model, options) -> Critic`` (``model`` a
:class:`ModelFactory`) or
:func:`register_model` on a builder ``(spec, options) -> LanguageModel``; criticlab's own
entries are registered that way in :mod:`criticlab.critics` and
:mod:`criticlab.models.spec`. An installed package adds its own through the entry-point
groups ``criticlab.critics`` and ``criticlab.models``: each entry point is named after what it
registers and points at the module whose decorators register it. Entry points are loaded
once, at a table's first lookup or listing, and never at ``import criticlab``; nor is any
engine (torch, llama.cpp, vLLM) imported before a model is built.

A name registered twice (from two places) is a :class:`~criticlab.errors.ConfigError`. A
plugin that fails to load (an import error, a name already taken, no entry of its name) is
logged once as a warning, and naming it raises that failure; the rest of criticlab keeps
working.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol, TypeVar

from criticlab.errors import ConfigError

if TYPE_CHECKING:
    from criticlab.critics.base import Critic
    from criticlab.models.base import GenerateConfig, LanguageModel
    from criticlab.models.spec import ModelSpec


log = logging.getLogger(__name__)


class _Entry(Protocol):
    @property
    def origin(self) -> str: ...


E = TypeVar("E", bound=_Entry)
F = TypeVar("F", bound=Callable[..., Any])
Arg = bool | Literal["optional"]


class Registry(Mapping[str, E]):
    """Names -> entries of one kind (``what``: "critic" or "model"), in registration order.
    The first lookup or listing imports ``builtins`` (which registers criticlab's own
    entries) and then loads the entry points of ``group``, once per process."""

    def __init__(self, what: str, group: str, builtins: str, forbidden: str) -> None:
        self.what, self.group, self.builtins, self.forbidden = what, group, builtins, forbidden
        self._entries: dict[str, E] = {}
        self._failed: dict[str, ConfigError] = {}
        self._state = "new"  # -> "loading" -> "loaded"
        self._lock = threading.RLock()

    def add(self, name: str, entry: E) -> None:
        """Register ``entry`` as ``name``. The same origin registering again (a reloaded
        module, a re-run notebook cell) replaces its entry; another origin is refused."""
        if not name or any(c in self.forbidden or c.isspace() for c in name):
            raise ConfigError(f"{name!r} cannot name a {self.what}: a name is not empty and "
                              f"has no white space and none of {', '.join(self.forbidden)}")
        with self._lock:
            old = self._entries.get(name)
            if old is not None and old.origin != entry.origin:
                raise ConfigError(f"the {self.what} {name!r} is registered twice: by "
                                  f"{old.origin} and by {entry.origin}; rename one of them")
            self._entries[name] = entry

    def failure(self, name: str) -> ConfigError | None:
        """Why the plugin of that name did not load, if it did not."""
        self._load()
        return self._failed.get(name)

    def __getitem__(self, name: str) -> E:
        self._load()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def _load(self) -> None:
        if self._state == "loaded":
            return
        with self._lock:  # re-entrant: a plugin being imported may look names up
            if self._state != "new":
                return
            self._state = "loading"
            try:
                importlib.import_module(self.builtins)
                from importlib.metadata import entry_points

                before = set(self._entries)
                for ep in entry_points(group=self.group):
                    self._load_plugin(ep, before)
            finally:
                self._state = "loaded"

    def _load_plugin(self, ep: Any, before: set[str]) -> None:
        dist = getattr(getattr(ep, "dist", None), "name", None)
        where = f"{ep.name} = {ep.value} ({self.group} entry point{f' of {dist}' if dist else ''})"
        kept = dict(self._entries)
        try:
            if ep.name in before:
                raise ConfigError(f"the {self.what} {ep.name!r} is registered already, by "
                                  f"{self._entries[ep.name].origin}")
            ep.load()
            if ep.name not in self._entries:
                raise ConfigError(f"loading it registered no {self.what} named {ep.name!r}")
        except Exception as e:  # a plugin's import may raise anything
            self._entries = kept  # nothing half-registered by a failed plugin stays
            self._failed[ep.name] = ConfigError(f"the plugin {where} did not load: {e}")
            log.warning("%s", self._failed[ep.name])


def _origin(obj: Callable[..., Any]) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _usage(name: str, arg: Arg) -> str:
    """How a name is written by default: ``NAME``, ``NAME:ARG`` or ``NAME[:ARG]``."""
    return f"{name}[:ARG]" if arg == "optional" else f"{name}:ARG" if arg else name


# -- critics ----------------------------------------------------------------------------------
class CriticOptions(NamedTuple):
    """What ``--samples``, ``--template``, ``--max-tokens`` and ``--structured`` say, for a
    critic factory to use as it sees fit (a verifier ignores them; an LM critic passes
    ``structured`` on: its replies then follow its JSON schema)."""

    samples: int = 1
    template: str | None = None
    max_tokens: int = 1024
    structured: bool = False

    def greedy(self) -> GenerateConfig:
        """The decoding of one critique: greedy, up to ``max_tokens``."""
        from criticlab.models.base import GenerateConfig

        return GenerateConfig(temperature=0.0, max_tokens=self.max_tokens)

    def vote(self, critic: Critic) -> Critic:
        """``critic`` itself, or a majority vote over ``samples`` of its critiques."""
        from criticlab.critics.ensemble import VoteCritic

        return VoteCritic([critic], self.samples) if self.samples > 1 else critic


class ModelFactory(Protocol):
    """What a critic factory receives as ``model``: ``model()`` is the ``--model`` engine,
    ``model(spec)`` the engine of another model spec (such as ``prm:DIR`` for a PRM critic),
    each built once (per spec) and, in a job, wrapped in the run's store."""

    def __call__(self, spec: str | None = None, /) -> LanguageModel: ...


CriticFactory = Callable[[str, ModelFactory, CriticOptions], "Critic"]


class CriticKind(NamedTuple):
    """One critic name: ``usage`` is how it is written (``ARG`` in capitals); ``arg`` whether
    it takes an argument after the colon (``True``: it must, ``"optional"``: it may);
    ``needs_model`` whether it asks for ``--model`` (or a test of the argument)."""

    name: str
    usage: str
    build: CriticFactory
    arg: Arg = False
    needs_model: bool | Callable[[str], bool] = True
    origin: str = ""


CRITIC_KINDS: Registry[CriticKind] = Registry("critic", "criticlab.critics", "criticlab.critics",
                                              forbidden=":,")


def register_critic(name: str, *, usage: str | None = None, arg: Arg = False,
                    needs_model: bool | Callable[[str], bool] = True
                    ) -> Callable[[F], F]:
    """Register the decorated factory ``(arg, model, options) -> Critic`` as critic ``name``.
    ``arg`` is the text after the first colon (``""`` when there is none); ``model()`` builds
    the ``--model`` engine and ``model(spec)`` the engine of another spec (once each: callers
    cache them), so call it only if the critic needs one; ``options`` is a
    :class:`CriticOptions`. ``needs_model=False`` for a verifier (no
    ``--model`` is checked or named in run directories)."""

    def decorate(factory: F) -> F:
        CRITIC_KINDS.add(name, CriticKind(name, usage or _usage(name, arg), factory, arg,
                                          needs_model, _origin(factory)))
        return factory

    return decorate


class _Listing(Sequence[str]):
    """A live list of usages (plugins included), for help texts: ``', '.join(CRITICS)``."""

    def __init__(self, items: Callable[[], list[str]]) -> None:
        self._items = items

    def __getitem__(self, i: Any) -> Any:
        return self._items()[i]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __repr__(self) -> str:
        return repr(tuple(self._items()))


CRITICS: Sequence[str] = _Listing(
    lambda: [k.usage for k in CRITIC_KINDS.values()] + ["A,B,... (a vote)"])


def _parse_critic(spec: str) -> tuple[str, str, CriticKind | None]:
    """The name, the argument and the entry of a critic spec (``A,B`` is ``vote:A,B``)."""
    name, _, arg = spec.strip().partition(":")
    if "," in spec and name != "vote":
        name, arg = "vote", spec
    return name, arg, CRITIC_KINDS.get(name)


def _fits(kind: CriticKind, arg: str) -> bool:
    """Whether ``arg`` is there exactly when ``kind`` wants one."""
    return kind.arg == "optional" or bool(arg) == kind.arg


def unknown_critic(spec: str) -> ConfigError:
    """The error for a critic spec of no known form."""
    return ConfigError(f"unknown critic {spec!r}; use one of: {', '.join(CRITICS)}")


def make_critic(spec: str, model: ModelFactory | Callable[[], LanguageModel], *,
                samples: int = 1, template: str | None = None, max_tokens: int = 1024,
                structured: bool = False) -> Critic:
    """Build a critic from its name; ``model`` is called only if the critic needs an LM:
    ``model()`` for the ``--model`` engine, ``model(spec)`` for the engine of another spec
    (a :class:`ModelFactory`). A ``model`` that takes no argument gets the other specs'
    engines from :func:`make_model`, built once each and not cached in any store."""
    name, arg, kind = _parse_critic(spec)
    if kind is None or not _fits(kind, arg):
        raise CRITIC_KINDS.failure(name) or unknown_critic(spec)
    return kind.build(arg, _factory(model),
                      CriticOptions(samples, template, max_tokens, structured))


class _WithSpecs:
    """A :class:`ModelFactory` from a callable that builds the ``--model`` engine only."""

    def __init__(self, default: Callable[[], LanguageModel]) -> None:
        self.default = default
        self.built: dict[str, LanguageModel] = {}
        self._lock = threading.Lock()

    def __call__(self, spec: str | None = None, /) -> LanguageModel:
        if spec is None:
            return self.default()
        with self._lock:
            if spec not in self.built:
                self.built[spec] = make_model(spec)
            return self.built[spec]


def _factory(model: ModelFactory | Callable[[], LanguageModel]) -> ModelFactory:
    if isinstance(model, _WithSpecs):
        return model
    try:
        inspect.signature(model).bind("spec")
    except TypeError:  # takes no spec: model() is all it builds
        return _WithSpecs(model)
    except ValueError:  # no signature to read: take it at its word
        pass
    return model  # type: ignore[return-value]


def uses_model(spec: str) -> bool:
    """Whether the critic ``spec`` names needs a language model (verifiers alone do not; an
    unknown name is taken to need one)."""
    _, arg, kind = _parse_critic(spec)
    if kind is None:
        return True
    return kind.needs_model(arg) if callable(kind.needs_model) else kind.needs_model


# -- models -----------------------------------------------------------------------------------
class ModelOptions(NamedTuple):
    """The engine settings of the command line: ``base_url``, ``timeout`` and ``concurrency``
    (``openai:``), ``threads`` (the llama.cpp engines), ``tensor_parallel_size``
    (``vllm:``). A builder uses those that apply to it."""

    base_url: str | None = None
    threads: int | None = None
    timeout: float = 120.0
    concurrency: int = 8
    tensor_parallel_size: int = 1


ModelBuilder = Callable[["ModelSpec", ModelOptions], "LanguageModel"]


class ModelKind(NamedTuple):
    """One kind of model spec: ``usage`` is how it is written (``ARG`` in capitals), ``what``
    says what it runs; ``arg`` whether it takes an argument after the colon; ``gpu`` whether
    its engine needs a GPU; ``build`` makes the engine, whose ``name`` is ``engine_name(spec)``
    (by default the spec itself, ``kind:arg``)."""

    kind: str
    usage: str
    what: str
    arg: bool
    gpu: bool = False
    build: ModelBuilder | None = None
    engine_name: Callable[[ModelSpec], str] | None = None
    origin: str = ""


MODEL_KINDS: Registry[ModelKind] = Registry("model", "criticlab.models",
                                            "criticlab.models.spec", forbidden=":")
MODEL_SPECS: Sequence[str] = _Listing(lambda: [k.usage for k in MODEL_KINDS.values()])


def register_model(kind: str, *, what: str, usage: str | None = None, arg: bool = False,
                   gpu: bool = False, name: Callable[[ModelSpec], str] | None = None
                   ) -> Callable[[F], F]:
    """Register the decorated builder ``(spec, options) -> LanguageModel`` as the engine of
    model specs ``KIND`` or ``KIND:ARG`` (``arg=True``). ``spec`` is the parsed
    :class:`~criticlab.models.spec.ModelSpec`, ``options`` a :class:`ModelOptions`. ``name``
    gives the engine's ``name`` (a cache key) without building it, when that is not the spec
    string itself. Import heavy libraries inside the builder, not at module level."""

    def decorate(builder: F) -> F:
        MODEL_KINDS.add(kind, ModelKind(kind, usage or _usage(kind, arg), what, arg, gpu,
                                        builder, name, _origin(builder)))
        return builder

    return decorate


def check_model_spec(spec: str) -> ModelSpec:
    """The parsed spec; ``ConfigError`` for a spec of no known form (nothing is loaded)."""
    from criticlab.models.spec import ModelSpec

    return ModelSpec.parse(spec)


def make_model(spec: str | ModelSpec, *, base_url: str | None = None,
               threads: int | None = None, timeout: float = 120.0, concurrency: int = 8,
               tensor_parallel_size: int = 1) -> LanguageModel:
    """The engine a model spec names (see :data:`MODEL_KINDS`); the one place engines are
    built from specs. Its ``name`` is ``ModelSpec.parse(spec).name``. ``base_url``,
    ``timeout`` and ``concurrency`` are for ``openai:``, ``threads`` for the llama.cpp engines
    (``hf:`` reads ``CRITICLAB_THREADS``: torch's setting is per process),
    ``tensor_parallel_size`` for ``vllm:``."""
    from criticlab.models.spec import ModelSpec

    parsed = ModelSpec.parse(spec)
    kind = MODEL_KINDS.get(parsed.kind)
    if kind is None or kind.build is None:  # a ModelSpec or a ModelKind made by hand
        raise ConfigError(f"model {str(parsed)!r}: no engine is registered for its kind; "
                          f"use one of: {', '.join(MODEL_SPECS)}")
    return kind.build(parsed, ModelOptions(base_url, threads, timeout, concurrency,
                                           tensor_parallel_size))


class _Unbuilt:
    """Stands in for a model while names are checked; never asked to generate or score."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def generate(self, messages: object, config: object) -> list[object]:
        raise AssertionError("a placeholder model was asked to generate")

    async def score_steps(self, question: object, steps: object) -> object:
        raise AssertionError("a placeholder model was asked to score steps")


def check_names(critic: str, model: str, *, template: str | None = None,
                structured: bool = False) -> None:
    """Check a critic and a model spec (and the template) before any work starts. Nothing is
    built: a spec the critic names itself (``model(spec)``) is parsed, not loaded."""

    def placeholder(spec: str | None = None, /) -> LanguageModel:
        if spec is None:
            return _Unbuilt(model)  # type: ignore[return-value]
        return _Unbuilt(check_model_spec(spec).name)  # type: ignore[return-value]

    make_critic(critic, placeholder, template=template, structured=structured)
    if uses_model(critic):
        check_model_spec(model)
