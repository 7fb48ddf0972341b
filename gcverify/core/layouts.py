"""Tensor layouts as ``transpose`` axes: channel-first <-> channel-last, guessed from shapes."""
__all__ = ["channel_last_shape", "channel_last_perm", "channel_first_perm", "guess_perm",
           "compose_perms"]


def channel_last_shape(shape):
    return tuple(shape[:1]) + tuple(shape[2:]) + tuple(shape[1:2])


def channel_last_perm(ndim):
    """``transpose`` axes moving axis 1 (channels) last: (N, C, H, W) -> (N, H, W, C)."""
    return (0,) + tuple(range(2, ndim)) + (1,)


def channel_first_perm(ndim):
    """The inverse of :func:`channel_last_perm`: (N, H, W, C) -> (N, C, H, W)."""
    return (0, ndim - 1) + tuple(range(1, ndim - 1))


def guess_perm(shape, original_shape):
    """The layout of a variable of ``shape`` standing for one of ``original_shape``, guessed
    from the shapes alone: ``channel_last_perm`` when ``shape`` is the channel-last form of a
    different ``original_shape``, else None (as is; also when the guess is impossible)."""
    shape, original_shape = tuple(shape), tuple(original_shape)
    if shape != original_shape and len(shape) >= 3 and shape == channel_last_shape(original_shape):
        return channel_last_perm(len(shape))
    return None


def compose_perms(p, q):
    """The axes of ``transpose(transpose(d, p), q)`` (None: the identity)."""
    if p is None or q is None:
        return q if p is None else p
    axes = tuple(p[k] for k in q)
    return None if axes == tuple(range(len(axes))) else axes
