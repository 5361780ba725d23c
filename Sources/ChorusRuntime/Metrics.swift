import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The metrics of one process (a coordinator or a worker), in Prometheus' text format.
///
/// Instruments use swift-metrics' API (`Counter`, `Timer`, `Meter`) on a factory bound to this object's own
/// swift-prometheus registry, not the global `MetricsSystem`: a test or `chorus local` runs several nodes in one
/// process, and each must expose only its own values. Event counts are counted where they happen; state (node
/// states, partitions, disk, RocksDB) is read when `/metrics` is scraped (`set` before `exposition`).
///
/// Names follow Prometheus' conventions: base units in the name (`_seconds`, `_bytes`), `_total` on counters.
/// `MetricDocs.help` gives each family its `# HELP` line, and docs/operations.md the same list.
public final class NodeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])
    private let meters = Mutex<[String: Meter]>([:])
    /// Totals kept elsewhere (e.g. `fenced`), with the part already added to their counter.
    private let mirrored = Mutex<[String: Double]>([:])
    private let floatCounters = Mutex<[String: FloatingPointCounter]>([:])

    public init() {
        var f = PrometheusMetricsFactory(registry: registry)
        // From 1 ms (a write batch, a heartbeat) to 30 min (a task of a large job).
        f.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
                                             .milliseconds(250), .seconds(1), .milliseconds(2500), .seconds(10),
                                             .seconds(60), .seconds(300), .seconds(1800)]
        factory = f
    }

    private static func key(_ name: String, _ labels: [(String, String)]) -> String {
        labels.isEmpty ? name : name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
    }

    /// The instrument of `table` under `key`, made on first use and kept.
    private static func cached<T: AnyObject>(_ table: borrowing Mutex<[String: T]>, _ key: String, _ make: () -> T) -> T {
        table.withLock { t in
            if let found = t[key] { return found }
            let made = make()
            t[key] = made
            return made
        }
    }

    /// The counter `name` with these labels.
    func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        Self.cached(counters, Self.key(name, labels)) { CoreMetrics.Counter(label: name, dimensions: labels, factory: factory) }
    }

    /// The histogram of durations `name` with these labels.
    func timer(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Timer {
        Self.cached(timers, Self.key(name, labels)) { CoreMetrics.Timer(label: name, dimensions: labels, factory: factory) }
    }

    /// Sets the gauge `name` with these labels.
    func set(_ name: String, _ labels: [(String, String)] = [], _ value: Double) {
        Self.cached(meters, Self.key(name, labels)) { Meter(label: name, dimensions: labels, factory: factory) }.set(value)
    }

    /// Removes the gauges of `name` whose labels match `isStale` (a node that left the cluster).
    func removeGauges(_ name: String, where isStale: ([(String, String)]) -> Bool) {
        let gone = meters.withLock { m -> [Meter] in
            let keys = m.keys.filter { $0.hasPrefix(name + "{") }
            var out: [Meter] = []
            for k in keys {
                let inner = k.dropFirst(name.count + 1).dropLast()
                let labels = inner.split(separator: ",").map { kv -> (String, String) in
                    let p = kv.split(separator: "=", maxSplits: 1)
                    return (String(p[0]), p.count > 1 ? String(p[1]) : "")
                }
                if isStale(labels), let meter = m.removeValue(forKey: k) { out.append(meter) }
            }
            return out
        }
        for meter in gone { meter.destroy() }
    }

    /// Brings the counter `name` up to `total`, a count kept elsewhere. A total that went down (its source
    /// restarted) becomes the new baseline: the counter never decreases.
    func mirror(_ name: String, _ labels: [(String, String)] = [], total: Double) {
        let k = Self.key(name, labels)
        let delta = mirrored.withLock { m -> Double in
            let before = m[k] ?? 0
            m[k] = total
            return max(0, total - before)
        }
        let c = Self.cached(floatCounters, k) { FloatingPointCounter(label: name, dimensions: labels, factory: factory) }
        if delta > 0 { c.increment(by: delta) }
    }

    /// The exposition (text format 0.0.4), with a `# HELP` line per family.
    public func exposition() -> [UInt8] {
        var body = [UInt8]()
        registry.emit(into: &body)
        return MetricDocs.addHelp(body)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}

/// What every metric means: the `# HELP` lines, and the list in docs/operations.md (a test keeps them equal).
public enum MetricDocs {
    public static let help: [String: String] = [
        // Both processes.
        "chorus_requests_total": "Requests answered, by request type and outcome (ok or the error code).",
        "chorus_request_duration_seconds": "Time to answer a request, by request type.",
        "chorus_rejected_requests_total": "Requests refused as invalid (BAD_REQUEST) since start.",
        "chorus_connections": "Live ZeroMQ connections to this process's server socket.",
        "chorus_up_seconds": "Seconds since this process started.",
        // A worker about itself.
        "chorus_worker_registered": "1 while the worker is registered with the coordinator and heartbeating.",
        "chorus_worker_partitions": "Partitions this worker holds, by role (primary, replica, learner), from its map.",
        "chorus_worker_disk_bytes": "Bytes of the worker's store: SST files plus memtables.",
        "chorus_worker_disk_free_bytes": "Free bytes on the data directory's file system.",
        "chorus_worker_storage_state": "1 for the store's state (ok, low, read_only), 0 for the others.",
        "chorus_worker_write_batches_total": "Write batches applied as primary.",
        "chorus_worker_records_stored_total": "Counted records stored as primary (new or changed).",
        "chorus_worker_duplicate_records_total": "Counted records that were already stored byte for byte (re-sent, re-ingested).",
        "chorus_worker_rows_written_total": "Rows written as primary (counted records and their derived rows).",
        "chorus_worker_replica_batches_total": "Write batches applied as a replica or learner.",
        "chorus_worker_replica_rows_total": "Rows applied as a replica or learner.",
        "chorus_worker_fenced_requests_total": "Requests refused as stale: an expired lease or an older partition map.",
        "chorus_worker_running_tasks": "Job tasks running now.",
        "chorus_rocksdb_pending_compaction_bytes": "RocksDB's estimate of the bytes compaction still has to rewrite.",
        "chorus_rocksdb_running_compactions": "RocksDB compactions running now.",
        "chorus_rocksdb_write_stopped": "1 while RocksDB stops writes (too many level-0 files or pending compaction bytes).",
        "chorus_rocksdb_delayed_write_rate_bytes_per_second": "The write rate RocksDB throttles to while it delays writes, else 0 (bytes per second).",
        "chorus_rocksdb_stall_seconds_total": "Seconds writes were stalled or delayed by RocksDB since the store opened.",
        // The coordinator about the cluster.
        "chorus_cluster_nodes": "Workers by state (joining, active, suspect, dead, draining, drained).",
        "chorus_cluster_partitions": "Partitions of the cluster.",
        "chorus_cluster_partitions_unavailable": "Partitions without a live primary: their reads, writes and tasks wait.",
        "chorus_cluster_partitions_under_replicated": "Partitions with fewer than R live in-sync copies.",
        "chorus_cluster_replication_factor": "R: the copies every partition should have.",
        "chorus_cluster_map_version": "Version of the partition map.",
        "chorus_cluster_moves_in_flight": "Partition moves copying now.",
        "chorus_cluster_moves_planned": "Further moves the planner wants once these finish.",
        "chorus_cluster_move_copied_bytes": "Bytes copied so far by the moves in flight.",
        "chorus_cluster_moves_finished_total": "Partition moves finished, by outcome (done, failed).",
        "chorus_cluster_jobs": "Jobs by state (queued, running, succeeded, failed, cancelled).",
        "chorus_cluster_tasks_total": "Task messages sent to workers, by job kind and outcome (ok, error).",
        "chorus_cluster_task_duration_seconds": "Time a task message took on its worker, by job kind (one message covers the partitions one worker holds).",
        "chorus_cluster_task_retries_total": "Partition tasks run again after a failure, by job kind.",
        "chorus_cluster_task_fenced_results_total": "Task results refused because the worker lost the partition meanwhile, by job kind.",
        "chorus_node_state": "1 for each worker's state, 0 for the others, as the coordinator sees it.",
        "chorus_node_heartbeat_age_seconds": "Seconds since each worker's last heartbeat.",
        "chorus_node_partitions": "Partitions each worker holds, by role (primary, replica, learner).",
        "chorus_node_disk_bytes": "Bytes each worker's store holds, from its last heartbeat.",
        "chorus_node_running_tasks": "Tasks each worker runs, from its last heartbeat.",
        "chorus_node_fenced_requests": "Requests each worker refused as stale since it started, from its last heartbeat.",
        "chorus_node_rejected_requests": "Requests each worker refused as invalid since it started, from its last heartbeat.",
    ]

    /// Inserts `# HELP name text` before each `# TYPE name ...` line.
    static func addHelp(_ body: [UInt8]) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(body.count + 4096)
        for line in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            if line.starts(with: Array("# TYPE ".utf8)) {
                let name = String(decoding: line.dropFirst(7).prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self)
                if let text = help[name] { out += Array("# HELP \(name) \(text)\n".utf8) }
            }
            out += line
            out.append(UInt8(ascii: "\n"))
        }
        if out.last == UInt8(ascii: "\n"), body.last == UInt8(ascii: "\n") { out.removeLast() }
        return out
    }
}
