// placeholder; the ONNX importer lands here.
