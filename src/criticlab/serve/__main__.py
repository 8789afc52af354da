"""``python -m criticlab.serve [OPTIONS]`` is ``criticlab serve [OPTIONS]``."""

import sys

from criticlab.cli import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])
