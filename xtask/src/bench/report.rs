//! `BENCHMARKS.md`: method, machine, commands, the targets, and tables of ratios, from a
//! [`Results`]. Pure: the same inputs give the same text.

use std::fmt::Write as _;

use super::machine::Machine;
use super::results::{Measurement, Results};
use super::sources;
use super::targets::{self, count_label};
use crate::wrk::{WrkConfig, WrkReport};

/// How the run was made: what the report says about its method and commands.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The command line that made the report (`cargo xtask bench`).
    pub invocation: String,
    /// A `--quick` smoke run.
    pub quick: bool,
    /// Free text from `--note` (for example: the machine was busy).
    pub note: Option<String>,
    /// The arguments given to every criterion bench.
    pub criterion_args: Vec<String>,
    /// The wrk run's settings.
    pub wrk: WrkConfig,
    /// Every bench target of the suite (`package/bench`), in run order.
    pub benches: Vec<String>,
    /// Parts whose results were not measured by this invocation but kept from an earlier one.
    pub reused: Vec<String>,
}

/// Bench names that are the reference in their group, in order of preference.
const PEERS: [&str; 6] = [
    "prometheus_client",
    "tracing_subscriber_json",
    "tracing_subscriber_text",
    "bare",
    // The Datadog logs backend's caller-side cost is compared with the console backend alone.
    "console_json",
    // A span through the Datadog tracer is compared with the same span without it.
    "registry_no_layer_root_span",
];

/// The hot-path implementations: (column heading, bench name).
const HOT_PATH: [(&str, &str); 5] = [
    ("Vigil facade", "vigil_facade"),
    ("metrics macro", "metrics_macro"),
    ("handle", "metrics_handle"),
    ("prometheus-client", "prometheus_client"),
    ("prometheus", "prometheus"),
];

/// The series counts of the scaling benches.
const SERIES: [usize; 3] = [1_000, 10_000, 100_000];

/// The whole report.
pub fn render(results: &Results, machine: &Machine, settings: &Settings) -> String {
    let mut out = String::from("# Vigil benchmarks\n\n");
    let _ = writeln!(
        out,
        "Written by `{}` on {}. Regenerate it with `cargo xtask bench` (about 15 minutes on 2 cores); \
         nothing here is asserted by a test, and a missed target does not fail the command.",
        settings.invocation, machine.date
    );
    if settings.quick {
        out.push_str(
            "\n**Smoke run (`--quick`)**: very short measurements, for checking the harness only; do not \
             read these numbers as results.\n",
        );
    }
    if let Some(note) = &settings.note {
        let _ = writeln!(out, "\n**Note:** {note}");
    }
    if !settings.reused.is_empty() {
        let _ = writeln!(
            out,
            "\nNot measured by this invocation (results kept from an earlier run): {}.",
            settings.reused.join(", ")
        );
    }
    out.push_str("\n## Targets\n\n");
    out.push_str(&targets_table(results));
    out.push_str("\n## Method\n\n");
    out.push_str(&method(settings));
    out.push_str("\n## Machine\n\n");
    out.push_str(&machine_table(machine));
    out.push_str("\n## Commands\n\n");
    out.push_str(&commands(settings));
    out.push_str("\n## Metric updates: the hot path\n\n");
    out.push_str(&hot_path(results));
    out.push_str("\n## Metric updates: two threads on one series\n\n");
    out.push_str(&contention(results));
    out.push_str("\n## Scaling with the number of series\n\n### Update cost\n\n");
    out.push_str(&scaling_updates(results));
    out.push_str("\n### Memory per series\n\n");
    out.push_str(&memory(results));
    out.push_str("\n### Cardinality limit\n\n");
    out.push_str(&cardinality(results));
    out.push_str("\n### `/metrics` render\n\n");
    out.push_str(&render_section(results));
    out.push_str("\n### Scrape latency under load\n\n");
    out.push_str(
        &results
            .wrk
            .as_ref()
            .and_then(WrkReport::render_scrapes)
            .unwrap_or_else(|| NOT_MEASURED.to_owned()),
    );
    out.push_str("\n## Logging\n\n");
    out.push_str(&logging(results));
    out.push_str("\n## HTTP\n\n### wrk, hello-world axum app\n\n");
    out.push_str(
        &results
            .wrk
            .as_ref()
            .map_or_else(|| NOT_MEASURED.to_owned(), WrkReport::render),
    );
    out.push_str("\n### In process, per request (criterion)\n\n");
    out.push_str(&http_in_process(results));
    out.push_str("\n## Background work\n\n");
    out.push_str(&background(results));
    out.push_str("\n## Appendix: every criterion result\n\n");
    out.push_str(&all_criterion(&results.criterion));
    out.push_str("\n## Appendix: every value measured aside\n\n");
    out.push_str(&all_side(results));
    out
}

