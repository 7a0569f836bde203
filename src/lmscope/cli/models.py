"""`lmscope models list|path|show` (bundled models, what lmscope sees in a checkpoint) and `lmscope cache`."""

from __future__ import annotations

from lmscope.cli._help import MODEL_HELP
from lmscope.cli._lists import int_list, name_list
from lmscope.cli._output import emit
from lmscope.errors import LmscopeError


def cmd_models_list(args) -> None:
    from lmscope.models import list_bundled

    rows = list_bundled()
    emit(args, {"bundled": rows}, [f"{r['name']:20s} {r['path']}" for r in rows])


def cmd_models_path(args) -> None:
    from lmscope.models import BUNDLED, bundled_path

    if args.name not in BUNDLED:
        raise LmscopeError(f"no bundled model {args.name!r}; choose one of {', '.join(BUNDLED)}")
    path = bundled_path(args.name)  # a model shipped in parts is assembled and verified first
    emit(args, {"name": args.name, "path": str(path)}, [str(path)])


def cmd_models_show(args) -> None:
    from lmscope.models import open_model

    roles, layers = name_list(args.roles, "--roles"), int_list(args.layers, "--layers")
    src = open_model(args.model, base=args.base)
    refs = src.matrices(roles=roles, layers=layers)
    info = src.describe()
    lines = [f"{k}: {v}" for k, v in info.items()]
    lines += [f"  {r.key:12s} {r.name}  {r.shape[0]}x{r.shape[1]}" for r in refs]
    emit(args, {**info, "matrices_list": [r.to_dict() for r in refs]}, lines)


def _mb(n: int) -> str:
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} bytes"


def cmd_cache(args) -> None:
    from lmscope.cache import cache_info, cache_lines, cache_root, clear, max_size, parse_size, prune

    if args.max_size is not None and args.action != "prune":
        raise LmscopeError("--max-size goes with `lmscope cache prune`")
    if args.action == "prune":
        cap = parse_size(args.max_size) if args.max_size is not None else max_size()
        if cap is None:
            raise LmscopeError("give --max-size SIZE (such as 2GB): LMSCOPE_CACHE_MAX_SIZE turns the cap off")
        res = prune(cap)
        where = " and ".join(res["parts"])
        if res["failed"] and res["bytes_after"] > cap:
            f = res["failed"][0]
            raise LmscopeError(f"could not delete {len(res['failed'])} cache entries ({f['path']}: {f['error']}); "
                               f"{where} still hold {_mb(res['bytes_after'])}, more than {_mb(cap)}")
        if res["removed"]:
            line = (f"pruned {len(res['removed'])} entries ({_mb(res['removed_bytes'])}) of {where}, least recently "
                    f"used first: {_mb(res['bytes_before'])} -> {_mb(res['bytes_after'])} (max {_mb(cap)})")
        else:
            line = f"nothing to prune: {where} hold {_mb(res['bytes_after'])} (max {_mb(cap)}) in {cache_root()}"
        emit(args, res, [line])
        return
    if args.action == "clear":
        what = clear(args.what)
        emit(args, {"cleared": what}, [f"cleared {', '.join(what)} in {cache_root()}"])
        return
    doc = cache_info()
    emit(args, doc, cache_lines(doc))


def add_models(sub, common) -> None:
    m = sub.add_parser("models", help="bundled models and what lmscope sees in a checkpoint")
    msub = m.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ml = msub.add_parser("list", parents=[common], help="the bundled models and where they are")
    ml.set_defaults(func=cmd_models_list)
    mp = msub.add_parser("path", parents=[common], help="a bundled model's file (assembled and verified first "
                                                        "when it ships in several packages)")
    mp.add_argument("name", help="a bundled model name (see `lmscope models list`)")
    mp.set_defaults(func=cmd_models_path)
    ms = msub.add_parser("show", parents=[common], help="a model's weight matrices by layer and role")
    ms.add_argument("model", help=MODEL_HELP)
    ms.add_argument("--base", help="base model of a LoRA adapter (overrides the one it records)")
    ms.add_argument("--roles", help="comma-separated roles (q,k,v,o,fc_in|gate,up,fc_out|down)")
    ms.add_argument("--layers", help="layers, e.g. 0,1,5-8")
    ms.set_defaults(func=cmd_models_show)


def add_cache(sub, common) -> None:
    k = sub.add_parser("cache", parents=[common],
                       help="inspect, prune or clear lmscope's caches (SVDs, converted models, LASER search "
                            "progress, LM answers)")
    k.add_argument("action", choices=["info", "clear", "prune"], nargs="?", default="info",
                   help="info (default): what is where and its size; clear: delete parts (--what); prune: delete "
                        "the least recently used SVD and LASER-search entries until they fit --max-size")
    k.add_argument("--max-size", metavar="SIZE",
                   help="prune: the size to keep svd + laser-search under, such as 500MB, 2GB or 1.5G (default: "
                        "the cap, $LMSCOPE_CACHE_MAX_SIZE or 5GB, which is also applied automatically after each "
                        "new entry)")
    k.add_argument("--what", action="append", choices=["svd", "models", "laser-search", "lm", "planner"],
                   help="what to clear (default svd); models holds the converted models and the assembled bundled "
                        "models (both made again on next use), laser-search holds the progress of LASER searches, "
                        "lm the LM answers (see `lmscope lm cache` to inspect or prune them), planner the planners' results")
    k.set_defaults(func=cmd_cache)


COMMANDS = {"models": add_models, "cache": add_cache}
