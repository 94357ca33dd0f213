"""Checks that the generated Kotlin and Swift bindings have every item the library exports.

The Python bindings, generated from the same library in the same run, are the list: every
exported class (record, enum, error, object, callback interface), every method of every object
and every top-level function must appear in `bindings/kotlin` and `bindings/swift` under the
names those languages give them. Usage: check-bindings.py <bindings dir>
"""

import inspect
import re
import sys
from pathlib import Path

root = Path(sys.argv[1])
sys.path.insert(0, str(root / "python"))
import mobile_bridge as mb  # noqa: E402

kotlin = (root / "kotlin/uniffi/mobile_bridge/mobile_bridge.kt").read_text()
swift = (root / "swift/mobile_bridge.swift").read_text()


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


missing = []
classes = [
    (n, o) for n, o in vars(mb).items()
    if inspect.isclass(o) and o.__module__ == "mobile_bridge"
    and not n.startswith(("_", "Uniffi")) and not n.endswith("Protocol") and n != "InternalError"
]
objects = []
for name, cls in classes:
    # UniFFI names an error type "...Exception" in Kotlin.
    kt_name = name.replace("Error", "Exception") if name == "BridgeError" else name
    if not re.search(rf"\b(class|interface)\s+{kt_name}\b", kotlin):
        missing.append(f"Kotlin: {kt_name}")
    if not re.search(rf"\b(struct|enum|class|protocol)\s+{name}\b", swift):
        missing.append(f"Swift: {name}")
    if hasattr(cls, "_uniffi_clone_handle") or f"{name}Protocol" in vars(mb):
        objects.append((name, cls))
methods = 0
for name, cls in objects:
    for m in [m for m in vars(cls) if not m.startswith("_") and callable(getattr(cls, m))]:
        methods += 1
        c = camel(m)
        if not re.search(rf"fun `{c}`\(", kotlin):
            missing.append(f"Kotlin: {name}.{c}")
        if not re.search(rf"func {c}\(", swift):
            missing.append(f"Swift: {name}.{c}")
functions = [n for n, o in vars(mb).items()
             if inspect.isfunction(o) and o.__module__ == "mobile_bridge" and not n.startswith("_")]
for f in functions:
    c = camel(f)
    if not re.search(rf"fun `{c}`\(", kotlin):
        missing.append(f"Kotlin: {c}()")
    if not re.search(rf"func {c}\(", swift):
        missing.append(f"Swift: {c}()")
if missing:
    print("missing from the bindings:\n  " + "\n  ".join(missing))
    sys.exit(1)
print(f"bindings complete: {len(classes)} types, {methods} methods, {len(functions)} functions "
      "in Kotlin and Swift")
