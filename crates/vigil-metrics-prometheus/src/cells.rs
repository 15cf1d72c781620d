//! The storage of one series: lock-free atomic cells behind `metrics`' handles.
//!
//! Values are kept in the unit they are recorded in; the render converts them to the exported
//! base unit ([`Scale`]), so the hot path never multiplies and sums stay exact where the
//! recorded values are (integral milliseconds add up exactly).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use metrics::{CounterFn, GaugeFn, HistogramFn};

/// The conversion from a recorded unit to the exported base unit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Scale {
    /// Recorded in the base unit (or unitless).
    One,
    /// Divide by this (an exact power of ten): milliseconds, microseconds and nanoseconds to
    /// seconds. Division by the exact divisor is correctly rounded, so 25 ms is exactly the
    /// `0.025` s bucket bound.
    Div(f64),
    /// Multiply by this (an exact power of two): KiB, MiB, GiB and TiB to bytes.
    Mul(f64),
}

impl Scale {
    /// `v` in the exported unit.
    pub(crate) fn apply(self, v: f64) -> f64 {
        match self {
            Scale::One => v,
            Scale::Div(d) => v / d,
            Scale::Mul(m) => v * m,
        }
    }

    /// The factor from an exported value back to the recorded unit.
    pub(crate) fn inverse(self) -> f64 {
        match self {
            Scale::One => 1.0,
            Scale::Div(d) => d,
            Scale::Mul(m) => 1.0 / m,
        }
    }
}

/// How many counter or gauge values one [`Slots`] block holds.
pub(crate) const SLOTS_PER_BLOCK: usize = 64;

/// The values of up to [`SLOTS_PER_BLOCK`] counters or gauges of one metric, side by side in
/// registration order, so that a render reads a metric's values sequentially (one value per
/// allocation made a render of 100k series wait on a cache miss per series).
#[derive(Debug)]
pub(crate) struct Slots([AtomicU64; SLOTS_PER_BLOCK]);

