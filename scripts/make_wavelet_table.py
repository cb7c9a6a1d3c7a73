"""Write src/wavemixer/wavelet_filters.json: the filter banks of every PyWavelets discrete wavelet.

The core package reads this table so that it needs no PyWavelets at run time; tests/test_wavelets.py
checks every entry against ``pywt.Wavelet(name).filter_bank``. Rerun after a PyWavelets upgrade:

    python scripts/make_wavelet_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pywt

from wavemixer.files import atomic_write_text

OUT = Path(__file__).resolve().parents[1] / "src" / "wavemixer" / "wavelet_filters.json"


def main() -> None:
    table = {
        "pywavelets_version": pywt.__version__,
        "order": ["dec_lo", "dec_hi", "rec_lo", "rec_hi"],
        "wavelets": {
            name: [list(f) for f in pywt.Wavelet(name).filter_bank] for name in pywt.wavelist(kind="discrete")
        },
    }
    atomic_write_text(OUT, json.dumps(table, separators=(",", ":")) + "\n")
    print(f"{OUT}: {len(table['wavelets'])} wavelets, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
