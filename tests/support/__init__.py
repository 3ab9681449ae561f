"""What the tests share: builders of inputs with known truth (synthetic videos and
tables, bad files, tiny shards and params), the hand-checked real truth, a local HTTP
server, and workers that misbehave on purpose. No test module imports another."""
