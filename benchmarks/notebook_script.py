"""A generated notebook as a plain Python script, for machines without Jupyter (a GPU box).

    python -m benchmarks.notebook_script _build/notebooks/pytorch/deep-rnn.ipynb > deep-rnn.py

Code cells are joined in order, each preceded by a comment naming its chapter line; IPython
magics (``%matplotlib inline``) are dropped. Run the script with ``D2L_PLOT=none`` or a
non-interactive matplotlib backend.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def script(nb: dict) -> str:
    """The code cells of ``nb`` as one script, magics removed."""
    parts = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        where = cell.get("metadata", {}).get("d2l", {})
        lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        header = f"# ---- {where.get('source', '?')}:{where.get('line', '?')}"
        parts.append(header + "\n" + "\n".join(lines))
    return "\n\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        print(f"{path}: error: not a readable notebook ({err})", file=sys.stderr)
        return 1
    sys.stdout.write(script(nb))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
