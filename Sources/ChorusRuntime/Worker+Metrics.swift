import ChorusWire

extension Worker {
    /// `/metrics`: reads this worker's state into the gauges, then renders every family.
    public func metricsExposition() -> [UInt8] {
        let registered = isRegistered
        let (map, running, fenced) = state.withLock { ($0.map, $0.runningTasks, $0.fenced) }
        metrics.set("chorus_up_seconds", [], Double((ContinuousClock.now - startedAt).components.seconds))
        metrics.set("chorus_worker_registered", [], registered ? 1 : 0)
        var primary = 0, replica = 0, learner = 0
        for a in map.assignments {
            if a.owner == nodeId { primary += 1 }
            if a.replicas.contains(nodeId) { replica += 1 }
            if a.learners.contains(nodeId) { learner += 1 }
        }
        metrics.set("chorus_worker_partitions", [("role", "primary")], Double(primary))
        metrics.set("chorus_worker_partitions", [("role", "replica")], Double(replica))
        metrics.set("chorus_worker_partitions", [("role", "learner")], Double(learner))
        metrics.set("chorus_worker_disk_bytes", [], Double(store.approximateBytes()))
        let health = storageHealth()
        metrics.set("chorus_worker_disk_free_bytes", [], Double(health.freeBytes))
        for (label, s) in [("ok", Chorus_V1_StorageState.ok), ("low", .low), ("read_only", .readOnly)] {
            metrics.set("chorus_worker_storage_state", [("state", label)], health.state == s ? 1 : 0)
        }
        metrics.set("chorus_worker_running_tasks", [], Double(running))
        metrics.set("chorus_connections", [], Double(server.connections))
        metrics.mirror("chorus_worker_fenced_requests_total", total: Double(fenced))
        metrics.mirror("chorus_rejected_requests_total", total: Double(server.rejected))
        if let e = store.engineStats() {
            metrics.set("chorus_rocksdb_pending_compaction_bytes", [], Double(e.pendingCompactionBytes))
            metrics.set("chorus_rocksdb_running_compactions", [], Double(e.runningCompactions))
            metrics.set("chorus_rocksdb_write_stopped", [], e.writeStopped ? 1 : 0)
            metrics.set("chorus_rocksdb_delayed_write_rate_bytes_per_second", [], Double(e.delayedWriteRate))
            if let stall = e.stallSeconds { metrics.mirror("chorus_rocksdb_stall_seconds_total", total: stall) }
        }
        return metrics.exposition()
    }
}
