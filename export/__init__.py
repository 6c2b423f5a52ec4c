"""Export: a trained Keras model -> a streaming single-step ONNX file, checked for parity.

Needs the [train] extras (TensorFlow, tf2onnx, onnx). The files it writes carry the
metadata of deepbeat.modelmeta, which the TF-free runtime (deepbeat.runtime) reads.
"""
