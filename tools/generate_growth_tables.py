"""Regenerate clinical/data/growth/*.csv from WHO's anthro LMS tables.

    uv run python -m tools.generate_growth_tables [SOURCE_DIR]

SOURCE_DIR defaults to ../shared/data/who-growth (the copy of WHO anthro's
data-raw/growthstandards). The numbers are copied as text, never re-formatted, so the committed
tables are WHO's digits. The script checks that every age (0..1826 days, 91.. for MUAC) and every
0.1 cm length has exactly one row per sex and that the L/H column agrees with the 731-day rule,
then drops that redundant column. Runtime code never reads SOURCE_DIR.
"""

from __future__ import annotations

import hashlib
import json
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "clinical" / "data" / "growth"
DEFAULT_SOURCE = ROOT.parent / "shared" / "data" / "who-growth"

# output name: (source file, key column in output, first key, last key, step as Decimal, position rule)
TABLES: dict[str, tuple[str, str, Decimal, Decimal, Decimal, str | None]] = {
    "wfa": ("weianthro.txt", "age_days", Decimal(0), Decimal(1826), Decimal(1), None),
    "lhfa": ("lenanthro.txt", "age_days", Decimal(0), Decimal(1826), Decimal(1), "age"),
    "wfl": ("wflanthro.txt", "length_cm", Decimal(45), Decimal(110), Decimal("0.1"), "L"),
    "wfh": ("wfhanthro.txt", "height_cm", Decimal(65), Decimal(120), Decimal("0.1"), "H"),
    "bfa": ("bmianthro.txt", "age_days", Decimal(0), Decimal(1826), Decimal(1), "age"),
    "hcfa": ("hcanthro.txt", "age_days", Decimal(0), Decimal(1826), Decimal(1), None),
    "acfa": ("acanthro.txt", "age_days", Decimal(91), Decimal(1826), Decimal(1), None),
}


def build(source_dir: Path) -> dict[str, str]:
    """File name -> exact text of every generated file (tables and manifest)."""
    outputs: dict[str, str] = {}
    manifest: dict[str, object] = {
        "source": "WHO anthro R package, data-raw/growthstandards "
        "(github.com/WorldHealthOrganization/anthro)",
        "generator": "tools/generate_growth_tables.py",
        "tables": {},
    }
    for name, (source, key_col, first, last, step, position) in TABLES.items():
        raw = (source_dir / source).read_bytes()
        lines = raw.decode("ascii").splitlines()
        header = lines[0].split("\t")
        if header[:5] != ["sex", header[1], "l", "m", "s"]:
            raise ValueError(f"{source}: unexpected header {header}")
        rows = [line.split("\t") for line in lines[1:] if line.strip()]
        out = [f"sex,{key_col},l,m,s"]
        for sex in ("1", "2"):
            expected = first
            for row in (r for r in rows if r[0] == sex):
                key = Decimal(row[1])
                if key != expected:
                    raise ValueError(f"{source}: sex {sex} expected key {expected}, found {row[1]}")
                if position == "age":
                    want = "L" if key < 731 else "H"
                    if row[5] != want:
                        raise ValueError(f"{source}: row {row[:2]} has position {row[5]}, expected {want}")
                elif position is not None and row[5] != position:
                    raise ValueError(f"{source}: row {row[:2]} has position {row[5]}, expected {position}")
                for number in row[2:5]:
                    Decimal(number)  # every value must parse
                out.append(",".join(row[:5]))
                expected += step
            if expected - step != last:
                raise ValueError(f"{source}: sex {sex} ends at {expected - step}, expected {last}")
        text = "\n".join(out) + "\n"
        outputs[f"{name}.csv"] = text
        manifest["tables"][name] = {  # type: ignore[index]
            "file": f"{name}.csv",
            "source_file": source,
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            "key": key_col,
            "first": str(first),
            "last": str(last),
            "step": str(step),
            "rows": len(out) - 1,
        }
    outputs["manifest.json"] = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    return outputs


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_SOURCE
    OUT_DIR.mkdir(exist_ok=True)
    for file_name, text in build(source).items():
        (OUT_DIR / file_name).write_text(text, encoding="ascii", newline="\n")
        print(f"wrote {OUT_DIR / file_name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
