"""Which lines of a recording one shard of a sharded replay keeps, decided on the bytes.

Each worker of a sharded replay reads the whole file and keeps the lines of the
symbols it owns (``connectors.routing.replay_plan``). A line of an all-markets stream
(``liquidation``, ``account.orderUpdate``...) belongs to the symbol inside its data
(``"s"``), so a symbol's events of every stream reach its owner in file order: its
``liquidation`` lines beside its ``markPrice`` heartbeats, its ``account.*`` lines
beside its marks. The default shard keeps the lines of symbols nobody owns, lines of
no symbol at all, and raw lines. Control lines (header, disconnect) reach every shard.
A line's stream is found in either layout the recorder writes:
``{"recv_us":N,"stream":"S","data":...}`` (as our simulator sends frames) or
``{"recv_us":N,"data":{...},"stream":"S"}`` (as the exchange does, the stream last: it
can be kilobytes into a depth line).

Every shard scans every line, so this is the part of a replay that does not shrink
with more workers. Once a stream is decided, its lines take a fast path: in the head
layout it joins one of two regular expressions (kept, dropped) that filter lines in
C; in the stream-last layout the line's end (``,"stream":"S"}``, found by ``rfind``)
is looked up in a dict. Lines of new streams, of all-markets streams (liquidations and
our own account) and control lines take the Python path. An all-markets line of the
stream-last layout is known by its end too (the dict gives its stream) and goes
straight to the search for its data's symbol: a liquidation cascade can be most of a
recording (the bench's derivatives session, two thirds liquidations: 2.2 -> 1.0 µs
per line, ``bench/shards.py``).
"""

from __future__ import annotations

import re
from itertools import filterfalse

from .backpack.streams import parse_stream
from .errors import BpxError

__all__ = ["CONTROL", "LineMarkets", "Shard"]

_FIELD = re.compile(rb'"(?:for_)?stream":"([^"]*)"')  # searched in the head
_TAIL = re.compile(rb',"stream":"([^"]*)"\}\s*$')  # the stream-last layout
_PEEK = 200  # bytes of the head (and of the tail) searched
_SUFFIX = b',"stream":"'  # where the stream-last layout's stream begins
_HEAD_LAYOUT = re.compile(rb'\{"recv_us":\d+,"stream":"')
_MOST_NAMES = 2_000  # stream names compiled into the filters (the rest: Python path)
_DATA = b'"data":{'
_DATA_SYMBOL = re.compile(rb'[{,]"s":"([^"\\]{1,64})"')  # the flat events' "s" key
_S_KEY = b'"s":"'
# RFQs trade on their own *_RFQ symbols, which are never among the selected markets:
# their lines are the default shard's whatever the selection.
_ANY_SYMBOL = frozenset({b"account.rfqUpdate"})
_BY_DATA = None  # a stream decided line by line, by the symbol in its data


def _names_pattern(names: list[bytes]) -> re.Pattern[bytes] | None:
    """Frame lines of these streams in the head layout (``match`` at the start)."""
    if not names:
        return None
    either = b"|".join(re.escape(n) for n in sorted(names))
    return re.compile(rb'\{"recv_us":\d+,"stream":"(?:%s)"' % either)


def _data_symbol(line: bytes) -> bytes | None:
    """The first ``"s"`` key's text in the line's data (``_DATA_SYMBOL``'s search).

    Found with ``bytes.find`` and matched where found: the pattern starts with a
    character class, which ``re`` tries at every position (a liquidation line, its
    ``"s"`` last: 0.98 -> 0.77 µs).
    """
    at = line.find(_DATA)
    if at < 0:
        return None
    at += len(_DATA) - 1
    while (at := line.find(_S_KEY, at + 1)) >= 0:
        found = _DATA_SYMBOL.match(line, at - 1)
        if found is not None:
            return found.group(1)
    return None


