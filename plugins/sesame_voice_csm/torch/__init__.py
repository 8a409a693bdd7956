"""The PyTorch backend (transformers): loading, the batched model, continuous batching, streaming Mimi.

Imported only to load it. Modules here use absolute imports, so ``import torch`` is always the real torch.
"""
