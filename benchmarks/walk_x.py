"""The walk of a caller's X through the package: who receives it, who reads it.

Traces every Python call inside ``skbalance`` that receives the user's ``X``
(the object itself) or the ``Rows`` built from it as an argument, and sorts
each such call by where it goes, seen from its caller:

* stay: the callee is in the caller's module;
* descent: the callee's module is not yet on the stack of calls that hold X;
* climb back up: the callee's module is already on that stack, below the
  caller (the data went down a layer and came back up).

It also counts the calls that receive X itself (not its Rows), and the reads:
calls that receive X itself and turn it into columns (``read_rows``, and,
before the one fit path, the design's own column reader ``_stage_columns``).

Run ``python benchmarks/walk_x.py``; it prints one line per walk and, with
``--calls``, every call.
"""

import argparse
import sys

import skbalance as skb

READERS = {"read_rows", "_stage_columns", "_column_values"}


def walk(call, X):
    """Every call that receives X (or its Rows): (depth, module, function, kind)."""
    held = [X]
    stack = []  # (frame, module) of the calls that hold X, innermost last
    record = []

    def holds(frame):
        """0: neither; 1: the Rows of X; 2: X itself."""
        code = frame.f_code
        names = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
        values = [frame.f_locals.get(n) for n in names]
        if any(v is X for v in values):
            return 2
        return int(any(any(v is h for h in held[1:]) for v in values))

    def profile(frame, event, arg):
        if event == "return" and stack and stack[-1][0] is frame:
            stack.pop()
            if type(arg).__name__ == "Rows" and not any(arg is h for h in held):
                held.append(arg)
            return
        if event != "call":
            return
        module = frame.f_globals.get("__name__", "")
        holding = holds(frame) if module.startswith("skbalance") else 0
        if not holding:
            return
        caller = stack[-1][1] if stack else None
        if caller is None:
            kind = "entry"
        elif module == caller:
            kind = "stay"
        elif any(m == module for _, m in stack):
            kind = "climb"
        else:
            kind = "descent"
        record.append((len(stack), module, frame.f_code.co_name, kind, holding == 2))
        stack.append((frame, module))

    sys.setprofile(profile)
    try:
        call()
    finally:
        sys.setprofile(None)
    return record


def summary(record):
    kinds = [r[3] for r in record]
    raw = [r for r in record if r[4]]
    readers = sum(r[2] in READERS for r in raw)
    return (f"{len(record)} calls hold X or its Rows: {kinds.count('stay')} stay, "
            f"{kinds.count('descent')} descend, {kinds.count('climb')} climb back up; "
            f"X itself reaches {len(raw)} calls in {len({r[1] for r in raw})} modules and "
            f"is read into columns {readers} times")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", action="store_true", help="list every call")
    args = parser.parse_args()
    sample = skb.datasets.load_api("clus1")
    targets = skb.datasets.api_population_targets(["stype", "sch.wide"])
    balancer = skb.MarginalBalancer(targets=targets)
    design = skb.SurveyDesign(clusters="dnum", fpc="fpc")
    walks = {
        "MarginalBalancer.fit_problem": lambda: balancer.fit_problem(
            sample, sample_weight=sample["pw"]),
        "BalancedFunctionalEstimator.fit (design: clusters, fpc)": lambda: (
            skb.BalancedFunctionalEstimator(balancer, design=design).fit(
                sample, sample["api00"], sample_weight=sample["pw"])),
    }
    for name, call in walks.items():
        record = walk(call, sample)
        print(f"{name}: {summary(record)}")
        if args.calls:
            for depth, module, function, kind, raw in record:
                print(f"    {'  ' * depth}{module}.{function} [{kind}{', X' if raw else ''}]")


if __name__ == "__main__":
    main()
