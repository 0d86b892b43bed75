"""`python -m ssmoe ...` = the `ssmoe` command."""

from ssmoe.cli import main

if __name__ == "__main__":
    main()
