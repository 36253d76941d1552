"""Greedy decoding on a static cache, with the one-token step captured once as a CUDA graph.

In: a loaded transformers model, the DynamicCache a prompt's prefill left (``length`` positions), the first
new token and its position, the stop ids. Out: the following tokens, chosen as generate() chooses them with
do_sample=False (argmax of the last position's logits), streamed one by one.

Why: once the pages are encoded (and reused: docs/prefix.md), an answer is all one-token steps, and in eager
PyTorch each step is some thousand small kernel launches from Python -- on a GPU the launches, not the
arithmetic, set the pace (docs/gpu.md has the numbers). A CUDA graph replays the whole step as one launch.
The step runs on a transformers StaticCache (fixed-size key/value tensors that a graph can keep pointing
at); its length, the token and the position live in device tensors the graph itself advances, so one
capture serves every later answer that fits the capacity.

On a CPU the same steps run without a graph (that is what the tests compare with generate()).
"""

from __future__ import annotations

# generation_config fields that add a logits processor to greedy search (the step here has none of them).
PROCESSOR_FIELDS = ("repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "suppress_tokens",
                    "begin_suppress_tokens", "sequence_bias", "forced_bos_token_id", "forced_eos_token_id",
                    "min_new_tokens", "min_length", "encoder_repetition_penalty", "exponential_decay_length_penalty")
NEUTRAL = (None, 0, 1.0, [], False)
# model_types of the transformers backend whose one-token step is known to capture, with the rows of
# positions it takes (Qwen3-VL: the text position, then M-RoPE's three axes). IXC2-4KHD takes one row.
GRAPH_TYPES = {"qwen3_vl": 4}
CAPACITY_STEP = 1024  # static caches come in multiples of this many positions: few captures, little waste


def plain_greedy(generation_config) -> bool:
    """Whether greedy search under this generation config is a bare argmax (no logits processor)."""
    return all(getattr(generation_config, name, None) in NEUTRAL for name in PROCESSOR_FIELDS)


