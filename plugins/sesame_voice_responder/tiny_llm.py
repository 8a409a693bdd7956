"""A tiny, randomly initialised chat model served by ``transformers serve`` on the loopback.

For tests and benchmarks of the responder: a real OpenAI-compatible chat-completions server, never a
fake. Its replies are random sequences of short everyday sentences (its tokens), so what the server
speaks can be transcribed back and compared word by word with what the model wrote.
Needs the ``torch`` extra plus ``fastapi`` and ``uvicorn`` (the ``test`` extra).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PHRASES = (
    "The sun is warm today.",
    "I like green apples.",
    "The river is very cold.",
    "My dog runs in the park.",
    "We had soup for dinner.",
    "The coffee is ready now.",
    "She plays the piano well.",
    "The train leaves at night.",
    "He reads a good book.",
    "The garden has red flowers.",
    "It is raining outside.",
    "Please close the window.",
    "The children are playing.",
    "I will call you later.",
    "The kitchen smells nice.",
    "We walked along the beach.",
    "Bring a warm jacket.",
    "The music is too loud.",
    "Let us go home now.",
    "The bread is fresh.",
    "I need a new pencil.",
    "The market opens early.",
    "They live near the bridge.",
    "The sky is bright blue.",
    "Your letter arrived today.",
    "The lemon tastes sour.",
    "My brother likes pizza.",
    "The door is open.",
    "We can meet on Monday.",
    "The water is clean.",
    "I found my keys.",
    "The movie was funny.",
    "Turn left at the corner.",
    "The teacher is kind.",
    "I love summer mornings.",
    "The milk is in the fridge.",
    "The bus is late again.",
    "Thank you very much.",
)
"""The tokens of the tiny model: each one a short everyday sentence of common words. Single-word
tokens were tried first: Whisper tiny.en misheard random words spoken one after another far too
often ("Mountain. Camera." heard as "Mounting, Cabra"); whole sentences it hears like any speech."""
SPECIALS = ["<unk>", "<s>", "</s>", "<pad>"]
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }} {{ message['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant{% endif %}"
)
MODEL_NAME = "tiny-chat"


def write_tiny_chat_model(folder: Path, seed: int = 1234) -> Path:
    """Write a random 2-layer Llama (seeded) with a sentence-level tokenizer and a chat template to ``folder``."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = Path(folder)
    vocab = {token: i for i, token in enumerate(SPECIALS + list(PHRASES))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # never end on its own: replies are bounded by max_tokens
        model.lm_head.weight[vocab["</s>"]].zero_()
        model.lm_head.weight[: len(SPECIALS)] = 0.0
    model.generation_config = GenerationConfig(
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        max_new_tokens=24,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        pad_token_id=vocab["<pad>"],
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve_tiny_chat_model(folder: Path, startup_timeout: float = 240.0, log: Path | None = None) -> Iterator[str]:
    """Run ``transformers serve`` on the model in ``folder`` on 127.0.0.1; yield its ``/v1`` base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [
        sys.executable,
        "-c",
        "import sys; from transformers.cli.transformers import main; sys.exit(main())",
        "serve",
        str(folder),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
        "--default-seed",
        "7",
        "--log-level",
        "warning",
    ]
    sink = open(log, "wb") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"transformers serve exited with {process.returncode}" + (f"; see {log}" if log else "")
                )
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve did not answer within {startup_timeout:.0f} s")
            time.sleep(0.5)
        yield f"{base}/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            sink.close()
