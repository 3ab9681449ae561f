"""Training: the loop (:mod:`.loop`), the one training-data stream (:mod:`.samples`),
data-parallel plumbing (:mod:`.distributed`) and the loss registry (:mod:`.losses`).
Nothing outside training imports it."""