class Shard:
    """The lines of ``symbols`` (plus the default shard's share when ``default``).

    Args:
        symbols: the symbols this shard owns.
        known: every symbol some shard owns.
        default: whether this shard takes lines of no or unowned symbols, and raw
            lines (exactly one shard per file does).
        others: whether the default shard takes lines of symbols nobody owns;
            ``False`` when ``known`` is the user's selection (the rest is dropped).
    """

    def __init__(
        self,
        symbols: frozenset[str],
        known: frozenset[str],
        default: bool,
        others: bool = True,
    ) -> None:
        self._symbols = symbols
        self._known = known
        self._default = default
        self._others = others
        self._by_stream: dict[bytes, bool | None] = {}  # None: by the data's symbol
        self._head_names: set[bytes] = set()  # streams seen in the head layout
        # ',"stream":"S"}\n' -> keep, or the stream's name for an all-markets stream:
        # a line of one goes straight to its data's symbol (liquidations can be most
        # of a recording).
        self._by_suffix: dict[bytes, bool | bytes] = {}
        self._kept: re.Pattern[bytes] | None = None
        self._dropped: re.Pattern[bytes] | None = None
        self._stale = False  # streams decided since the patterns were compiled

    def select(self, lines: list[bytes]) -> list[bytes]:
        """The lines this shard keeps, in order."""
        if self._stale:
            self._compile()
        if self._dropped is not None:
            lines = list(filterfalse(self._dropped.match, lines))
        by_suffix = self._by_suffix.get
        decide = self._undecided
        if self._kept is None:  # the stream-last layout (or nothing kept yet)
            # Without a call of a pattern that matches nothing first: 0.41 -> 0.27 µs
            # per line of the bench session, in every shard of a sharded replay.
            return [
                line
                for line in lines
                if (keep := by_suffix(line[line.rfind(_SUFFIX) :])) is True
                or (keep is not False and decide(line, keep))
            ]
        kept = self._kept.match
        return [
            line
            for line in lines
            if kept(line)
            or (keep := by_suffix(line[line.rfind(_SUFFIX) :])) is True
            or (keep is not False and decide(line, keep))
        ]

    def _undecided(self, line: bytes, found: bool | bytes | None) -> bool:
        """A line the fast path did not decide: unknown end, or an all-markets one."""
        if isinstance(found, bytes):
            return self._by_data(found, line)
        return self.keeps(line)

    def keeps(self, line: bytes) -> bool:
        """Whether this shard keeps ``line`` (the Python path, learning streams)."""
        found = _FIELD.search(line, 0, _PEEK) or _TAIL.search(
            line, max(len(line) - _PEEK, 0)
        )
        if found is None:
            # Control lines (header, disconnect) reach every shard; a frame kept raw
            # (it did not decode live) is one record: the default shard's.
            return self._default if b'"raw":' in line[:_PEEK] else True
        name = found.group(1)
        if name in self._by_stream:
            keep = self._by_stream[name]
        else:
            keep = self._by_stream[name] = self._decide(name)
        if keep is _BY_DATA:
            at = line.rfind(_SUFFIX)
            endings = self._by_suffix
            if at >= 0 and _TAIL.match(line, at) and len(endings) < _MOST_NAMES:
                endings[line[at:]] = name
            return self._by_data(name, line)
        if _HEAD_LAYOUT.match(line):
            if name not in self._head_names:
                self._head_names.add(name)
                self._stale = True
        else:
            at = line.rfind(_SUFFIX)
            if at >= 0 and _TAIL.match(line, at) and len(self._by_suffix) < _MOST_NAMES:
                self._by_suffix[line[at:]] = keep
        return keep

    def _decide(self, name: bytes) -> bool | None:
        try:
            symbol = parse_stream(name.decode()).symbol
        except (BpxError, UnicodeDecodeError):
            return self._default
        if symbol is None:
            return _BY_DATA
        return self._owns(symbol, self._others)

    def _owns(self, symbol: str, others: bool) -> bool:
        if symbol not in self._known:
            return self._default and others
        return symbol in self._symbols

    def _by_data(self, name: bytes, line: bytes) -> bool:
        """An all-markets line: its data's symbol decides (else the default shard)."""
        found = _data_symbol(line)
        if found is None:
            return self._default
        try:
            symbol = found.decode()
        except UnicodeDecodeError:
            return self._default
        return self._owns(symbol, self._others or name in _ANY_SYMBOL)

    def _compile(self) -> None:
        self._stale = False
        names = self._head_names
        if len(names) > _MOST_NAMES:
            return  # a recording of very many streams: keep the Python path
        decided = self._by_stream
        self._kept = _names_pattern([n for n in names if decided[n] is True])
        self._dropped = _names_pattern([n for n in names if decided[n] is False])


CONTROL = "<control>"  # a line every shard reads (header, disconnect)


class LineMarkets:
    """The market a recording line belongs to, by the same rules as ``Shard``.

    ``of`` gives the symbol, ``None`` for a line of the default shard (no market,
    an RFQ, a raw frame) or ``CONTROL`` for a line every shard reads. Streams are
    parsed once each.
    """

    def __init__(self) -> None:
        self._by_stream: dict[bytes, str | None] = {}

    def of(self, line: bytes) -> str | None:
        """The symbol of ``line``, ``None`` (default shard) or ``CONTROL``."""
        found = _FIELD.search(line, 0, _PEEK) or _TAIL.search(
            line, max(len(line) - _PEEK, 0)
        )
        if found is None:
            return None if b'"raw":' in line[:_PEEK] else CONTROL
        name = found.group(1)
        if name in self._by_stream:
            symbol = self._by_stream[name]
        else:
            symbol = self._by_stream[name] = self._stream_symbol(name)
        if symbol is not _DATA_MARKET:
            return symbol
        if name in _ANY_SYMBOL:
            return None
        data = _data_symbol(line)
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            return None

    @staticmethod
    def _stream_symbol(name: bytes) -> str | None:
        try:
            symbol = parse_stream(name.decode()).symbol
        except (BpxError, UnicodeDecodeError):
            return None
        return _DATA_MARKET if symbol is None else symbol


_DATA_MARKET = "<by data>"  # an all-markets stream: the symbol inside its data
