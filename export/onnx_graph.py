"""The single-step tf.function converted to an ONNX graph."""

ONNX_OPSET = 17


def convert_to_onnx(step):
    """The ONNX ModelProto of a step function, graph outputs named as the function's dict keys."""
    import tf2onnx

    proto, _ = tf2onnx.convert.from_function(step, input_signature=step.input_signature, opset=ONNX_OPSET)
    return proto
