"""`python -m lit` and the `lit` console script."""

import sys


def main() -> None:
    from lit import prefetch  # before the CLI's imports: see prefetch.py

    prefetch.start(sys.argv[1:])
    from lit.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
