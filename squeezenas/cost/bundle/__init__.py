"""Latency tables for devices that cannot run the project: ``export`` writes an ONNX bundle and imports the
results; ``runner`` is the standalone script (numpy + onnxruntime) that times the bundle on the device.

Import from the modules themselves (``squeezenas.cost.bundle.export``): the timer imports the runner's
procedure, so this package must load without the lookup-table code that ``export`` needs.
"""
