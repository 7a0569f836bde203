"""`lmscope trees`: tree projections, how tree-like a model's composition of spans is."""

from __future__ import annotations

from pathlib import Path

from lmscope.cli._help import MODEL_HELP
from lmscope.cli._lists import layer_arg
from lmscope.cli._numbers import non_negative_int, positive_int, seed
from lmscope.cli._output import add_force, check_out, command_line, emit, write_report
from lmscope.errors import LmscopeError

TREES_DATA_HELP = ("--data: JSONL rows {text, tree?} (a row's tree gives the sentence, its leaves, and the gold "
                   "tree), one bracketed tree per line, or plain text with one sentence per line; blank lines "
                   "are skipped.")


def cmd_trees(args) -> None:
    from lmscope.trees import LayerSweepResult, read_sentence_file, tree_projection

    data = read_sentence_file(args.data, args.format).sample(args.limit, args.seed)
    if not 0 <= args.sentence < len(data):
        raise LmscopeError(f"--sentence {args.sentence} is out of range: {len(data)} sentences (0..{len(data) - 1})")
    check_out(args)
    res = tree_projection(args.model, data.sentences, gold_trees=data.gold_trees if data.has_gold else None,
                          layer=layer_arg(args.layer), threshold=args.threshold, distance=args.distance,
                          batch_size=args.batch_size, seed=args.seed, fast=not args.reference, quiet=args.quiet,
                          device=args.device, where=data.where)
    sweep = isinstance(res, LayerSweepResult)
    lines = res.summary_lines()
    if not sweep:
        s = res.sentences[args.sentence]
        lines += ["", f"sentence {args.sentence} ({s.where}): t-score {s.t_score:.4f}", f"  induced: {s.bracketed}"]
        if s.gold is not None:
            lines.append(f"  gold:    {s.gold_bracketed}")
    if args.out:
        from lmscope.report.sections import tree_layers_section, tree_section

        cmd = command_line()
        if sweep:
            fill = lambda rep: tree_layers_section(rep, res, command=cmd)  # noqa: E731
            title = f"Tree projections across layers: {args.model}"
        else:
            fill = lambda rep: tree_section(rep, res, sentence=args.sentence, command=cmd)  # noqa: E731
            title = f"Tree projections: {args.model}"
        write_report(args.out, title, fill, args=args)
        lines.append(f"report: {Path(args.out) / 'index.html'}")
    payload = res.to_dict(charts=not sweep)
    emit(args, payload, lines)


def add_trees(sub, common) -> None:
    tr = sub.add_parser("trees", parents=[common], help="tree projections: how tree-like a model's composition is",
                        description="For every span of every sentence, compare the span's vector from the "
                                    "ordinary pass with its vector when attention keys outside the span are "
                                    "masked (from block --threshold upward; BOS/EOS/CLS/SEP stay visible); "
                                    "decode the tree that best explains the chart (greedy, top-down), score "
                                    "how tree-like it is (t-score against seeded random splits) and, with gold "
                                    "trees, the parsing F1 (pooled) next to left-, right-branching, balanced and "
                                    "random trees. " + TREES_DATA_HELP)
    tr.add_argument("model", help=MODEL_HELP + ", or a small lmscope transformer's folder")
    tr.add_argument("--data", required=True, help="JSONL (suites schema), bracketed trees, or plain text")
    tr.add_argument("--format", default="auto", choices=["auto", "jsonl", "trees", "text"],
                    help="how to read --data (default auto: by its first line; use text for sentences that "
                         "start with a bracket, such as Dyck strings)")
    tr.add_argument("--layer", help="layer read: 1..L (L, the last, by default; negative counts from the end), "
                                    "or a list such as 2,4,6-8 for a per-layer table")
    tr.add_argument("--threshold", type=non_negative_int, default=0, help="first block under the span mask (default 0: all)")
    tr.add_argument("--distance", choices=["cosine", "euclidean"], default="cosine")
    tr.add_argument("--limit", type=positive_int, help="use a seeded sample of N sentences (--seed; kept in file "
                                                       "order)")
    tr.add_argument("--seed", type=seed, default=0, help="seed of the --limit sample, the t-score's random splits "
                                                         "and the random trees (default 0)")
    tr.add_argument("--sentence", type=non_negative_int, default=0, help="sentence (0-based, of the sample with "
                                                                         "--limit) drawn in the report and printed")
    tr.add_argument("--batch-size", type=positive_int, default=32, help="sequences per forward pass (default 32)")
    tr.add_argument("--reference", action="store_true", help="the reference procedure: one masked pass per span, "
                                                              "one at a time (slow; the same charts)")
    tr.add_argument("--device", default="cpu", help="cpu (default), auto, cuda, cuda:N")
    tr.add_argument("--out", help="folder: trees (JSONL), table (CSV), summary JSON, chart and tree plots, index.html")
    add_force(tr)
    tr.set_defaults(func=cmd_trees)


COMMANDS = {"trees": add_trees}
