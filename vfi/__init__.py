"""The in-betweening model, by role; arrows point one way (see docs/ARCHITECTURE.md):

nets (pure torch) <- flow (classical, OpenCV) <- inference (pad/run/crop, checkpoints,
the method registry, metrics) <- training | evaluation | app (``inbetweener
interpolate``). ``vfi.train`` and ``vfi.evaluate`` are the two DVC stage modules.
"""
