"""Runs inside each kernel of ``grade --execute``: the state a fresh kernel has, and putting it back before a check.

``execute.py`` copies this file beside the lab's modules (``/course/_spam_labs_grader.py`` in the
sandbox). The kernel takes ``snapshot()`` at start-up, before any cell of the submission runs; the
grader runs ``reset(nonce)`` just before each check cell and the results cell. It undoes what a
submission can install to change how a later cell runs: IPython input and AST transformers, event
hooks (``post_run_cell``, ...), trace and profile functions, import hooks, replaced builtins and
``sys`` hooks, custom exception handlers, methods replaced on the shell or kernel, and functions or
constants replaced in ``exercise_checks`` and ``utils`` (``exercise_checks`` is imported afresh from
its file). It returns one line, ``GRADER RESET <nonce>: clean`` or ``...: reset <what it found>``.

This runs in the submission's own process, so a submission written against this very file can still
get around it (it can change this module too); the grader flags every row where the reset found
something, or did not answer as sent, as needing a look. It cannot see changes inside other
libraries (numpy, pandas, snorkel, ...), audit hooks, or threads.
"""

import builtins
import importlib.util
import inspect
import sys

_baseline = None
#: The lab's own modules: their functions and constants must be the ones in their files.
_MODULES = ("exercise_checks", "utils")
_SYS_HOOKS = ("stdout", "stderr", "breakpointhook")  # IPython itself swaps sys.displayhook around each cell
#: Builtins IPython and ipykernel themselves swap around each request (input() to the front end, exit, ...).
_PER_REQUEST = {"input", "raw_input", "get_ipython", "exit", "quit", "display"}


def _trusted_folders():
    import os

    here = os.path.dirname(os.path.realpath(__file__))  # the lab's modules (/course in the sandbox)
    folders = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, here}
    return tuple(os.path.realpath(folder) + os.sep for folder in folders)


def _from_notebook(item) -> bool:
    """Whether ``item`` was made by a cell of the notebook, not by an installed library or the lab's modules.

    Libraries add import hooks and IPython hooks of their own (matplotlib's inline
    backend, editable installs, ...): only what a cell defined is taken out.
    """
    import os

    cls = item if isinstance(item, type) else type(item)
    if getattr(cls, "__module__", None) == "__main__" or getattr(item, "__module__", None) == "__main__":
        return True
    function = getattr(item, "__func__", item)
    code = getattr(function, "__code__", None)
    if code is None:
        call = getattr(cls, "find_spec", None) or inspect.getattr_static(cls, "__call__", None)
        code = getattr(getattr(call, "__func__", call), "__code__", None)
    if code is None:
        return False  # written in C: a library's
    filename = code.co_filename
    if filename.startswith("<frozen") or filename.startswith("<string>"):
        return filename.startswith("<string>")
    return not os.path.realpath(filename).startswith(_trusted_folders())


def _shell():
    from IPython import get_ipython

    return get_ipython()


def _objects(ip):
    found = {"shell": ip}
    for name in ("kernel", "displayhook", "display_pub"):
        if getattr(ip, name, None) is not None:
            found[name] = getattr(ip, name)
    return found


def _same(a, b) -> bool:
    if a is b:
        return True
    try:
        return inspect.ismethod(a) and inspect.ismethod(b) and a == b
    except Exception:
        return False


def _state(ip):
    manager = getattr(ip, "input_transformer_manager", None)
    lists = {
        "input_transformers_cleanup": ip.input_transformers_cleanup,
        "input_transformers_post": ip.input_transformers_post,
        "ast_transformers": ip.ast_transformers,
        "meta_path": sys.meta_path,
        "path_hooks": sys.path_hooks,
    }
    for name in ("cleanup_transforms", "line_transforms", "token_transformers"):
        if isinstance(getattr(manager, name, None), list):
            lists[f"input_transformer_manager.{name}"] = getattr(manager, name)
    for event, callbacks in ip.events.callbacks.items():
        lists[f"{event} hooks"] = callbacks
    objects = _objects(ip)
    return {
        "lists": {name: (value, list(value)) for name, value in lists.items()},
        "builtins": dict(vars(builtins)),
        "sys": {name: getattr(sys, name, None) for name in _SYS_HOOKS},
        "trace": (sys.gettrace(), sys.getprofile()),
        "custom": (ip.custom_exceptions, getattr(ip, "CustomTB", None)),
        "instances": {name: {k: v for k, v in vars(obj).items() if callable(v)} for name, obj in objects.items()},
        "classes": {cls: dict(vars(cls)) for obj in objects.values() for cls in type(obj).__mro__ if cls is not object},
    }


