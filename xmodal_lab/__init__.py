__version__ = "0.1.0"

# `Embeddings.save`, `.load` and `.open` are attached by `xmodal_lab.io` (chapter "Saved features"), which imports
# `core`; `core` never imports it back. So that they are there whichever module a session imports first, loading
# `xmodal_lab.core` loads `xmodal_lab.io` right after it. Nothing is imported before `core` is: `import xmodal_lab`
# and the command line's argument checks stay free of torch.
import importlib as _importlib, importlib.abc as _abc, importlib.machinery as _machinery, sys as _sys

class _CoreThenIO(_abc.MetaPathFinder):
    "Finds `xmodal_lab.core` as Python would, and has its loader import `xmodal_lab.io` once `core` has run."
    def find_spec(self, name, path=None, target=None):
        if name != f"{__name__}.core": return None
        spec = _machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None: return spec
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            _importlib.import_module(f"{__name__}.io")
        spec.loader.exec_module = exec_module
        return spec

if not any(isinstance(f, _CoreThenIO) for f in _sys.meta_path): _sys.meta_path.insert(0, _CoreThenIO())
