"""Streaming decode for transformers' ``MimiModel``: frames in, audio out, same samples as one full decode.

transformers decodes a whole code sequence at once. Mimi is causal, so a decoder that carries each
layer's state between calls gives the same audio incrementally: causal convolutions keep their
last ``padding_total`` input samples, transposed convolutions keep the overlap tail that the next
frames add to, and the decoder transformer keeps its KV cache (its sliding window bounds it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class MimiStream:
    """One stream's decoder state over a shared ``MimiModel`` (which it never mutates)."""

    def __init__(self, codec) -> None:
        self.codec = codec
        self.decoder = codec.decoder
        self._state: dict[int, torch.Tensor] = {}
        self._cache = None

    def reset(self) -> None:
        self._state.clear()
        self._cache = None

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Audio (batch, channels, frames × 1920) of ``codes`` (batch, codebooks, frames), continuing the stream."""
        from transformers import DynamicCache

        latents = self.codec.quantizer.decode(codes)
        decoder = self.decoder
        if decoder.upsample is not None:
            latents = self._convtr(decoder.upsample, latents)
        if self._cache is None:
            self._cache = DynamicCache(config=decoder.decoder_transformer.config)
        hidden = decoder.decoder_transformer(latents.transpose(1, 2), cache=self._cache, use_cache=True)
        return self._seanet(decoder.decoder_seanet.layers, hidden.last_hidden_state.transpose(1, 2))

    def _seanet(self, layers, x: torch.Tensor) -> torch.Tensor:
        for layer in layers:
            x = self._layer(layer, x)
        return x

    def _layer(self, layer, x: torch.Tensor) -> torch.Tensor:
        name = type(layer).__name__
        if name == "MimiConv1d":
            return self._conv(layer, x)
        if name == "MimiConvTranspose1d":
            return self._convtr(layer, x)
        if name == "MimiResnetBlock":
            residual = x if isinstance(layer.shortcut, torch.nn.Identity) else self._conv(layer.shortcut, x)
            return residual + self._seanet(layer.block, x)
        return layer(x)

    def _conv(self, layer, x: torch.Tensor) -> torch.Tensor:
        """A causal conv: prepend the inputs it has not seen the end of (zeros at the start, like its padding)."""
        if not layer.causal or layer.pad_mode != "constant" or layer.conv.stride[0] != 1:
            raise ValueError("streaming Mimi needs causal, zero-padded, stride-1 decoder convolutions")
        pad = int(layer.padding_total)
        key = id(layer)
        if pad:
            held = self._state.get(key)
            if held is None:
                held = x.new_zeros(x.shape[0], x.shape[1], pad)
            x = torch.cat([held, x], dim=2)
            self._state[key] = x[..., -pad:]
        return layer.conv(x)

    def _convtr(self, layer, x: torch.Tensor) -> torch.Tensor:
        """A causal transposed conv: emit what is complete, keep the overlap tail for the next frames."""
        conv = layer.conv
        stride = conv.stride[0]
        if layer.padding_left != 0:
            raise ValueError("streaming Mimi needs causal transposed convolutions (trim_right_ratio = 1)")
        y = F.conv_transpose1d(x, conv.weight, None, stride, groups=conv.groups)
        key = id(layer)
        held = self._state.get(key)
        if held is not None:
            y[..., : held.shape[-1]] += held
        done = x.shape[-1] * stride
        self._state[key] = y[..., done:]
        y = y[..., :done]
        return y if conv.bias is None else y + conv.bias[None, :, None]
