//! The storage: one [`Family`] per exported metric, holding its series keyed by their label
//! text, and the render of a family in the text exposition format.
//!
//! A series is registered once (callers cache handles) under the family's lock; its updates go
//! through the returned `metrics` handle straight to its atomic cell, with no lock. The render
//! takes each family's lock for reading while it writes that family, so it never blocks an
//! update, and a registration waits at most for one family's render.

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use hashbrown::HashTable;
use metrics::{Counter, Gauge, Histogram, Key, Label};

use crate::cells::{CounterCell, GaugeCell, HistogramCell, SLOTS_PER_BLOCK, Scale, Slots, gauge_value};
use crate::text::{is_valid_label_key, label_key, push_f64, push_label_value, push_u64};

/// The label value every label of an overflow series carries.
pub(crate) const OVERFLOW: &str = "__overflow__";

/// What kind of metric a family is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The labels every series carries, from the builder.
#[derive(Debug, Default)]
pub(crate) struct GlobalLabels {
    /// Sanitized keys and raw values, a later duplicate key replacing an earlier one's value.
    labels: Vec<(String, String)>,
    /// `k="v",...` (no braces), escaped.
    text: String,
}

impl GlobalLabels {
    pub(crate) fn new(labels: &[(String, String)]) -> Self {
        let mut deduped: Vec<(String, String)> = Vec::new();
        for (k, v) in labels {
            let k = label_key(k).into_owned();
            match deduped.iter_mut().find(|(k2, _)| *k2 == k) {
                Some(entry) => entry.1.clone_from(v),
                None => deduped.push((k, v.clone())),
            }
        }
        let mut text = String::new();
        write_pairs(&mut text, deduped.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        GlobalLabels { labels: deduped, text }
    }

    /// The global labels as label text (`k="v",...`, no braces).
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    fn has(&self, key: &str) -> bool {
        self.labels.iter().any(|(k, _)| k == key)
    }

    /// Writes the label text of `key`'s labels (no braces) into `out`: each key sanitized
    /// (see [`label_key`]: `le`, `quantile` and `__name__` become `exported_le` and so on),
    /// each value escaped (or `__overflow__` for an overflow series); a later duplicate key
    /// replaces an earlier one's value. Returns whether the text includes the global labels,
    /// which it does, in their place and in front, when a label of `key` overrides one.
    pub(crate) fn write_series_labels<'a>(&'a self, key: &'a Key, overflow: bool, out: &mut String) -> bool {
        let labels = key.labels().as_slice();
        let value = |l: &'a Label| -> &'a str { if overflow { OVERFLOW } else { l.value() } };
        // Fast path: keys exported as they are, distinct, and not a global's.
        let simple = labels.iter().enumerate().all(|(i, l)| {
            let k = l.key();
            is_valid_label_key(k) && !self.has(k) && labels[..i].iter().all(|p| p.key() != k)
        });
        if simple {
            write_pairs(out, labels.iter().map(|l| (l.key(), value(l))));
            return false;
        }
        let mut pairs: Vec<(Cow<'_, str>, &str)> = Vec::with_capacity(labels.len() + self.labels.len());
        let mut own_globals = false;
        for (k, v) in labels.iter().map(|l| (label_key(l.key()), value(l))) {
            if !own_globals && self.has(&k) {
                own_globals = true;
                let mut with_globals: Vec<(Cow<'_, str>, &str)> = self
                    .labels
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), v.as_str()))
                    .collect();
                for (k, v) in pairs.drain(..) {
                    upsert(&mut with_globals, k, v);
                }
                pairs = with_globals;
            }
            upsert(&mut pairs, k, v);
        }
        write_pairs(out, pairs.iter().map(|(k, v)| (k.as_ref(), *v)));
        own_globals
    }
}

fn upsert<'a>(pairs: &mut Vec<(Cow<'a, str>, &'a str)>, k: Cow<'a, str>, v: &'a str) {
    match pairs.iter_mut().find(|(k2, _)| *k2 == k) {
        Some(entry) => entry.1 = v,
        None => pairs.push((k, v)),
    }
}

