"""`python -m hwnas` (and `torchrun -m hwnas`) run the CLI."""

from hwnas.cli import main

if __name__ == "__main__":
    main()
