"""`OpenAIAgent`: any OpenAI-compatible ``/v1/chat/completions`` server (``vllm serve``, hosted
APIs), with the standard library only.

Requests of a batch run concurrently on a thread pool and come back in input order. Transient
failures (HTTP 429 and 5xx, connection errors, timeouts) are retried with exponential backoff
(honouring ``Retry-After``); anything else, or running out of retries, raises an error naming
the URL. Each request carries a seed derived from the agent seed and a request counter, so
servers that honour seeds (vLLM does) repeat their outputs.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agents.base import BaseAgent, Generation, Messages, derive_seed, resolve_seed

_RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
_TOKEN_ID = re.compile(r"^token_id:(\d+)$")


class OpenAIError(RuntimeError):
    """The server answered with an error, or could not be reached (message names the URL)."""


class OpenAIAgent(BaseAgent):
    """Chat-completions client.

    ``base_url`` is the API root, e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is
    appended; a URL already ending in it is used as is). ``api_key`` defaults to
    ``$OPENAI_API_KEY`` (none sent when unset). ``logprobs=True`` asks for per-token logprobs
    and parses them when the server returns them; ``extra_body`` is merged into every request
    (e.g. ``{"return_tokens_as_token_ids": True}`` on vLLM, whose ``token_id:N`` tokens are then
    parsed into ``completion_token_ids``).
    """

    _static_attrs = ("api_key", "_lock", "_pool")

    def __init__(self, base_url: str, model: str, name: str | None = None, *,
                 api_key: str | None = None, temperature: float = 1.0, top_p: float = 1.0,
                 max_new_tokens: int = 512, seed: int | None = None, max_concurrency: int = 8,
                 timeout: float = 120.0, max_retries: int = 5, backoff: float = 1.0,
                 max_backoff: float = 30.0, logprobs: bool = True,
                 extra_body: dict[str, Any] | None = None) -> None:
        if not re.match(r"^https?://", base_url or ""):
            raise ValueError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not model:
            raise ValueError("OpenAIAgent needs a model name (spec openai:BASE_URL#MODEL)")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ValueError("need max_concurrency >= 1, max_retries >= 0 and timeout > 0")
        url = base_url.rstrip("/")
        self.url = url if url.endswith("/chat/completions") else url + "/chat/completions"
        self.model = model
        self.name = name or f"openai:{model}"
        self.api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.seed = resolve_seed(seed)
        self.max_concurrency = int(max_concurrency)
        self.timeout = float(timeout)
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.logprobs = bool(logprobs)
        self.extra_body = dict(extra_body or {})
        self._requests = 0
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # -- requests -----------------------------------------------------------------------------

    def _payload(self, messages: Messages, seed: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model, "messages": messages, "temperature": self.temperature,
            "top_p": self.top_p, "max_tokens": self.max_new_tokens, "n": 1,
            "seed": seed % (2 ** 31),
        }
        if self.logprobs:
            body["logprobs"] = True
        body.update(self.extra_body)
        return body

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            delay = min(self.max_backoff, self.backoff * (2 ** attempt))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    raw = resp.read()
                try:
                    return json.loads(raw)
                except json.JSONDecodeError as exc:
                    raise OpenAIError(f"{self.url} returned non-JSON: {raw[:200]!r}") from exc
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:500].decode("utf-8", "replace")
                last = f"HTTP {exc.code}: {detail}"
                if exc.code not in _RETRY_STATUS:
                    raise OpenAIError(f"{self.url} rejected the request ({last})") from exc
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.strip().isdigit():
                    delay = min(self.max_backoff, float(retry_after))
            except urllib.error.URLError as exc:  # refused, DNS, TLS...
                last = f"connection error: {exc.reason}"
            except (TimeoutError, ConnectionError) as exc:
                last = f"{type(exc).__name__}: {exc or 'timed out'}"
            if attempt < self.max_retries:
                time.sleep(delay)
        raise OpenAIError(f"cannot get a completion from {self.url} after "
                          f"{self.max_retries + 1} attempt(s); last error: {last}. Is the server "
                          f"running and is the URL right (spec openai:BASE_URL#MODEL)?")

    def _parse(self, reply: dict[str, Any]) -> Generation:
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise OpenAIError(f"{self.url} returned no choices[0].message: "
                              f"{json.dumps(reply)[:300]}") from exc
        logprobs = token_ids = None
        content = (choice.get("logprobs") or {}).get("content") if isinstance(
            choice.get("logprobs"), dict) else None
        if content:
            logprobs = [float(item["logprob"]) for item in content]
            ids = [_TOKEN_ID.match(str(item.get("token", ""))) for item in content]
            if all(ids):
                token_ids = [int(m.group(1)) for m in ids]
        return Generation(text=text, completion_token_ids=token_ids, logprobs=logprobs,
                          finish_reason=choice.get("finish_reason"))

    def _one(self, messages: Messages, seed: int) -> Generation:
        return self._parse(self._post(self._payload(messages, seed)))

    def generate_messages(self, batch: Sequence[Messages],
                          seeds: Sequence[int] | None = None) -> list[Generation]:
        with self._lock:
            first = self._requests
            if seeds is None:
                self._requests += len(batch)
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency,
                                                thread_name_prefix="mars2-openai")
        if seeds is not None:
            seeds = [derive_seed(self.seed, s) for s in seeds]
        else:
            seeds = [derive_seed(self.seed, first + i) for i in range(len(batch))]
        futures = [self._pool.submit(self._one, m, s) for m, s in zip(batch, seeds, strict=True)]
        return [f.result() for f in futures]

    def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)
