import sys

from .cli import sample_main

sys.exit(sample_main(sys.argv[1:]))