def snapshot() -> None:
    """Remember the kernel as it starts (run by the kernel itself, before any cell)."""
    global _baseline
    _baseline = _state(_shell())


def _fresh(name):
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None) or _module_file(name)
    if not path:
        return None
    spec = importlib.util.spec_from_file_location(name, path)
    fresh = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fresh)
    return fresh


def _module_file(name):
    for folder in sys.path:
        candidate = f"{folder or '.'}/{name}.py"
        try:
            open(candidate).close()
            return candidate
        except OSError:
            pass
    return None


def _plain(value) -> bool:
    return isinstance(value, (str, bytes, int, float, bool, tuple, frozenset, type(None)))


def _modules(found: list) -> None:
    for name in _MODULES:
        module = sys.modules.get(name)
        if module is None:
            continue
        fresh = _fresh(name)
        if fresh is None:
            continue
        changed = []
        for key, value in vars(fresh).items():
            current = getattr(module, key, None)
            if inspect.isfunction(value):
                same = inspect.isfunction(current) and current.__code__ == value.__code__
                same = same and current.__defaults__ == value.__defaults__
            elif _plain(value):
                same = type(current) is type(value) and current == value
            else:
                continue
            if not same:
                changed.append(key)
        if name == "exercise_checks":
            sys.modules[name] = fresh  # the check cell's `import exercise_checks` takes the file's own
        else:
            for key in changed:
                setattr(module, key, getattr(fresh, key))
        if changed:
            found.append(f"{name}.{', '.join(changed[:3])}{' ...' if len(changed) > 3 else ''} replaced")


def reset(nonce: str) -> str:
    """Put back what the kernel had at start-up; say what had changed (the grader asks for it as a user expression)."""
    ip = _shell()
    found = []
    base = _baseline
    if base is None:
        found.append("no start-up snapshot")
    else:
        now = _state(ip)
        for name, (target, items) in now["lists"].items():
            before = base["lists"].get(name, (None, []))[1]
            added = [item for item in items if not any(item is old for old in before) and _from_notebook(item)]
            if added:
                target[:] = [item for item in items if not any(item is new for new in added)]
                found.append(name)
        current = vars(builtins)
        changed = [
            k
            for k, v in base["builtins"].items()
            if k not in _PER_REQUEST and not _same(current.get(k), v) and _from_notebook(current.get(k))
        ]
        for key in changed:
            current[key] = base["builtins"][key]
        if changed:
            found.append(f"builtins {', '.join(changed[:3])}")
        for name, value in base["sys"].items():
            if getattr(sys, name, None) is not value and _from_notebook(getattr(sys, name, None)):
                setattr(sys, name, value)
                found.append(f"sys.{name}")
        if any(f is not None and _from_notebook(f) for f in (sys.gettrace(), sys.getprofile())):
            sys.settrace(base["trace"][0])
            sys.setprofile(base["trace"][1])
            found.append("a trace or profile function")
        if (ip.custom_exceptions, getattr(ip, "CustomTB", None)) != base["custom"]:
            ip.custom_exceptions, ip.CustomTB = base["custom"]
            found.append("a custom exception handler")
        for name, obj in _objects(ip).items():
            before = base["instances"].get(name, {})
            for key, value in list(vars(obj).items()):  # a method of the class replaced on the object itself
                replaced = hasattr(type(obj), key) and not _same(value, before.get(key, object()))
                if callable(value) and replaced and _from_notebook(value):
                    if key in before:
                        setattr(obj, key, before[key])
                    else:
                        delattr(obj, key)
                    found.append(f"{name}.{key}")
        for cls, attributes in base["classes"].items():
            for key, value in attributes.items():
                if vars(cls).get(key) is not value and _from_notebook(vars(cls).get(key)):
                    try:
                        setattr(cls, key, value)
                    except (AttributeError, TypeError):
                        pass
                    found.append(f"{cls.__name__}.{key}")
    try:
        _modules(found)
    except Exception as exc:  # the lab's modules could not be read again: say so, the grader flags it
        found.append(f"the lab's modules could not be checked ({type(exc).__name__})")
    return f"GRADER RESET {nonce}: " + ("reset " + "; ".join(found) if found else "clean")
