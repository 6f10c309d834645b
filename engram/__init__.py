"""Entry points, on top of everything they start: the ``engram`` command (``cli``), the demo
(``demo``) and the ``ray job submit`` jobs (``python -m engram.jobs``). Nothing imports them."""

__all__: list[str] = []