/// What a section says when its bench did not run.
const NOT_MEASURED: &str = "Not measured in this run.\n";

/// Nanoseconds, with precision that fits their size.
fn ns(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn ns_cell(value: Option<f64>) -> String {
    value.map_or("n/a".to_owned(), ns)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn ratio_cell(a: Option<f64>, b: Option<f64>) -> String {
    ratio(a, b).map_or("n/a".to_owned(), |r| format!("{r:.2}x"))
}

/// Events (or operations) per second for a cost in nanoseconds: `1.45 M`, `690.3 k`.
fn rate(ns_per_op: Option<f64>) -> String {
    match ns_per_op {
        Some(ns) if ns > 0.0 => {
            let per_second = 1e9 / ns;
            if per_second >= 1e6 {
                format!("{:.2} M", per_second / 1e6)
            } else if per_second >= 1e3 {
                format!("{:.1} k", per_second / 1e3)
            } else {
                format!("{per_second:.0}")
            }
        }
        _ => "n/a".to_owned(),
    }
}

fn targets_table(results: &Results) -> String {
    let mut out = String::from("| target | goal | measured | result |\n|---|---|---|---|\n");
    for t in targets::evaluate(results) {
        let _ = writeln!(out, "| {} | {} | {} | {} |", t.what, t.goal, t.measured, t.status);
    }
    out
}

fn method(settings: &Settings) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "- **Criterion benches** report the median time per iteration (`cargo bench`, bench profile: \
         release with debug info; `{}` per bench unless a group sets its own, as the render groups' 10 \
         flat samples do). The tables show those medians and, above all, ratios to a peer measured in \
         the same run: ratios carry over to another machine far better than absolute times.",
        settings.criterion_args.join(" ")
    );
    out.push_str(
        "- **Values that are not times** (bytes, allocations, counts) come from separate bench binaries \
         with a counting global allocator (`stats_alloc`), so counting never slows a timed bench.\n\
         - **Hot path**: Vigil's Prometheus recorder is installed globally and remembered for the handle \
         cache (`vigil_core::handles::remember_global_recorder()`), as `vigil::init` does. *Vigil facade* \
         is `vigil::Metrics::increment/gauge/histogram(name, value, tags)`; *metrics macro* is \
         `metrics::counter!(name, &labels)` etc. on the same recorder (a key is built per call); \
         *handle* is a `metrics::Counter`/`Gauge`/`Histogram` registered once; *prometheus-client* is \
         `Family::get_or_create(&labels)`; *prometheus* (tikv) is `with_label_values(&values)`. Label \
         values are static strings. Histogram updates record eight durations in turn; Vigil's \
         histograms aggregate into fixed buckets as they record, so nothing buffers between \
         scrapes.\n\
         - **Two threads**: both threads update the same series at once; the cost is the wall time per \
         update per thread, so 1.00x of the one-thread cost means no slowdown from sharing.\n\
         - **Scaling**: counters over 100 metric names with 2 labels (`route`, `status`); updates go \
         round-robin over 1k, 10k or 100k series registered beforehand. Renders are of counters with \
         the global labels `service` and `environment`, to a `String` (prometheus: `gather` + \
         `TextEncoder`). Memory per series is the net of bytes allocated and freed while registering N \
         series and updating each once (table growth included, allocator overhead not).\n\
         - **Logging**: one `tracing::info!` event with 3 fields (two integers, one string), to \
         `std::io::sink`, outside any span and inside a request span (`request_id`, `method`, `route`). \
         Vigil's lines carry the resource (service, environment, version, pid) and the span fields \
         flattened; tracing-subscriber's JSON carries the current span and span list (its defaults), its \
         text the span context. Vigil formats on the caller's thread and queues the line for its writer \
         thread; lines it dropped (queue full) are counted below. Bytes per event count every \
         allocation of the process over 20,000 events, the writer thread's included.\n",
    );
    let w = &settings.wrk;
    let _ = writeln!(
        out,
        "- **HTTP**: `http_bench_server` (examples) in three forms, `{}` on loopback after a {} s warm-up, \
         {} rounds alternating the forms; medians of requests/s. Then `/metrics` of the Vigil form is \
         scraped {} times idle and up to {} times while wrk runs, one scrape every {} ms.",
        w.wrk_args(w.measure_seconds),
        w.warmup_seconds,
        w.rounds,
        w.idle_scrapes,
        w.loaded_scrapes,
        w.scrape_interval_ms
    );
    out
}

