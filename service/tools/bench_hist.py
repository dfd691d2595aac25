"""A log-linear latency histogram: bounded memory, about 1% precision, mergeable across workers.

Values are seconds; bucket i covers [2**(i/64), 2**((i+1)/64)) microseconds, so a whole run at
any rate costs at most a few thousand integers, and workers' histograms add up exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Buckets per power of two: 2**(1/64) - 1 is a 1.1% relative bucket width.
SUBBUCKETS = 64


@dataclass
class Histogram:
    counts: dict[int, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0
    max: float = 0.0

    def record(self, seconds: float) -> None:
        micros = seconds * 1e6
        index = int(math.log2(micros) * SUBBUCKETS) if micros > 1.0 else 0
        self.counts[index] = self.counts.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def merge(self, other: Histogram) -> None:
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float:
        """The value below which a fraction `q` of the samples lie (bucket midpoint, in s).

        Never above the largest sample seen; 0.0 for an empty histogram.
        """
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return min(self.max, 2 ** ((index + 0.5) / SUBBUCKETS) / 1e6)
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0
