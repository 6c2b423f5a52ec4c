"""Training and evaluation of the drum LSTM (imports TensorFlow; nothing outside training/ and export/ may)."""