fn machine_table(m: &Machine) -> String {
    let load = match (&m.load_start, &m.load_end) {
        (Some(start), Some(end)) => format!("{start} → {end}"),
        (Some(start), None) => start.clone(),
        _ => "n/a".to_owned(),
    };
    format!(
        "| CPU | cores | kernel | rustc | date | load average (1, 5, 15 min) at start → end |\n\
         |---|---:|---|---|---|---|\n\
         | {} | {} | {} | {} | {} | {load} |\n",
        m.cpu, m.cores, m.kernel, m.rustc, m.date
    )
}

fn commands(settings: &Settings) -> String {
    let mut out = String::from(
        "```text\ncargo xtask bench [--quick] [--note TEXT] [--output PATH] [criterion | wrk | <bench>...]\n```\n\n\
         runs, in order (each bench with `CRITERION_HOME=<target>/vigil-bench/criterion/<package>.<bench>` \
         and `VIGIL_BENCH_OUT=<target>/vigil-bench/side/<package>.<bench>.json`, both emptied first):\n\n```text\n",
    );
    for source in &settings.benches {
        let (package, bench) = source.split_once('/').unwrap_or((source, source));
        let _ = writeln!(
            out,
            "cargo bench -p {package} --bench {bench} -- {}",
            settings.criterion_args.join(" ")
        );
    }
    let w = &settings.wrk;
    let _ = writeln!(
        out,
        "cargo build --release -p examples --example http_bench_server\n\
         # per round and form (bare, vigil, axum-prometheus), each on a fresh server\n\
         # ({}):\n\
         {} http://127.0.0.1:<port>/   # warm-up\n\
         {} http://127.0.0.1:<port>/   # measured\n\
         # then the vigil form: GET http://127.0.0.1:<metrics port>/metrics, idle and during\n\
         {} http://127.0.0.1:<port>/\n```",
        w.server_placement(),
        w.wrk_args(w.warmup_seconds),
        w.wrk_args(w.measure_seconds),
        w.wrk_args(w.measure_seconds)
    );
    out
}

fn hot_path(r: &Results) -> String {
    let mut out = String::from(
        "Median ns per update (lower is better); the last two columns are the ratios that matter.\n\n\
         | metric | labels |",
    );
    for (heading, _) in HOT_PATH {
        let _ = write!(out, " {heading} (ns) |");
    }
    out.push_str(" facade ÷ prometheus-client | facade ÷ prometheus |\n|---|---:|");
    out.push_str(&"---:|".repeat(HOT_PATH.len() + 2));
    out.push('\n');
    for kind in ["counter", "gauge", "histogram"] {
        for labels in [0, 2, 5] {
            let group = format!("{kind}_{labels}_labels");
            let time = |bench: &str| r.time(sources::FACADE, &group, bench);
            let _ = write!(out, "| {kind} | {labels} |");
            for (_, bench) in HOT_PATH {
                let _ = write!(out, " {} |", ns_cell(time(bench)));
            }
            let _ = writeln!(
                out,
                " {} | {} |",
                ratio_cell(time("vigil_facade"), time("prometheus_client")),
                ratio_cell(time("vigil_facade"), time("prometheus"))
            );
        }
    }
    let atomic = r.time(sources::FACADE, "counter_2_labels", "atomic_add");
    let handle = r.time(sources::FACADE, "counter_2_labels", "metrics_handle");
    let _ = writeln!(
        out,
        "\nThe floor: a bare relaxed atomic add takes {} ns; a counter handle update {} ns, {} the floor.",
        ns_cell(atomic),
        ns_cell(handle),
        ratio_cell(handle, atomic)
    );
    out
}

