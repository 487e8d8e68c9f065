"""Plain-text infix printing of expressions (used by `print(model)` and error messages)."""
from __future__ import annotations

from .node import Expr, Leaf, Op
from .ops import SPECS

_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "matmul": 2, "neg": 3, "power": 4}


def to_str(e: Expr) -> str:
    if isinstance(e, Leaf):
        return str(e.name)
    assert isinstance(e, Op)
    name, args, attrs = e.name, e.args, e.attrs
    spec = SPECS[name]
    if spec.infix:
        return f"{_wrap(args[0], name)} {spec.infix} {_wrap(args[1], name, right=True)}"
    if name == "neg":
        return f"-{_wrap(args[0], name)}"
    if name == "power":
        p = attrs["p"]
        return f"{_wrap(args[0], name)}^{int(p) if p == int(p) else p}"
    if name == "transpose":
        return f"{_wrap(args[0], 'power')}^T"
    if name == "index":
        return f"{_wrap(args[0], 'power')}[{_key_str(attrs['key'])}]"
    if name == "finite_sum":
        inner = ", ".join(["d_i"] + [to_str(a) for a in args])
        return f"mean_i {attrs['fname']}({inner}) over {attrs['n']} examples" + (f" (batch {attrs['batch']})" if attrs.get("batch") else "")
    if name == "max_over":
        return f"max over {', '.join(v.name for v in attrs['max_vars'])} of {to_str(args[0])}"
    if name in ("fn", "blackbox"):
        return f"{attrs['fname']}({', '.join(to_str(a) for a in args)})"
    extra = ""
    if name in ("norm", "pnorm"):
        extra = f", {attrs['p']:g}" if not isinstance(attrs["p"], str) else f", {attrs['p']}"
    elif name == "reshape":
        extra = f", {attrs['shape']}"
    elif name == "huber" and attrs["M"] != 1:
        extra = f", M={attrs['M']:g}"
    elif name == "diff" and (attrs["k"] != 1 or attrs["axis"] != 0):
        extra = f", k={attrs['k']}, axis={attrs['axis']}"
    elif name == "geo_mean" and attrs.get("p") is not None:
        extra = f", p={list(attrs['p'])}"
    if attrs.get("axis") is not None and name != "diff":
        extra += f", axis={attrs['axis']}"
    return f"{name}({', '.join(to_str(a) for a in args)}{extra})"


def _wrap(e: Expr, parent: str, right: bool = False) -> str:
    s = to_str(e)
    if isinstance(e, Op) and e.name in _PREC:
        pe, pp = _PREC[e.name], _PREC.get(parent, 0)
        if pe < pp or (right and pe == pp and parent in ("sub", "div")):
            return f"({s})"
    return s


def _key_str(key) -> str:
    parts = key if isinstance(key, tuple) else (key,)
    out = []
    for k in parts:
        if isinstance(k, slice):
            out.append(f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}"
                       + ("" if k.step is None else f":{k.step}"))
        else:
            out.append(str(k))
    return ", ".join(out)
