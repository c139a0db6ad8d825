"""The LLM answerer: a local GGUF model through llama-cpp-python, streamed, grammar-constrained.

One question costs one generation. The prompt (rag/prompt.py) is rendered with the chat template
stored in the GGUF and counted with the model's own tokenizer, so the sources are trimmed to the
real context window with ``max_tokens`` left for the answer. Decoding is constrained by a GBNF
grammar built for the ``k`` sources actually given (rag/grammar.py), so a marker outside
``[1]``..``[k]`` cannot be produced; afterwards every cited sentence is checked against its
source (rag/grounding.py). The same model, when configured, rewrites follow-up questions.

llama_cpp is imported only when the model is first used: constructing the answerer checks the
file (it must exist and start with the GGUF magic bytes) but loads nothing, so the CLI and the UI
start fast and a bad path fails before any retrieval work. One Llama object serves one
generation at a time (a lock), because llama.cpp contexts are not thread-safe; a streamed answer
is generated on a thread of its own, so the caller's generator holds no lock between pieces.

On CPUs that report AMX, llama.cpp's repacked weight layouts ("extra buffer types") are turned
off by default: with llama-cpp-python 0.3 on such a (virtualised) CPU every quantised model
crashed the process in its first decode, while the plain CPU kernels answer correctly.
"""

from __future__ import annotations

import contextlib
import copy
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelError
from .grammar import ABSTAIN_SENTENCE, AnswerShape, GrammarError, check_gbnf, citation_grammar, line_grammar
from .grounding import ground
from .models import Answer, Passage, Query, Timings
from .prompt import Message, Prompt, fit_prompt, rewrite_messages

GGUF_MAGIC = b"GGUF"

FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML, used only for a GGUF that stores no ``tokenizer.chat_template``."""


def physical_cores() -> int:
    """Physical CPU cores available to this process (hyper-threads do not speed up llama.cpp)."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        phys = core = None
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "physical id":
                    phys = value
                elif key == "core id":
                    core = value
                elif not key and phys is not None and core is not None:
                    cores.add((phys, core))
                    phys = core = None
        if phys is not None and core is not None:
            cores.add((phys, core))
    except OSError:
        pass
    return max(1, min(available, len(cores) or available))