fn contention(r: &Results) -> String {
    let mut out = String::from(
        "A counter with 2 labels, the same series updated by two threads at once.\n\n\
         | implementation | 1 thread (ns/update) | 2 threads (ns/update per thread) | 2 threads ÷ 1 thread |\n\
         |---|---:|---:|---:|\n",
    );
    for (name, bench) in [
        ("Vigil facade", "vigil_facade"),
        ("handle", "metrics_handle"),
        ("prometheus-client", "prometheus_client"),
        ("prometheus", "prometheus"),
        ("atomic add", "atomic_add"),
    ] {
        let one = r.time(sources::FACADE, "counter_2_labels", bench);
        let two = r.time(sources::FACADE, "counter_2_labels_2_threads", bench);
        let _ = writeln!(
            out,
            "| {name} | {} | {} | {} |",
            ns_cell(one),
            ns_cell(two),
            ratio_cell(two, one)
        );
    }
    out
}

fn scaling_updates(r: &Results) -> String {
    let mut out = String::from(
        "A counter update round-robin over N distinct series (median ns per update).\n\n\
         | series | Vigil facade (ns) | prometheus-client (ns) | prometheus (ns) | facade ÷ prometheus-client | facade ÷ prometheus |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    for n in SERIES {
        let time = |lib: &str| r.time(sources::SCALING, "update_across_series", &format!("{lib}/{n}"));
        let (facade, client, prom) = (time("vigil_facade"), time("prometheus_client"), time("prometheus"));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            count_label(n),
            ns_cell(facade),
            ns_cell(client),
            ns_cell(prom),
            ratio_cell(facade, client),
            ratio_cell(facade, prom)
        );
    }
    out
}

fn memory(r: &Results) -> String {
    let mut out = String::from(
        "Bytes kept per series (net allocated while registering N counters with 2 labels and updating \
         each once, ÷ N), with live allocations per series in parentheses.\n\n\
         | series | Vigil's recorder | prometheus-client | prometheus | Vigil ÷ prometheus-client | Vigil ÷ prometheus |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    for n in SERIES {
        let bytes = |lib: &str| r.side(sources::MEMORY, "memory_per_series", &format!("{lib}/{n}"));
        let cell = |lib: &str| match bytes(lib) {
            Some(b) => match r.side(sources::MEMORY, "allocations_per_series", &format!("{lib}/{n}")) {
                Some(a) => format!("{b:.0} B ({a:.1})"),
                None => format!("{b:.0} B"),
            },
            None => "n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            count_label(n),
            cell("vigil"),
            cell("prometheus_client"),
            cell("prometheus"),
            ratio_cell(bytes("vigil"), bytes("prometheus_client")),
            ratio_cell(bytes("vigil"), bytes("prometheus"))
        );
    }
    out
}

fn cardinality(r: &Results) -> String {
    let get = |bench| r.side(sources::MEMORY, "cardinality_limit", bench);
    let (Some(limit), Some(registered), Some(kept), Some(below), Some(past)) = (
        get("limit"),
        get("label_sets_registered"),
        get("series_kept"),
        get("bytes_per_series_below_limit"),
        get("bytes_per_label_set_past_limit"),
    ) else {
        return NOT_MEASURED.to_owned();
    };
    format!(
        "One metric of Vigil's recorder with the default limit of {limit:.0} label sets, {registered:.0} \
         distinct label sets registered: the first {limit:.0} keep {below:.0} B each; each one past the \
         limit keeps {past:.1} B, because it folds into the metric's overflow series (label values \
         `__overflow__`, counted by `vigil_metrics_overflow_total`). The metric ends with {kept:.0} series. \
         prometheus-client and prometheus have no such limit: every label set is a new series, at the \
         cost per series in the table above.\n"
    )
}

