"""The video application, ``inbetweener interpolate``: streaming cut and hold analysis
(:mod:`.analysis`), the output schedule (:mod:`.retime`), the encoder (:mod:`.writer`)
and the command (:mod:`.interpolate`). It predicts through :mod:`vfi.inference` and
never imports training or evaluation."""
