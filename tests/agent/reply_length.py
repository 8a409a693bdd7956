"""How long the tiny LLM's replies are, shared by the agent tests (a module of its own: every test
folder has a ``conftest``, so ``from conftest import`` depends on which one was imported last)."""

REPLY_TOKENS = 6
"""Replies of the tiny model are this many short sentences, its tokens (greedy decoding: the same
messages, the same reply)."""