fn render_section(r: &Results) -> String {
    let mut out = String::from(
        "Time of one full render of N counters (median) and its size.\n\n\
         | series | Vigil (ms) | prometheus-client (ms) | prometheus (ms) | Vigil ÷ prometheus-client | Vigil ÷ prometheus | Vigil per series (ns) | size: Vigil / prometheus-client / prometheus (KiB) |\n\
         |---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let ms = |v: Option<f64>| v.map_or("n/a".to_owned(), |ns| format!("{:.2}", ns / 1e6));
    for n in SERIES {
        let time = |lib: &str| r.time(sources::SCALING, "render_series", &format!("{lib}/{n}"));
        let size = |lib: &str| {
            r.side(sources::SCALING, "render_size", &format!("{lib}/{n}"))
                .map_or("n/a".to_owned(), |b| format!("{:.0}", b / 1024.0))
        };
        let (vigil, client, prom) = (time("vigil"), time("prometheus_client"), time("prometheus"));
        #[allow(clippy::cast_precision_loss)]
        let per_series = vigil.map(|t| t / n as f64);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} / {} |",
            count_label(n),
            ms(vigil),
            ms(client),
            ms(prom),
            ratio_cell(vigil, client),
            ratio_cell(vigil, prom),
            ns_cell(per_series),
            size("vigil"),
            size("prometheus_client"),
            size("prometheus")
        );
    }
    out
}

fn logging(r: &Results) -> String {
    let mut out = String::from(
        "One event with 3 fields, to a sink. Lower ns and bytes are better; the ratio is Vigil's cost ÷ \
         tracing-subscriber's.\n\n\
         | format | span | Vigil (ns/event) | tracing-subscriber (ns/event) | Vigil ÷ tracing-subscriber | Vigil (events/s) | tracing-subscriber (events/s) | Vigil (bytes/event, allocations) | tracing-subscriber (bytes/event, allocations) |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (format, suffix) in [("JSON", "json"), ("text", "text")] {
        for (span, scenario) in [("none", "no_span"), ("request span", "in_span")] {
            let group = format!(
                "log_event_3_fields{}{}",
                if suffix == "json" { "" } else { "_text" },
                if scenario == "in_span" { "_in_span" } else { "" }
            );
            let vigil_bench = format!("vigil_console_{suffix}");
            let peer_bench = format!("tracing_subscriber_{suffix}");
            let vigil = r.time(sources::CONSOLE, &group, &vigil_bench);
            let peer = r.time(sources::CONSOLE, &group, &peer_bench);
            let alloc = |bench: &str| {
                let key = format!("{bench}/{scenario}");
                match (
                    r.side(sources::CONSOLE_ALLOC, "log_bytes_per_event", &key),
                    r.side(sources::CONSOLE_ALLOC, "log_allocations_per_event", &key),
                ) {
                    (Some(b), Some(a)) => format!("{b:.0} B, {a:.2}"),
                    (Some(b), None) => format!("{b:.0} B"),
                    _ => "n/a".to_owned(),
                }
            };
            let _ = writeln!(
                out,
                "| {format} | {span} | {} | {} | {} | {} | {} | {} | {} |",
                ns_cell(vigil),
                ns_cell(peer),
                ratio_cell(vigil, peer),
                rate(vigil),
                rate(peer),
                alloc(&vigil_bench),
                alloc(&peer_bench)
            );
        }
    }
    let sum = |group: &str| -> Option<f64> {
        let values: Vec<f64> = r
            .side
            .iter()
            .filter(|v| v.source == sources::CONSOLE && v.group == group)
            .map(|v| v.value)
            .collect();
        (!values.is_empty()).then(|| values.iter().sum())
    };
    if let (Some(dropped), Some(written)) = (sum("log_queue_dropped"), sum("log_queue_written")) {
        let _ = writeln!(
            out,
            "\nLines Vigil's console queue dropped during the timed runs: {dropped:.0} (of {written:.0} written)."
        );
    }
    out
}

fn http_in_process(r: &Results) -> String {
    let groups = r.groups(sources::HTTP);
    if groups.is_empty() {
        return NOT_MEASURED.to_owned();
    }
    let mut out = String::from(
        "One request through an axum router in process (`tower::ServiceExt::oneshot`), under Vigil's \
         recorder and log layer.\n\n| variant | ns/request | ratio to bare |\n|---|---:|---:|\n",
    );
    for m in r.criterion.iter().filter(|m| m.source == sources::HTTP) {
        let bare = r.time(sources::HTTP, &m.group, "bare");
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            m.bench,
            ns(m.median_ns),
            ratio_cell(Some(m.median_ns), bare)
        );
    }
    out
}