/// Writes `k="v"` pairs separated by commas; keys must be valid already, values are escaped.
fn write_pairs<'a>(out: &mut String, pairs: impl Iterator<Item = (&'a str, &'a str)>) {
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        push_label_value(out, v);
        out.push('"');
    }
}

/// A histogram family's buckets.
#[derive(Debug, PartialEq)]
pub(crate) struct Buckets {
    /// Upper bounds in the recorded unit: what values are compared with.
    pub(crate) bounds: Arc<[f64]>,
    /// The same bounds in the exported unit, as the `le` label writes them.
    pub(crate) le: Box<[Box<str>]>,
}

impl Buckets {
    /// `bounds` in the recorded unit and `exported`, the same bounds in the exported unit.
    pub(crate) fn new(bounds: &[f64], exported: &[f64]) -> Self {
        let le = exported
            .iter()
            .map(|&b| {
                let mut s = String::new();
                push_f64(&mut s, b);
                s.into_boxed_str()
            })
            .collect();
        Buckets {
            bounds: Arc::from(bounds),
            le,
        }
    }
}

/// The cell of a series.
#[derive(Debug)]
enum Cell {
    Counter(Arc<CounterCell>),
    Gauge(Arc<GaugeCell>),
    Histogram(Arc<HistogramCell>),
}

/// A handle on a series' cell, as the recorder returns it.
#[derive(Debug)]
pub(crate) enum SeriesHandle {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Cell {
    fn handle(&self) -> SeriesHandle {
        match self {
            Cell::Counter(c) => SeriesHandle::Counter(Counter::from_arc(Arc::clone(c))),
            Cell::Gauge(g) => SeriesHandle::Gauge(Gauge::from_arc(Arc::clone(g))),
            Cell::Histogram(h) => SeriesHandle::Histogram(Histogram::from_arc(Arc::clone(h))),
        }
    }
}

/// One series: where its label text and its value are, and its cell.
#[derive(Debug)]
struct Series {
    /// A counter's or gauge's slot among the table's `slots` (unused for histograms).
    slot: usize,
    /// `k="v",...` without braces, in the table's `text`: the series' own labels, or, when
    /// `own_globals`, the global labels (one of them overridden) followed by its own.
    labels: std::ops::Range<usize>,
    own_globals: bool,
    cell: Cell,
}

/// The series of a family.
#[derive(Debug, Default)]
struct SeriesTable {
    /// Indices into `series`, hashed by label text.
    index: HashTable<usize>,
    series: Vec<Series>,
    /// The label texts of all series, one after the other in registration order: a render
    /// reads them sequentially instead of chasing one allocation per series (at 100k series
    /// that was most of its time, in cache misses).
    text: String,
    /// The values of the counters or gauges, [`SLOTS_PER_BLOCK`] to a block, in registration
    /// order.
    slots: Vec<Arc<Slots>>,
    /// Slots handed out.
    slots_used: usize,
    /// Series admitted under the limit (overflow series are not counted).
    admitted: usize,
}

impl SeriesTable {
    fn labels(&self, series: &Series) -> &str {
        &self.text[series.labels.clone()]
    }

    /// The raw value in `slot`.
    fn raw(&self, slot: usize) -> u64 {
        self.slots[slot / SLOTS_PER_BLOCK].raw(slot)
    }

    /// The next free slot and its block.
    fn next_slot(&mut self) -> (usize, Arc<Slots>) {
        let slot = self.slots_used;
        if slot / SLOTS_PER_BLOCK == self.slots.len() {
            self.slots.push(Arc::new(Slots::default()));
        }
        self.slots_used += 1;
        (slot, Arc::clone(&self.slots[slot / SLOTS_PER_BLOCK]))
    }
}

/// How a registration went.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) handle: SeriesHandle,
    /// The label set was past the limit and went to the overflow series.
    pub(crate) overflowed: bool,
    /// This was the family's first overflow (log it).
    pub(crate) first_overflow: bool,
}

