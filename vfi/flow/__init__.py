"""Classical optical flow (OpenCV DIS), refined for cartoons: the ``dis`` baseline and
the start the flow network learns corrections on (a global-pan candidate, forward
splatting to time t). Depends on :mod:`vfi.nets` only for ``warp``."""
