import ChorusWire

extension Coordinator {
    static let nodeStates: [(String, Chorus_V1_NodeState)] = [
        ("joining", .joining), ("active", .active), ("suspect", .suspect), ("dead", .dead), ("draining", .draining),
        ("drained", .drained),
    ]
    static let jobStates: [(String, Chorus_V1_JobState)] = [
        ("queued", .queued), ("running", .running), ("succeeded", .succeeded), ("failed", .failed),
        ("cancelled", .cancelled),
    ]

    /// `/metrics`: reads the cluster's state (what `chorus cluster status` shows) into the gauges, then renders
    /// every family. Per-node series are labelled with the node's name and id (names need not be unique: a worker
    /// whose data was lost comes back under its old name with a new id); a removed node loses its series.
    public func metricsExposition() async -> [UInt8] {
        let s = await status()
        let jobs = await state.jobCounts()
        metrics.set("chorus_up_seconds", [], Double((ContinuousClock.now - startedAt).components.seconds))
        metrics.set("chorus_connections", [], Double(server.connections))
        metrics.mirror("chorus_rejected_requests_total", total: Double(s.rejected))
        metrics.set("chorus_cluster_partitions", [], Double(s.partitionCount))
        metrics.set("chorus_cluster_partitions_unavailable", [], Double(s.unassignedPartitions))
        metrics.set("chorus_cluster_partitions_under_replicated", [], Double(s.underReplicated.count))
        metrics.set("chorus_cluster_replication_factor", [], Double(s.replicationFactor))
        metrics.set("chorus_cluster_map_version", [], Double(s.mapVersion))
        metrics.set("chorus_cluster_moves_in_flight", [], Double(s.moves.count))
        metrics.set("chorus_cluster_moves_planned", [], Double(s.movesPlanned))
        metrics.set("chorus_cluster_move_copied_bytes", [], Double(s.moves.reduce(0) { $0 + $1.bytesCopied }))
        for (label, st) in Self.jobStates {
            metrics.set("chorus_cluster_jobs", [("state", label)], Double(jobs[st] ?? 0))
        }
        for (label, st) in Self.nodeStates {
            metrics.set("chorus_cluster_nodes", [("state", label)], Double(s.nodes.filter { $0.state == st }.count))
        }
        let ids = Set(s.nodes.map(\.id))
        for family in ["chorus_node_state", "chorus_node_heartbeat_age_seconds", "chorus_node_partitions",
                       "chorus_node_disk_bytes", "chorus_node_running_tasks", "chorus_node_fenced_requests",
                       "chorus_node_rejected_requests"] {
            metrics.removeGauges(family) { labels in !labels.contains { $0.0 == "node_id" && ids.contains($0.1) } }
        }
        for n in s.nodes {
            let node = [("node", n.name), ("node_id", n.id)]
            for (label, st) in Self.nodeStates {
                metrics.set("chorus_node_state", node + [("state", label)], n.state == st ? 1 : 0)
            }
            metrics.set("chorus_node_heartbeat_age_seconds", node, n.heartbeatAgeMs < 0 ? 0 : Double(n.heartbeatAgeMs) / 1000)
            metrics.set("chorus_node_partitions", node + [("role", "primary")], Double(n.primaries))
            metrics.set("chorus_node_partitions", node + [("role", "replica")], Double(n.replicas))
            metrics.set("chorus_node_partitions", node + [("role", "learner")], Double(n.learners))
            metrics.set("chorus_node_disk_bytes", node, Double(n.bytesHeld))
            metrics.set("chorus_node_running_tasks", node, Double(n.runningTasks))
            metrics.set("chorus_node_fenced_requests", node, Double(n.fenced))
            metrics.set("chorus_node_rejected_requests", node, Double(n.rejected))
        }
        return metrics.exposition()
    }
}
