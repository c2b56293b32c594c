"""The model: the BMI feature, the sklearn Pipeline a config builds, its evaluation, its ONNX
twin, and the one safe way to load a saved model."""