/// One exported metric: its name, HELP and TYPE, unit conversion, buckets and series.
#[derive(Debug)]
pub(crate) struct Family {
    pub(crate) kind: Kind,
    /// The exported name (`http_request_duration_seconds`, `http_request_total`).
    pub(crate) name: Box<str>,
    /// `# HELP ...\n# TYPE ...\n`.
    header: Box<str>,
    pub(crate) scale: Scale,
    /// A histogram's buckets.
    pub(crate) buckets: Option<Buckets>,
    table: RwLock<SeriesTable>,
    overflow_warned: AtomicBool,
    kind_conflict_warned: AtomicBool,
}

impl Family {
    pub(crate) fn new(kind: Kind, name: String, help: &str, scale: Scale, buckets: Option<Buckets>) -> Self {
        let mut header = String::with_capacity(name.len() * 2 + help.len() + 32);
        metrics_exporter_prometheus::formatting::write_help_line(&mut header, &name, None, None, help);
        metrics_exporter_prometheus::formatting::write_type_line(&mut header, &name, None, None, kind.as_str());
        Family {
            kind,
            name: name.into_boxed_str(),
            header: header.into_boxed_str(),
            scale,
            buckets,
            table: RwLock::new(SeriesTable::default()),
            overflow_warned: AtomicBool::new(false),
            kind_conflict_warned: AtomicBool::new(false),
        }
    }

    /// Whether a metric of this kind, scale and buckets would be stored exactly as this family
    /// stores its own, so two metric names exported under one name can share it.
    pub(crate) fn stores_like(&self, kind: Kind, scale: Scale, buckets: Option<&Buckets>) -> bool {
        self.kind == kind && self.scale == scale && self.buckets.as_ref() == buckets
    }

    /// The names this family's lines use: its name, and for a histogram the `_bucket`,
    /// `_sum` and `_count` names too.
    pub(crate) fn line_names(kind: Kind, name: &str) -> Vec<String> {
        match kind {
            Kind::Counter | Kind::Gauge => vec![name.to_owned()],
            Kind::Histogram => ["", "_bucket", "_sum", "_count"]
                .iter()
                .map(|suffix| format!("{name}{suffix}"))
                .collect(),
        }
    }

