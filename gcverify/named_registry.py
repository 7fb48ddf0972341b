"""What the model and converter registries share: specs by unique name, in registration
order, and decorators that only *mark* a function (the spec rides on an attribute), so that
no registry lives at module level and each pytest session builds its own."""
from collections import OrderedDict

__all__ = ["NamedRegistry"]


class NamedRegistry:
    """Subclasses set ``spec_type``, the ``mark`` attribute name, ``what`` (for messages)
    and ``target`` (the spec field holding the function, to tell two entries apart)."""

    spec_type, mark, what, target = None, None, "entry", None

    def __init__(self, specs=()):
        self._specs = OrderedDict()
        for spec in specs:
            self.add(spec)

    def coerce(self, obj):
        """``obj`` as a spec: a spec, or a marked function (subclasses may accept more)."""
        spec = obj if isinstance(obj, self.spec_type) else getattr(obj, self.mark, None)
        if not isinstance(spec, self.spec_type):
            raise TypeError("register a {} or a function marked as a gcverify {}, not {!r}".format(
                self.spec_type.__name__, self.what, obj))
        return spec

    def add(self, obj):
        spec = self.coerce(obj)
        known = self._specs.get(spec.name)
        if known is not None and getattr(known, self.target) is not getattr(spec, self.target):
            raise ValueError("two different {}s are registered as {!r}".format(self.what, spec.name))
        self._specs[spec.name] = spec
        return spec

    def add_marked(self, namespace):
        """Add every marked function (and spec) found in a module or dict, e.g. a conftest."""
        items = namespace.values() if isinstance(namespace, dict) else vars(namespace).values()
        return [self.add(v) for v in list(items)
                if isinstance(v, self.spec_type) or isinstance(getattr(v, self.mark, None), self.spec_type)]

    def names(self):
        return list(self._specs)

    def __iter__(self):
        return iter(self._specs.values())

    def __len__(self):
        return len(self._specs)
