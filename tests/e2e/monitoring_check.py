#!/usr/bin/env python3
"""tests/e2e/monitoring_check.py: checks the dashboards and alert rules in manifests/monitoring
against a scrape of a running daemon's /metrics.

  monitoring_check.py METRICS_FILE RULES_FILE PROMETHEUSRULE_FILE DASHBOARD_JSON

Every PromQL expression (the rules' `expr`, the dashboard's targets and its label_values()
variable queries) is split into tokens; every metric name in it must be exported by the daemon
(a sample in the scrape, or a family the scrape declares with `# TYPE` that has no series yet),
every function must be a PromQL function, every label matched on a metric with samples must be
one of its labels, and every `reason` matched on the datapath counters must be a reason the
daemon exports. The PrometheusRule must hold the rules file's groups. Prints one line per
problem and exits 1 if there is any; prints a summary and exits 0 otherwise.
"""
import json
import re
import sys

import yaml

# PromQL's functions and aggregation operators (Prometheus 2.x).
FUNCTIONS = {
    "abs", "absent", "absent_over_time", "ceil", "changes", "clamp", "clamp_max", "clamp_min",
    "day_of_month", "day_of_week", "day_of_year", "days_in_month", "delta", "deriv", "exp",
    "floor", "histogram_quantile", "histogram_count", "histogram_sum", "histogram_fraction",
    "holt_winters", "hour", "idelta", "increase", "irate", "label_join", "label_replace", "ln",
    "log2", "log10", "minute", "month", "predict_linear", "rate", "resets", "round", "scalar",
    "sgn", "sort", "sort_desc", "sqrt", "time", "timestamp", "vector", "year",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
    "present_over_time",
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile",
}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
TARGET_LABELS = {"instance", "job"}  # added by Prometheus when it scrapes, not by the daemon

TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<number>[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?[a-z]*|\.[0-9]+)
  | (?P<var>\$\{?[A-Za-z_][A-Za-z0-9_]*\}?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^<>=(){},])
""", re.VERBOSE)


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize at {expr[pos:pos + 20]!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def unquote(s):
    return s[1:-1].encode().decode("unicode_escape") if s[0] in "\"'" else s[1:-1]


def parse(expr):
    """Returns (metrics, functions, matchers): matchers are (metric, label, op, value)."""
    toks = tokenize(expr)
    metrics, functions, matchers = [], [], []
    i = 0
    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "ident" and text in LABEL_LIST_KEYWORDS:
            if nxt == "(":  # by (a, b): label names, not metrics
                j = i + 2
                while j < len(toks) and toks[j][1] != ")":
                    j += 1
                i = j + 1
                continue
            i += 1
            continue
        if kind == "ident" and text in KEYWORDS:
            i += 1
            continue
        # A function call, or an aggregation with its label list first: sum by (x) (...).
        if kind == "ident" and (nxt == "(" or (nxt in ("by", "without") and text in FUNCTIONS)):
            functions.append(text)
            i += 1
            continue
        if kind == "ident" or (kind == "op" and text == "{"):
            metric = text if kind == "ident" else None
            if metric:
                metrics.append(metric)
                i += 1
            if i < len(toks) and toks[i][1] == "{":
                j = i + 1
                while j < len(toks) and toks[j][1] != "}":
                    if toks[j][0] == "ident" and j + 2 < len(toks) and toks[j + 2][0] == "string":
                        matchers.append((metric, toks[j][1], toks[j + 1][1], unquote(toks[j + 2][1])))
                        j += 3
                    else:
                        j += 1
                i = j + 1
            continue
        i += 1
    return metrics, functions, matchers


def parse_scrape(text):
    """Returns ({sample name: [label dicts]}, {family: type})."""
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(None, 3)
            types[name] = typ
        elif line and not line.startswith("#"):
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s", line)
            if m:
                labels = dict(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
                samples.setdefault(m.group(1), []).append(labels)
    return samples, types


def exported_names(samples, types):
    names = set(samples)
    suffixes = {"histogram": ["_bucket", "_sum", "_count"], "summary": ["", "_sum", "_count"]}
    for fam, typ in types.items():
        for s in suffixes.get(typ, [""]):
            names.add(fam + s)
    return names


def expressions(rules, dashboard):
    """(where, expr) of every PromQL expression in the rules file and the dashboard."""
    out = []
    for g in rules["groups"]:
        for r in g["rules"]:
            out.append((f"rules {g['name']}/{r.get('alert') or r.get('record')}", r["expr"]))

    def panels(ps):
        for p in ps:
            yield p
            yield from panels(p.get("panels", []))

    for p in panels(dashboard["panels"]):
        for t in p.get("targets", []):
            out.append((f"dashboard panel {p['id']} \"{p['title']}\" {t['refId']}", t["expr"]))
    for v in dashboard.get("templating", {}).get("list", []):
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if v.get("type") == "query":
            m = re.fullmatch(r"\s*label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*", q or "")
            if not m:
                out.append((f"dashboard variable {v['name']}", "__unparsable_variable_query__"))
            else:
                out.append((f"dashboard variable {v['name']}", m.group(1)))
    return out


def main(argv):
    metrics_file, rules_file, prule_file, dash_file = argv[1:5]
    samples, types = parse_scrape(open(metrics_file).read())
    names = exported_names(samples, types)
    rules = yaml.safe_load(open(rules_file))
    prule = yaml.safe_load(open(prule_file))
    dashboard = json.load(open(dash_file))
    reasons = {l.get("reason") for l in samples.get("switchyard_datapath_packets_total", [])} - {None}
    problems = []
    if not reasons:
        problems.append(f"{metrics_file}: the scrape has no switchyard_datapath_packets_total{{reason}} samples")
    if prule.get("kind") != "PrometheusRule" or prule.get("spec") != rules:
        problems.append(f"{prule_file}: spec is not the groups of {rules_file} (change both)")
    for g in rules["groups"]:
        for r in g["rules"]:
            if "alert" in r and not (r.get("labels", {}).get("severity") and r.get("annotations", {}).get("summary")):
                problems.append(f"rules {g['name']}/{r['alert']}: needs labels.severity and annotations.summary")
    seen_metrics = set()
    exprs = expressions(rules, dashboard)
    for where, expr in exprs:
        try:
            metrics, functions, matchers = parse(expr)
        except ValueError as e:
            problems.append(f"{where}: {e}: {expr}")
            continue
        if not metrics:
            problems.append(f"{where}: names no metric: {expr}")
        for f in functions:
            if f not in FUNCTIONS:
                problems.append(f"{where}: {f}() is not a PromQL function")
        for m in metrics:
            seen_metrics.add(m)
            if m not in names:
                problems.append(f"{where}: metric {m} is not exported by the daemon")
        for metric, label, op, value in matchers:
            if label in TARGET_LABELS or metric not in samples:
                continue
            if not any(label in s for s in samples[metric]):
                problems.append(f"{where}: {metric} has no label {label}")
                continue
            if label == "reason" and metric.startswith("switchyard_datapath_"):
                wanted = value.split("|") if op in ("=~", "!~") else [value]
                for w in wanted:
                    if not re.fullmatch(r"[a-z0-9_]+", w) or w not in reasons:
                        problems.append(f"{where}: {metric}{{reason={w!r}}}: no such datapath reason")
    for p in problems:
        print("FAIL:", p)
    if problems:
        return 1
    print(f"ok: {len(exprs)} expressions, {len(seen_metrics)} metrics, all exported: " + " ".join(sorted(seen_metrics)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
