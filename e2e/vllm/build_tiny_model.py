"""Build the tiny random-weight Llama model that the e2e tier serves with the real vLLM.

Called by ``e2e/vllm/setup.sh`` with the vLLM virtualenv's Python (it needs torch, transformers
and tokenizers, which the project's own virtualenv does not have):

    VENV/bin/python e2e/vllm/build_tiny_model.py VENV/tiny-llama

No network: the tokenizer is trained here on a small built-in corpus and the weights are seeded
random numbers, so the output is the same on every machine and nothing comes from a model hub.
The model talks nonsense; the e2e tests only need vLLM to load it, tokenize, generate, stream,
count usage and enforce the context length. Shapes are chosen for vLLM's CPU backend: head_dim
64 (it supports 32, 64, 80, 96, ...) and 2048 positions (the server runs with 512).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SEED = 1234
VOCAB_SIZE = 1024
BOS, EOS, PAD = "<s>", "</s>", "<pad>"

# Roles are rendered as plain text so any sequence of messages (system, user, assistant, tool)
# becomes one prompt; the trailing "assistant:" asks the model to answer.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ message['role'] }}: "
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Switchman routes each request to the model that can serve it best.",
    "A gateway sits between clients and the inference servers behind it.",
    "Hello! How are you today? I am fine, thank you. What can I do for you?",
    "Say hello in three words. Count from one to ten: one two three four five six seven "
    "eight nine ten.",
    "Kubernetes runs containers in pods; an operator reconciles custom resources.",
    "The cache holds keys and values; a prefix shared by many prompts is computed once.",
    "Streaming responses arrive as server-sent events, one chunk at a time, until done.",
    "system: You are a helpful assistant.\nuser: Tell me a story.\nassistant: Once upon a time",
    "Numbers 0 1 2 3 4 5 6 7 8 9 10 100 1000 and symbols , . ; : ! ? ' \" ( ) [ ] { } - + * / =",
    "Tokens, latency, throughput, queue depth, time to first token, errors and retries.",
    "def main():\n    print('hello world')\n    return 0\n",
]


def build_tokenizer() -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer on the corpus and wrap it for transformers."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # Repeat the corpus so the trainer has enough pair counts to merge up to VOCAB_SIZE.
    tokenizer.train_from_iterator(CORPUS * 20, trainer=trainer)
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=2048,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(tokenizer: PreTrainedTokenizerFast) -> LlamaForCausalLM:
    """A 2-layer Llama with seeded random weights sized to the tokenizer."""
    torch.manual_seed(SEED)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        intermediate_size=512,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        head_dim=64,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    return LlamaForCausalLM(config).eval()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer()
    model = build_model(tokenizer)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {out}: {params / 1e6:.1f}M parameters, vocab {len(tokenizer)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