impl Default for Slots {
    fn default() -> Self {
        Slots(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Slots {
    /// The raw value of slot `i` (`i < SLOTS_PER_BLOCK`): a counter, or a gauge's `f64` bits.
    pub(crate) fn raw(&self, i: usize) -> u64 {
        self.0[i % SLOTS_PER_BLOCK].load(Ordering::Relaxed)
    }
}

/// A counter: slot `index` of a block, holding a `u64`. Its handle is an update of that one
/// atomic.
#[derive(Debug)]
pub(crate) struct CounterCell {
    block: Arc<Slots>,
    index: usize,
}

impl CounterCell {
    pub(crate) fn new(block: Arc<Slots>, index: usize) -> Self {
        CounterCell {
            block,
            index: index % SLOTS_PER_BLOCK,
        }
    }

    fn atomic(&self) -> &AtomicU64 {
        &self.block.0[self.index]
    }

    #[cfg(test)]
    pub(crate) fn get(&self) -> u64 {
        self.atomic().load(Ordering::Relaxed)
    }
}

impl CounterFn for CounterCell {
    fn increment(&self, value: u64) {
        self.atomic().fetch_add(value, Ordering::Relaxed);
    }

    /// Raises the counter to `value`; a counter never goes down, so a lower value is ignored.
    fn absolute(&self, value: u64) {
        self.atomic().fetch_max(value, Ordering::Relaxed);
    }
}

/// A gauge: slot `index` of a block, holding the bits of an `f64` in the recorded unit. NaN
/// and infinities are ignored: one would stick to the gauge through every later increment.
#[derive(Debug)]
pub(crate) struct GaugeCell {
    block: Arc<Slots>,
    index: usize,
}

/// A gauge's value from its raw slot value.
pub(crate) fn gauge_value(raw: u64) -> f64 {
    f64::from_bits(raw)
}

impl GaugeCell {
    pub(crate) fn new(block: Arc<Slots>, index: usize) -> Self {
        GaugeCell {
            block,
            index: index % SLOTS_PER_BLOCK,
        }
    }

    fn atomic(&self) -> &AtomicU64 {
        &self.block.0[self.index]
    }

    /// The value, in the recorded unit.
    #[cfg(test)]
    pub(crate) fn get(&self) -> f64 {
        gauge_value(self.atomic().load(Ordering::Relaxed))
    }

    fn add(&self, delta: f64) {
        if delta.is_finite() {
            add_f64(self.atomic(), delta);
        }
    }
}

impl GaugeFn for GaugeCell {
    fn increment(&self, value: f64) {
        self.add(value);
    }

    fn decrement(&self, value: f64) {
        self.add(-value);
    }

    fn set(&self, value: f64) {
        if value.is_finite() {
            self.atomic().store(value.to_bits(), Ordering::Relaxed);
        }
    }
}

/// Adds `delta` to the `f64` whose bits `cell` holds.
fn add_f64(cell: &AtomicU64, delta: f64) {
    let mut current = cell.load(Ordering::Relaxed);
    loop {
        let next = (f64::from_bits(current) + delta).to_bits();
        match cell.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return,
            Err(actual) => current = actual,
        }
    }
}

/// A histogram with fixed buckets: one count per bucket (not cumulative; the render adds them
/// up) and the sum, in the recorded unit. The count is the sum of the buckets, so a render's
/// `_count` always equals its `+Inf` bucket. NaN and infinities are ignored.
#[derive(Debug)]
pub(crate) struct HistogramCell {
    /// Upper bounds in the recorded unit, strictly increasing, shared by the metric's series.
    bounds: Arc<[f64]>,
    /// `bounds.len() + 1` counts: one per bound, then the values above the last bound.
    buckets: Box<[AtomicU64]>,
    /// The bits of the sum.
    sum: AtomicU64,
}

impl HistogramCell {
    pub(crate) fn new(bounds: Arc<[f64]>) -> Self {
        let buckets = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        HistogramCell {
            bounds,
            buckets,
            sum: AtomicU64::new(0),
        }
    }

    /// The per-bucket counts (`bounds.len() + 1`, the last one above every bound).
    pub(crate) fn buckets(&self) -> impl Iterator<Item = u64> + '_ {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed))
    }

    /// The sum, in the recorded unit.
    pub(crate) fn sum(&self) -> f64 {
        f64::from_bits(self.sum.load(Ordering::Relaxed))
    }
}

impl HistogramFn for HistogramCell {
    fn record(&self, value: f64) {
        if !value.is_finite() {
            return;
        }
        // A value on a bound belongs to that bound's bucket (`le`: less than or equal).
        let i = self
            .bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(self.bounds.len());
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        add_f64(&self.sum, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_le() {
        let h = HistogramCell::new(Arc::from(&[1.0, 2.5, 5.0][..]));
        for v in [
            0.5,
            1.0,
            1.5,
            2.5,
            4.0,
            5.0,
            6.0,
            1e9,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            h.record(v);
        }
        assert_eq!(h.buckets().collect::<Vec<_>>(), [2, 2, 2, 2]);
        assert!((h.sum() - 1_000_000_020.5).abs() < 1e-3);
    }

    #[test]
    fn counters_and_gauges() {
        let block = Arc::new(Slots::default());
        let c = CounterCell::new(Arc::clone(&block), 3);
        c.increment(5);
        c.absolute(3);
        assert_eq!(c.get(), 5);
        c.absolute(9);
        assert_eq!(c.get(), 9);
        let g = GaugeCell::new(Arc::clone(&block), SLOTS_PER_BLOCK + 4);
        g.set(2.5);
        g.increment(1.0);
        g.decrement(0.5);
        g.increment(f64::NAN);
        g.set(f64::INFINITY);
        assert!((g.get() - 3.0).abs() < f64::EPSILON);
        // Side by side in one block, each in its own slot.
        assert_eq!(block.raw(3), 9);
        assert!((gauge_value(block.raw(4)) - 3.0).abs() < f64::EPSILON);
        assert_eq!(block.raw(5), 0);
    }

    #[test]
    fn scales() {
        assert!((Scale::Div(1e3).apply(25.0) - 0.025).abs() < f64::EPSILON);
        assert_eq!(Scale::Div(1e3).apply(25.0).to_bits(), (25.0_f64 / 1000.0).to_bits());
        assert!((Scale::Mul(1024.0).apply(2.0) - 2048.0).abs() < f64::EPSILON);
        assert!((Scale::Mul(1024.0).inverse() - 1.0 / 1024.0).abs() < f64::EPSILON);
        assert!((Scale::One.inverse() - 1.0).abs() < f64::EPSILON);
    }
}