    /// Whether a kind conflict is reported for the first time.
    pub(crate) fn first_kind_conflict(&self) -> bool {
        !self.kind_conflict_warned.swap(true, Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SeriesTable> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, SeriesTable> {
        self.table.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Series admitted under the limit.
    pub(crate) fn series_count(&self) -> usize {
        self.read().admitted
    }

    /// The series of `key` (registered now if new): past `limit` label sets, new label sets go
    /// to the overflow series, whose label values are all `__overflow__`.
    pub(crate) fn register(&self, globals: &GlobalLabels, key: &Key, limit: usize) -> Registered {
        with_scratch(|text| {
            let own_globals = globals.write_series_labels(key, false, text);
            let hash = text_hash(text);
            let found = |table: &SeriesTable, text: &str, hash: u64| {
                table
                    .index
                    .find(hash, |&i| table.labels(&table.series[i]) == text)
                    .map(|&i| table.series[i].cell.handle())
            };
            if let Some(handle) = found(&self.read(), text, hash) {
                return Registered {
                    handle,
                    overflowed: false,
                    first_overflow: false,
                };
            }
            let mut table = self.write();
            if let Some(handle) = found(&table, text, hash) {
                return Registered {
                    handle,
                    overflowed: false,
                    first_overflow: false,
                };
            }
            if table.admitted < limit {
                table.admitted += 1;
                return Registered {
                    handle: self.insert(&mut table, text, hash, own_globals),
                    overflowed: false,
                    first_overflow: false,
                };
            }
            text.clear();
            let own_globals = globals.write_series_labels(key, true, text);
            let hash = text_hash(text);
            let handle = match found(&table, text, hash) {
                Some(handle) => handle,
                None => self.insert(&mut table, text, hash, own_globals),
            };
            Registered {
                handle,
                overflowed: true,
                first_overflow: !self.overflow_warned.swap(true, Ordering::Relaxed),
            }
        })
    }

    fn insert(&self, table: &mut SeriesTable, text: &str, hash: u64, own_globals: bool) -> SeriesHandle {
        let (slot, cell) = match (self.kind, &self.buckets) {
            (Kind::Counter, _) => {
                let (slot, block) = table.next_slot();
                (slot, Cell::Counter(Arc::new(CounterCell::new(block, slot))))
            }
            (Kind::Gauge, _) => {
                let (slot, block) = table.next_slot();
                (slot, Cell::Gauge(Arc::new(GaugeCell::new(block, slot))))
            }
            (Kind::Histogram, Some(b)) => (0, Cell::Histogram(Arc::new(HistogramCell::new(Arc::clone(&b.bounds))))),
            (Kind::Histogram, None) => (0, Cell::Histogram(Arc::new(HistogramCell::new(Arc::from(&[][..]))))),
        };
        let handle = cell.handle();
        let SeriesTable {
            index,
            series,
            text: arena,
            ..
        } = table;
        let i = series.len();
        let start = arena.len();
        arena.push_str(text);
        series.push(Series {
            slot,
            labels: start..arena.len(),
            own_globals,
            cell,
        });
        index.insert_unique(hash, i, |&j| text_hash(&arena[series[j].labels.clone()]));
        handle
    }

    /// Appends this family in the text exposition format (nothing when it has no series).
    pub(crate) fn render(&self, globals: &str, out: &mut String) {
        let table = self.read();
        if table.series.is_empty() {
            return;
        }
        out.push_str(&self.header);
        let name = &*self.name;
        let mut block = String::new();
        for series in &table.series {
            let globals = if series.own_globals { "" } else { globals };
            let labels = table.labels(series);
            match &series.cell {
                Cell::Counter(_) => {
                    write_name(out, name, "", globals, labels);
                    push_u64(out, table.raw(series.slot));
                    out.push('\n');
                }
                Cell::Gauge(_) => {
                    write_name(out, name, "", globals, labels);
                    push_f64(out, self.scale.apply(gauge_value(table.raw(series.slot))));
                    out.push('\n');
                }
                Cell::Histogram(h) => {
                    // `{labels,le="` once, then one line per bucket.
                    block.clear();
                    block.push('{');
                    block.push_str(globals);
                    if !globals.is_empty() && !labels.is_empty() {
                        block.push(',');
                    }
                    block.push_str(labels);
                    if block.len() > 1 {
                        block.push(',');
                    }
                    block.push_str("le=\"");
                    let le = self.buckets.as_ref().map_or(&[][..], |b| &b.le[..]);
                    let mut cumulative = 0u64;
                    for (i, count) in h.buckets().enumerate() {
                        cumulative = cumulative.wrapping_add(count);
                        out.push_str(name);
                        out.push_str("_bucket");
                        out.push_str(&block);
                        out.push_str(le.get(i).map_or("+Inf", |b| b));
                        out.push_str("\"} ");
                        push_u64(out, cumulative);
                        out.push('\n');
                    }
                    write_name(out, name, "_sum", globals, labels);
                    push_f64(out, self.scale.apply(h.sum()));
                    out.push('\n');
                    write_name(out, name, "_count", globals, labels);
                    push_u64(out, cumulative);
                    out.push('\n');
                }
            }
        }
        out.push('\n');
    }
}

/// Writes `name{globals,labels} ` (no braces when there are no labels).
fn write_name(out: &mut String, name: &str, suffix: &str, globals: &str, labels: &str) {
    out.push_str(name);
    out.push_str(suffix);
    if globals.is_empty() && labels.is_empty() {
        out.push(' ');
        return;
    }
    out.push('{');
    out.push_str(globals);
    if !globals.is_empty() && !labels.is_empty() {
        out.push(',');
    }
    out.push_str(labels);
    out.push_str("} ");
}

fn text_hash(text: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one(text)
}

thread_local! {
    static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Runs `f` with an empty scratch string, reused per thread (a fresh one if it is in use).
fn with_scratch<R>(f: impl FnOnce(&mut String) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut s) => {
            s.clear();
            let r = f(&mut s);
            if s.capacity() > 4096 {
                *s = String::new();
            }
            r
        }
        Err(_) => f(&mut String::new()),
    })
}
