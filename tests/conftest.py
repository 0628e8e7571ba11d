import os

# Tests run on CPU with quiet progress bars, whatever machine they are on.
os.environ.setdefault("SEGKIT_DEVICE", "cpu")
os.environ.setdefault("SEGKIT_PROGRESS", "0")
