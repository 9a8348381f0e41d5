"""ONNX export: jax2onnx with native recurrent operators, scaling folded into the graph, parity checks."""
