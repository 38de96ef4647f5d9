"""A tiny command-line greeter, for trying `ao run leader-worker` on."""

import sys


def greet(name: str) -> str:
    return f"Hello, {name}!"


def main(argv: list[str]) -> int:
    name = argv[1] if len(argv) > 1 else "world"
    print(greet(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
