"""Why sampled SMILES strings are not molecules: RDKit's reason for each failure.

    python benchmarks/molecules_invalid_reasons.py /work/molbench4/smiles_model -n 2000

Draws ``n`` raw strings (default decoding: the SMILES syntax and valence mask on, no canonicalisation) from a
saved ``MoleculeVAE``, parses each with RDKit without sanitising, then sanitises, and counts the exception kinds.
Writes ``benchmarks/results/molecules_invalid_reasons.md``.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time

from common import RESULTS, header, write


def reason(smiles: str) -> str:
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None:
        return "does not parse"
    try:
        Chem.SanitizeMol(mol)
    except Exception as e:  # RDKit raises a subclass of MolSanitizeException naming the failure
        return type(e).__name__
    return "valid molecule"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="folder of a saved MoleculeVAE")
    p.add_argument("-n", type=int, default=2000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    from rdkit import RDLogger

    import vaekit

    RDLogger.DisableLog("rdApp.*")
    t0 = time.perf_counter()
    try:
        vae = vaekit.load(args.model)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f"error: {e}")
    raw = vae.sample(args.n, random_state=args.seed, strings=True)
    counts = collections.Counter(reason(s) for s in raw)
    lines = header("Molecules: why sampled strings are not molecules", None, time.perf_counter() - t0)
    lines += [f"Model `{args.model}` ({vae.representation}), {args.n} raw strings, seed {args.seed}, default decoding.", "",
              "| RDKit's verdict | strings | share |", "|---|---:|---:|"]
    lines += [f"| {k} | {v} | {v / args.n:.3f} |" for k, v in counts.most_common()]
    print("\n".join(lines))
    write(RESULTS / "molecules_invalid_reasons.md", lines)


if __name__ == "__main__":
    main()
