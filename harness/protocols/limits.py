"""Upper bounds of protocol settings that are loop counts: beyond them a run is a typo that never ends.
(A module of its own: the protocol configs are built when a suite is read, before anything heavy loads.)"""

MAX_REPEATS = 1_000  # k-shot draws
MAX_CS = 100  # probe regularisation values tried
MAX_EPOCHS = 10_000  # fine-tune epochs (each one a pass over the training split)
MAX_STEPS = 10_000_000  # fine-tune optimizer steps
