"""Regenerate the README's pictures exactly as a user gets them: run the README's main job
(``vaekit train digits``) into a temporary directory and copy its samples and reconstructions.

    python docs/make_readme_images.py
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "digits"
        subprocess.run([sys.executable, "-m", "vaekit", "train", "digits", "--out", str(run)], check=True)
        for name in ("samples", "reconstructions"):
            shutil.copyfile(run / f"{name}.png", HERE / "images" / f"digits_{name}.png")
            print(f"wrote {HERE / 'images' / f'digits_{name}.png'}")


if __name__ == "__main__":
    main()
