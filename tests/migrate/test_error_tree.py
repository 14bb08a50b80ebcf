"""The migration's errors are drawn in the one exception tree (vecbridge.errors' docstring)."""

from __future__ import annotations

import re

from vecbridge import errors, migrate


def _drawn() -> dict[str, str]:
    """class name -> the parent it is drawn under, read from the drawing."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        m = re.match(r"^[ │]*(?:[├└]── )?([A-Z][A-Za-z]+(?:Error|Interrupted|Interrupt))\b", line)
        if not m:
            continue
        depth, name = m.start(1), m.group(1)  # the column of the name is its depth
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_every_error_is_drawn_under_its_parent():
    parents = _drawn()
    classes = {n: getattr(errors, n) for n in errors.__all__}
    classes |= {n: getattr(migrate, n) for n in migrate.__all__
                if isinstance(getattr(migrate, n), type) and issubclass(getattr(migrate, n), BaseException)}
    assert {"MigrationError", "MigrationInterrupted", "RetriesExhaustedError"} <= set(classes)
    for name, cls in classes.items():
        if name == "VecbridgeError":
            continue
        assert name in parents, f"{name} is not drawn in vecbridge.errors"
        parent = getattr(errors, parents[name], None) or {"KeyboardInterrupt": KeyboardInterrupt}[parents[name]]
        assert cls.__bases__[0] is parent, (name, parents[name])
    assert migrate.MigrationError is errors.MigrationError  # one class, two names
    assert issubclass(errors.MigrationError, errors.VecbridgeError)
    assert not issubclass(errors.MigrationInterrupted, Exception)  # `except Exception` never swallows Ctrl-C
