"""Export: a trained Keras model -> a streaming single-step ONNX file, checked for parity.

Needs the [train] extras (TensorFlow, tf2onnx, onnx), except `metadata`, which the
TF-free runtime (deepbeat.bridge.stepmodel) uses to read the files this package writes.
"""
