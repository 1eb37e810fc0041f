"""Print the project's requirements from pyproject.toml, one a line, for `pip install -r`.

    python requirements.py pyproject.toml [EXTRA ...]

The images install these in a layer of their own before any code is copied, so an edit
of the code (or the README, which packaging reads) does not reinstall the dependencies.
"""

import sys
import tomllib

with open(sys.argv[1], "rb") as file:
    project = tomllib.load(file)["project"]
lines = list(project["dependencies"])
for extra in sys.argv[2:]:
    lines += project["optional-dependencies"][extra]
sys.stdout.write("\n".join(lines) + "\n")