fn background(r: &Results) -> String {
    let mut out = String::from("### VM sampler\n\n");
    let vm: Vec<&Measurement> = r.criterion.iter().filter(|m| m.source == sources::VM).collect();
    if vm.is_empty() {
        out.push_str(NOT_MEASURED);
    } else {
        out.push_str(
            "The cost of one sample on the sampler's background thread (process, system and runtime \
             metrics).\n\n| step | µs per sample |\n|---|---:|\n",
        );
        for m in vm {
            let _ = writeln!(out, "| {} | {:.1} |", m.bench, m.median_ns / 1e3);
        }
    }
    out.push_str("\n### Datadog logs with the intake down\n\n");
    let group = "datadog_caller_log_event";
    let logs: Vec<&Measurement> = r
        .criterion
        .iter()
        .filter(|m| m.source == sources::DATADOG_LOGS && m.group == group)
        .collect();
    if logs.is_empty() {
        out.push_str(NOT_MEASURED);
    } else {
        out.push_str(
            "The caller's cost of one log event while the Datadog intake does not answer, against the \
             console backend alone.\n\n| backends | ns/event | ratio to console alone |\n|---|---:|---:|\n",
        );
        let console = r.time(sources::DATADOG_LOGS, group, "console_json");
        for m in logs {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                m.bench,
                ns(m.median_ns),
                ratio_cell(Some(m.median_ns), console)
            );
        }
    }
    out.push_str("\n### Datadog traces\n\n");
    let spans = r.groups(sources::DATADOG_TRACES);
    if spans.is_empty() {
        out.push_str(NOT_MEASURED);
    } else {
        out.push_str(
            "A span with 3 fields, with and without the Datadog trace layer.\n\n\
             | span | without the layer (ns) | with the Datadog layer (ns) | ratio |\n|---|---:|---:|---:|\n",
        );
        for group in spans {
            for kind in ["root", "child"] {
                let without = r.time(
                    sources::DATADOG_TRACES,
                    group,
                    &format!("registry_no_layer_{kind}_span"),
                );
                let with = r.time(sources::DATADOG_TRACES, group, &format!("datadog_layer_{kind}_span"));
                if without.is_none() && with.is_none() {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "| {group}, {kind} | {} | {} | {} |",
                    ns_cell(without),
                    ns_cell(with),
                    ratio_cell(with, without)
                );
            }
        }
    }
    out
}

/// The peer of a bench: the bench of the same source and group named first in [`PEERS`], with
/// the same parameter (`prometheus_client/1000` for `vigil/1000`).
fn peer_of<'a>(all: &'a [Measurement], m: &Measurement) -> Option<&'a Measurement> {
    let parameter = m.bench.split_once('/').map(|(_, p)| p);
    PEERS.iter().find_map(|peer| {
        let name = parameter.map_or_else(|| (*peer).to_owned(), |p| format!("{peer}/{p}"));
        all.iter()
            .find(|o| o.source == m.source && o.group == m.group && o.bench == name)
    })
}

/// Every criterion result, by bench target, with its ratio to its group's peer.
pub fn all_criterion(all: &[Measurement]) -> String {
    if all.is_empty() {
        return NOT_MEASURED.to_owned();
    }
    let mut out = String::from(
        "Medians; the ratio is to the group's peer (the first of prometheus_client, \
         tracing_subscriber_json, tracing_subscriber_text, bare, console_json, \
         registry_no_layer_root_span in the group, with the same parameter), lower is faster.\n\n\
         | bench target | group | bench | median (ns) | ratio to peer |\n|---|---|---|---:|---:|\n",
    );
    for m in all {
        let ratio = match peer_of(all, m) {
            Some(peer) if peer.bench == m.bench => "1.00x (peer)".to_owned(),
            Some(peer) => ratio_cell(Some(m.median_ns), Some(peer.median_ns)),
            None => "n/a".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {ratio} |",
            m.source,
            m.group,
            m.bench,
            ns(m.median_ns)
        );
    }
    out
}

fn all_side(r: &Results) -> String {
    if r.side.is_empty() {
        return NOT_MEASURED.to_owned();
    }
    let mut out = String::from("| bench target | group | bench | value | unit |\n|---|---|---|---:|---|\n");
    for v in &r.side {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            v.source,
            v.group,
            v.bench,
            if v.value.fract() == 0.0 {
                format!("{:.0}", v.value)
            } else {
                format!("{:.2}", v.value)
            },
            v.unit
        );
    }
    out
}