def capacity_for(positions: int) -> int:
    return -(-positions // CAPACITY_STEP) * CAPACITY_STEP


class GraphDecoder:
    """One sequence's greedy steps on a StaticCache of ``capacity`` positions; captured on first use (CUDA)."""

    def __init__(self, model, capacity: int, rows: int):
        import torch
        from transformers.cache_utils import StaticCache

        self.model = model
        self.capacity = capacity
        device = model.device
        self.cache = StaticCache(config=model.config, max_cache_len=capacity)
        self.ids = torch.zeros(1, 1, dtype=torch.long, device=device)
        # One row of plain positions, or Qwen-VL's four: the text position (for the mask), then the three
        # M-RoPE axes (equal for text).
        self.positions = torch.zeros((rows, 1, 1) if rows > 1 else (1, 1), dtype=torch.long, device=device)
        self.graph = None
        self.out = None
        self.use_graph = device.type == "cuda"
        self.error: str | None = None  # why the step runs without a graph, when it could not be captured
        self.logits = None

    def start(self, prefill, length: int, token: int, position: int) -> None:
        """Copy the prompt's ``length`` cached positions in; the next step forwards ``token`` at ``length``,
        placed by the rotary embedding at ``position`` (``length`` plus Qwen-VL's rope delta)."""
        import torch

        with torch.inference_mode():
            for mine, theirs in zip(self.cache.layers, prefill.layers):
                if not mine.is_initialized:
                    mine.lazy_initialization(theirs.keys, theirs.values)
                mine.keys[:, :, :length].copy_(theirs.keys[:, :, :length])
                mine.values[:, :, :length].copy_(theirs.values[:, :, :length])
                mine.cumulative_length.fill_(length)
            self.ids.fill_(token)
            self.positions.fill_(position)
            if self.positions.dim() == 3:
                self.positions[0].fill_(length)

    def _step(self):
        out = self.model(input_ids=self.ids, cache=self.cache, position_ids=self.positions, logits_to_keep=1,
                         use_cache=True)
        self.logits = out.logits[:, -1]  # kept for the tests, which compare it with generate()'s scores
        chosen = self.logits.argmax(-1, keepdim=True)
        self.ids.copy_(chosen)
        self.positions.add_(1)
        return chosen

    def step(self):
        """Forward the current token; returns the next one (a (1, 1) device tensor) and advances."""
        import torch

        with torch.inference_mode():
            if self.use_graph and self.graph is None:
                self._capture()
            if not self.use_graph:
                return self._step()
            self.graph.replay()
            return self.out

    def _capture(self) -> None:
        """Warm up on a side stream (kernel choice, workspaces), put the state back, then record one step.
        A step that cannot be captured (a library syncing with the host inside it) runs without a graph."""
        import torch

        saved = self._state()
        try:
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(2):
                    self._step()
            torch.cuda.current_stream().wait_stream(stream)
            self._restore(saved)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.out = self._step()
            self.graph = graph
        except RuntimeError as exc:
            torch.cuda.synchronize()
            self.use_graph, self.error = False, str(exc).strip().splitlines()[0]
            self._restore(saved)

    def _state(self):
        return [layer.cumulative_length.clone() for layer in self.cache.layers], self.ids.clone(), self.positions.clone()

    def _restore(self, state) -> None:
        lengths, ids, positions = state
        for layer, length in zip(self.cache.layers, lengths):
            layer.cumulative_length.copy_(length)
        self.ids.copy_(ids)
        self.positions.copy_(positions)

    def decode(self, steps: int, stops: set[int], emit) -> list[int]:
        """Up to ``steps`` tokens after the current one, each passed to ``emit``; stops after a stop id."""
        tokens: list[int] = []
        for _ in range(steps):
            token = int(self.step())  # one sync per token: the answer streams as it grows
            tokens.append(token)
            emit(token)
            if token in stops:
                break
        return tokens


class _Prefill:
    """A streamer for the prefill's generate(): passes tokens on, keeps the stream open for the steps after."""

    def __init__(self, streamer):
        self.streamer = streamer

    def put(self, value) -> None:
        self.streamer.put(value)

    def end(self) -> None:
        pass


class Graphs:
    """A backend's decoder: one GraphDecoder at a time, replaced by a larger one when an answer needs it.
    ``rows``: how many rows of positions the model's one-token forward takes (4 for Qwen3-VL, else 1)."""

    def __init__(self, model, rows: int = 1):
        self.model = model
        self.rows = rows
        self.decoder: GraphDecoder | None = None

    def fits(self, positions: int) -> bool:
        """Whether an answer reaching ``positions`` may take the steps: within a dynamic-NTK rope's plain range
        (beyond it the base follows the exact length, which a static cache does not give the model), and with
        GPU memory for the static cache (a second copy of the prompt's keys and values: without room for it,
        generate() answers as before instead of failing)."""
        config = self.model.config
        limit = getattr(config, "max_position_embeddings", None)
        dynamic = getattr(config, "rope_dynamic_factor", None)
        if dynamic and limit and capacity_for(positions) > limit:
            return False
        if self.decoder is not None and self.decoder.capacity >= positions:
            return True
        return self._room_for(capacity_for(positions))

    def _room_for(self, capacity: int) -> bool:
        import torch

        if self.model.device.type != "cuda":
            return True
        text = self.model.config.get_text_config()
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        need = 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * capacity * 2  # keys, values; bf16
        free, _ = torch.cuda.mem_get_info(self.model.device)
        held = torch.cuda.memory_reserved(self.model.device) - torch.cuda.memory_allocated(self.model.device)
        mine = 0 if self.decoder is None else need * self.decoder.capacity // capacity  # freed before the new one
        return need * 5 // 4 < free + held + mine

    def generate(self, run: dict, cache, max_new_tokens: int, streamer, pad_token_id=None):
        """generate()'s greedy output ids for ``run`` (processor inputs or embeddings, or the part a ``cache``
        does not cover): the prompt and first token through generate(), the rest as steps on the static cache."""
        import torch

        extra = {} if pad_token_id is None else {"pad_token_id": pad_token_id}
        first = self.model.generate(**run, cache=cache, max_new_tokens=1, do_sample=False,
                                    streamer=_Prefill(streamer), **extra)
        token = int(first[0, -1])
        stops = stop_ids(self.model.generation_config)
        if max_new_tokens == 1 or token in stops:
            streamer.end()
            return first
        length = cache.get_seq_length()
        decoder = self._decoder(length + max_new_tokens)
        deltas = getattr(getattr(self.model, "model", None), "rope_deltas", None)
        delta = int(deltas.reshape(-1)[0]) if deltas is not None else 0
        decoder.start(cache, length, token, length + delta)
        tokens = decoder.decode(max_new_tokens - 1, stops, lambda t: streamer.put(torch.tensor([t])))
        streamer.end()
        return torch.cat([first, torch.tensor([tokens], dtype=first.dtype, device=first.device)], dim=1)

    def _decoder(self, positions: int) -> GraphDecoder:
        if self.decoder is None or self.decoder.capacity < positions:
            self.decoder = None  # its static cache and graph go before the larger ones are made
            self.decoder = GraphDecoder(self.model, capacity_for(positions), self.rows)
        return self.decoder


def applies(graphs: Graphs | None, max_new_tokens: int, prompt_positions: int) -> bool:
    """Whether an answer of up to ``max_new_tokens`` after ``prompt_positions`` takes the static-cache steps."""
    return (graphs is not None and max_new_tokens > 1 and plain_greedy(graphs.model.generation_config)
            and graphs.fits(prompt_positions + max_new_tokens))


def cache_or_new(cache, model):
    """``cache``, or an empty DynamicCache where generate() would have made its own (the steps need it)."""
    from transformers.cache_utils import DynamicCache

    return cache if cache is not None else DynamicCache(config=model.config)


def stop_ids(generation_config) -> set[int]:
    found = generation_config.eos_token_id
    return set(found if isinstance(found, (list, tuple)) else [] if found is None else [found])


__all__ = ["CAPACITY_STEP", "GRAPH_TYPES", "GraphDecoder", "Graphs", "applies", "cache_or_new", "capacity_for",
           "plain_greedy", "stop_ids"]
