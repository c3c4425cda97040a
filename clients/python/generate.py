"""Generates the gRPC stubs of pdm's contracts (``proto/``) into ``pdm_client/_gen``.

Run before installing (``make clients-python`` does): ``python generate.py``. Needs
grpcio-tools. The generated modules import each other as ``pdm.<service>.v1``; they are
rewritten to ``pdm_client._gen.pdm.<service>.v1`` so that they live inside the package.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
OUT = HERE / "pdm_client" / "_gen"


def main() -> int:
    from grpc_tools import protoc  # imported here: only generation needs grpcio-tools

    if not PROTO.is_dir():
        print(f"generate.py: no contracts at {PROTO}", file=sys.stderr)
        return 1
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    protos = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    # The well-known types (google/protobuf/*.proto) ship with grpcio-tools.
    include = Path(protoc.__file__).resolve().parent / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{include}",
            f"--python_out={OUT}",
            f"--pyi_out={OUT}",
            f"--grpc_python_out={OUT}",
            *protos,
        ]
    )
    if status != 0:
        print(f"generate.py: protoc failed ({status})", file=sys.stderr)
        return status
    imports = re.compile(r"^(from|import) pdm\.", re.MULTILINE)
    for path in OUT.rglob("*.py*"):
        if path.suffix in (".py", ".pyi"):
            text = path.read_text()
            path.write_text(imports.sub(r"\1 pdm_client._gen.pdm.", text))
    for directory in [OUT, *(p for p in OUT.rglob("*") if p.is_dir())]:
        (directory / "__init__.py").touch()
    print(f"generate.py: {len(protos)} contracts -> {OUT.relative_to(HERE)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