def cpu_has_amx() -> bool:
    """Whether the CPU reports Intel AMX tiles (see the module docstring)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" in line.split()
    except OSError:
        pass
    return False


_PARAMS_LOCK = threading.Lock()


@contextlib.contextmanager
def _model_params(use_extra_bufts: bool) -> Iterator[None]:
    """llama-cpp-python has no option for llama.cpp's ``use_extra_bufts``; while a Llama is
    constructed, hand it default model parameters with the flag set."""
    import llama_cpp.llama as llama_module

    low = llama_module.llama_cpp
    original = low.llama_model_default_params
    if use_extra_bufts or not hasattr(original(), "use_extra_bufts"):
        yield
        return

    def params():  # type: ignore[no-untyped-def]
        p = original()
        p.use_extra_bufts = False
        return p

    with _PARAMS_LOCK:
        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = original


@dataclass(frozen=True)
class LLMSettings:
    """How the model runs. Defaults suit a 2-4 core laptop and reproducible answers.

    Attributes:
        n_ctx: Context window in tokens (capped at the model's training context).
        n_threads: CPU threads; None = the number of physical cores.
        max_tokens: Longest answer, in tokens (reserved in the context window).
        temperature: 0 = greedy decoding, the same answer every time.
        seed: Sampling seed, used when temperature > 0.
        n_batch: Prompt tokens evaluated per batch.
        repack: llama.cpp's repacked CPU weight layouts (AMX, AVX repack); None = on, except
            on CPUs that report AMX (see the module docstring).
    """

    n_ctx: int = 4096
    n_threads: int | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0
    n_batch: int = 512
    repack: bool | None = None

    def __post_init__(self) -> None:
        checks = [
            ("n_ctx", self.n_ctx, isinstance(self.n_ctx, int) and 64 <= self.n_ctx <= 1 << 20, "64..1048576"),
            ("n_threads", self.n_threads,
             self.n_threads is None or (isinstance(self.n_threads, int) and 1 <= self.n_threads <= 512), "1..512"),
            ("max_tokens", self.max_tokens, isinstance(self.max_tokens, int) and 1 <= self.max_tokens < self.n_ctx,
             f"1..{self.n_ctx - 1} (below n_ctx)"),
            ("temperature", self.temperature,
             isinstance(self.temperature, (int, float)) and 0.0 <= self.temperature <= 2.0, "0..2"),
            ("n_batch", self.n_batch, isinstance(self.n_batch, int) and 1 <= self.n_batch, "at least 1"),
        ]
        for name, value, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"{name} must be {allowed}, got {value!r}")

    @property
    def threads(self) -> int:
        return self.n_threads or physical_cores()

    @property
    def use_repack(self) -> bool:
        return self.repack if self.repack is not None else not cpu_has_amx()


def check_gguf(path: str | Path) -> Path:
    """The path of a readable GGUF file, or a ModelError naming it."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"model file not found: {p}")
    if not p.is_file():
        raise ModelError(f"model path is not a file: {p}")
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise ModelError(f"cannot read model file {p}: {e.strerror or e}") from None
    if magic != GGUF_MAGIC:
        raise ModelError(f"not a GGUF model file (expected magic bytes {GGUF_MAGIC!r}, found {magic!r}): {p}")
    return p


def resolve_model(model: str | Path | None) -> Path | None:
    """The GGUF to use: ``model``, else ``$RAG_MODEL``, else None (extractive answers).

    A bare file name that does not exist here is looked up in the model cache
    (``rag model pull`` puts files there).
    """
    if model is None:
        model = os.environ.get("RAG_MODEL") or None
    if model is None or str(model).strip() == "":
        return None
    p = Path(model).expanduser()
    if not p.exists() and len(p.parts) == 1:
        from .model_cache import find_cached

        cached = find_cached(p.name)
        if cached is not None:
            p = cached
    return check_gguf(p)


class LlamaCppAnswerer:
    """Answers from numbered sources with a local GGUF model; see the module docstring.

    Args:
        model: Path of a ``.gguf`` file.
        settings: Context size, threads, answer length, temperature.
        shape: Grammar bounds on the answer's length.
    """

    mode = "llm"

    def __init__(self, model: str | Path, settings: LLMSettings | None = None, *,
                 shape: AnswerShape | None = None) -> None:
        self.path = check_gguf(model)
        self.settings = settings or LLMSettings()
        self.shape = shape or AnswerShape()
        self._llm: Any = None
        self._formatter: Any = None
        self._lock = threading.RLock()

    def with_settings(self, **changes: Any) -> LlamaCppAnswerer:
        """This answerer with other generation settings (``max_tokens``, ``temperature``,
        ``seed``), for one request: the view shares the loaded model and its lock, so it never
        loads a second copy and still generates one answer at a time. Close the original only.
        """
        unknown = set(changes) - {"max_tokens", "temperature", "seed"}
        if unknown:
            raise ConfigError(f"only max_tokens, temperature and seed can change per request, not {sorted(unknown)}")
        settings = replace(self.settings, **changes)  # validated like any LLMSettings
        _ = self.llm  # loaded here, once, so the view shares it
        view = copy.copy(self)
        view.settings = settings
        return view

    # ------------------------------------------------------------------ model

    @property
    def llm(self) -> Any:
        """The llama_cpp.Llama object, loaded on first use."""
        with self._lock:
            if self._llm is None:
                self._load()
            return self._llm

    def _load(self) -> None:
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as e:  # pragma: no cover - a declared dependency
            raise ModelError(f"llama-cpp-python is not installed ({e}); needed for --model {self.path}") from None
        s = self.settings
        threads = s.threads
        try:
            with _model_params(use_extra_bufts=s.use_repack):
                llm = llama_cpp.Llama(
                    model_path=str(self.path), n_ctx=s.n_ctx, n_batch=min(s.n_batch, s.n_ctx),
                    n_threads=threads, n_threads_batch=threads, seed=s.seed, verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelError(f"llama.cpp could not load the model {self.path}: {e}") from None
        template = llm.metadata.get("tokenizer.chat_template") or FALLBACK_CHAT_TEMPLATE
        eos, bos = llm.token_eos(), llm.token_bos()
        text = llm._model.token_get_text
        self._formatter = Jinja2ChatFormatter(
            template=template, eos_token=text(eos) if eos != -1 else "", bos_token=text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        self._llm = llm

    @property
    def context_window(self) -> int:
        """Usable context: the configured n_ctx, capped at the model's training context."""
        llm = self.llm
        try:
            train = int(llm._model.n_ctx_train())
        except (AttributeError, TypeError, ValueError):
            arch = llm.metadata.get("general.architecture", "llama")
            train = int(llm.metadata.get(f"{arch}.context_length", 0) or 0)
        return min(llm.n_ctx(), train) if train > 0 else llm.n_ctx()

    def render(self, messages: list[Message]) -> tuple[list[int], list[str]]:
        """Prompt tokens through the GGUF's chat template, and the stop strings it implies."""
        llm = self.llm
        result = self._formatter(messages=messages)
        tokens = llm.tokenize(result.prompt.encode("utf-8"), add_bos=not result.added_special, special=True)
        stop = result.stop if isinstance(result.stop, list) else [result.stop] if result.stop else []
        return tokens, [x for x in stop if x]

    def count(self, messages: list[Message]) -> int:
        """Tokens the rendered messages take, by the model's own tokenizer."""
        return len(self.render(messages)[0])

    def grammar(self, text: str) -> Any:
        """A LlamaGrammar for ``text``, after our checks and llama.cpp's own parser accept it."""
        check_gbnf(text)
        import llama_cpp

        llm = self.llm
        try:
            native = llama_cpp.llama_sampler_init_grammar(llm._model.vocab, text.encode("utf-8"), b"root")
        except (AttributeError, TypeError):  # an older binding: our own check has to do
            native = True
        else:
            if native:
                llama_cpp.llama_sampler_free(native)
        if not native:
            raise GrammarError("llama.cpp rejected the grammar:\n" + text)
        return llama_cpp.LlamaGrammar.from_string(text, verbose=False)

    def prepare(self, query: Query, passages: Sequence[Passage]) -> Prompt:
        """The prompt for a question: sources trimmed to the window minus ``max_tokens``."""
        budget = self.context_window - self.settings.max_tokens
        return fit_prompt(query.text, passages, count=self.count, budget=budget)

    def _generate(self, tokens: list[int], grammar: Any, stop: list[str], max_tokens: int) -> Iterator[tuple[str, str | None]]:
        s = self.settings
        for chunk in self.llm.create_completion(
            tokens, max_tokens=max_tokens, temperature=s.temperature, seed=s.seed, stream=True,
            grammar=grammar, stop=stop,
        ):
            choice = chunk["choices"][0]
            yield choice.get("text") or "", choice.get("finish_reason")

    # ------------------------------------------------------------------ answering

    def _run(self, query: Query, passages: list[Passage], emit: Callable[[str], None],
             cancelled: threading.Event | None = None) -> Answer:
        """One generation under the model lock: ``emit`` gets each text piece; the Answer is returned.

        The pieces join to ``Answer.text`` exactly (leading and trailing whitespace dropped).
        """
        t0 = time.perf_counter()
        with self._lock:
            prompt = self.prepare(query, passages)
            if not prompt.sources:
                emit(ABSTAIN_SENTENCE)
                return Answer(question=query.text, text=ABSTAIN_SENTENCE, citations=[], passages=passages,
                              abstained=True, mode=self.mode,
                              timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000))
            tokens, stop = self.render(prompt.messages)
            grammar = self.grammar(citation_grammar(prompt.k, self.shape))
            pieces: list[str] = []
            pending = ""  # trailing whitespace, held back until more text follows
            first_ms: float | None = None
            n_generated = 0
            for text, _reason in self._generate(tokens, grammar, stop, self.settings.max_tokens):
                if cancelled is not None and cancelled.is_set():
                    break
                if not text:
                    continue
                n_generated += 1
                if not pieces and not pending:
                    text = text.lstrip()
                body = text.rstrip()
                if not body:
                    pending += text
                    continue
                if first_ms is None:
                    first_ms = (time.perf_counter() - t0) * 1000
                pieces.append(pending + body)
                pending = text[len(body):]
                emit(pieces[-1])
        text = "".join(pieces)
        g = ground(text, prompt.sources, query.text)
        return Answer(
            question=query.text, text=text, citations=g.citations, passages=passages,
            abstained=g.abstained, mode=self.mode, unsupported=g.unsupported,
            timings=Timings(answer_ms=(time.perf_counter() - t0) * 1000, first_token_ms=first_ms,
                            prompt_tokens=len(tokens), generated_tokens=n_generated),
        )

    def stream(self, query: Query, passages: list[Passage]) -> Iterator[str | Answer]:
        """Yields the answer text in pieces as it is generated, then the complete Answer.

        Generation runs on a thread of its own that holds the model lock, so this generator holds
        no lock between items: any thread may advance it, and closing it early stops the
        generation at the next token.
        """
        items: queue.Queue[tuple[str, Any]] = queue.Queue()
        cancelled = threading.Event()

        def produce() -> None:
            try:
                items.put(("answer", self._run(query, passages, lambda p: items.put(("piece", p)), cancelled)))
            except BaseException as e:  # handed to the consumer, which re-raises it
                items.put(("error", e))

        worker = threading.Thread(target=produce, name="llm-generate", daemon=True)
        worker.start()
        try:
            while True:
                kind, value = items.get()
                if kind == "piece":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    yield value
                    return
        finally:
            cancelled.set()

    def answer(self, query: Query, passages: list[Passage]) -> Answer:
        """The complete Answer, without streaming."""
        return self._run(query, passages, lambda piece: None)

    def rewrite(self, question: str, history: Sequence[tuple[str, str]], *, max_tokens: int = 64) -> str | None:
        """The model's standalone version of a follow-up question (one line), or None."""
        with self._lock:
            messages = rewrite_messages(question, history)
            tokens, stop = self.render(messages)
            limit = self.context_window - max_tokens
            if len(tokens) > limit:  # long answers in the history: keep only the last turn
                tokens, stop = self.render(rewrite_messages(question, list(history)[-1:], max_answer_chars=200))
                if len(tokens) > limit:
                    return None
            grammar = self.grammar(line_grammar(300))
            text = "".join(t for t, _ in self._generate(tokens, grammar, stop, max_tokens))
        return " ".join(text.split()) or None

    def close(self) -> None:
        with self._lock:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
